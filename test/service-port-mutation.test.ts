import t from 'tap';
import jsonpatch from 'fast-json-patch';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parse } from 'yaml';
import { classifyPort, ISTIO_PORT_PREFIXES } from '../src/istio/protocol.ts';
import { isValidServicePortName } from '../src/kubernetes-names.ts';
import {
  DEFAULT_NAME_HINTS,
  DEFAULT_PORT_HINTS,
  DEFAULT_PROTOCOL_HINTS,
  mutateServicePorts,
  type ProtocolHints,
} from '../src/policies/service-port-mutation.ts';
import { readServicePorts, validateServicePorts } from '../src/policies/service-ports.ts';
import type { KubeObject } from '../src/policies/types.ts';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'service-mutation');

interface GoldenCase {
  readonly description: string;
  readonly hints?: Partial<ProtocolHints>;
  readonly input: KubeObject;
  readonly oldObject?: KubeObject;
  readonly expected: KubeObject;
  readonly notes: readonly string[];
  readonly remainingRules: readonly string[];
  readonly kubernetesValid?: boolean;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

function service(ports: unknown[]): KubeObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name: 'shop', namespace: 'team-a' }, spec: { ports } };
}

function portsOf(object: KubeObject): unknown[] {
  const spec = object.spec as { ports?: unknown } | undefined;
  return Array.isArray(spec?.ports) ? spec.ports : [];
}

/** What Kubernetes' validateServicePort says about the names: labels, unique, required when several. */
function kubernetesPortNameErrors(object: KubeObject): string[] {
  const ports = portsOf(object);
  const errors: string[] = [];
  const seen = new Set<unknown>();
  ports.forEach((port, index) => {
    const name = (port as { name?: unknown } | null)?.name ?? '';
    if (name === '') {
      if (ports.length > 1) errors.push(`spec.ports[${index}].name: Required value`);
      return;
    }
    if (typeof name !== 'string' || !isValidServicePortName(name)) errors.push(`spec.ports[${index}].name: Invalid value`);
    if (seen.has(name)) errors.push(`spec.ports[${index}].name: Duplicate value`);
    seen.add(name);
  });
  return errors;
}

/**
 * The promises of Service mutation that hold for every input, as a list of broken ones (empty when
 * all hold): the diff reproduces the result and touches names only, a second pass changes
 * nothing, each renamed port is classified and validly named, notes match renames and fit in a
 * warning, and no violation appears that was not there before.
 */
function brokenPromises(input: KubeObject, hints: ProtocolHints, oldObject?: KubeObject): string[] {
  const broken: string[] = [];
  const { mutated, notes } = mutateServicePorts(input, hints, oldObject);

  const patch = jsonpatch.compare(input, mutated);
  // The API server applies the patch to the JSON it decoded: no shared objects there.
  const patched = jsonpatch.applyPatch(JSON.parse(JSON.stringify(input)), patch, true, false).newDocument;
  if (!isDeepStrictEqual(patched, mutated)) broken.push('the patch does not reproduce the result');
  for (const operation of patch) {
    if (!/^\/spec\/ports\/\d+\/name$/.test(operation.path)) broken.push(`the patch touches ${operation.path}`);
  }

  const again = mutateServicePorts(mutated, hints, oldObject);
  if (jsonpatch.compare(mutated, again.mutated).length > 0 || again.notes.length > 0) broken.push('not idempotent');

  const renamed = readServicePorts(mutated).filter((port, position) => port.name !== (readServicePorts(input)[position]?.name));
  if (!isDeepStrictEqual(notes.map((note) => note.field), renamed.map((port) => `spec.ports[${port.index}].name`))) {
    broken.push('notes do not match the renamed ports');
  }
  for (const port of renamed) {
    if (classifyPort(port) === 'Unsupported') broken.push(`${port.name} is still unsupported`);
    if (!isValidServicePortName(port.name)) broken.push(`${port.name} is not a valid port name`);
    if (portsOf(mutated).filter((other) => (other as { name?: unknown } | null)?.name === port.name).length > 1) {
      broken.push(`${port.name} is used twice`);
    }
  }
  for (const note of notes) {
    if (note.message.length >= 256) broken.push(`note too long: ${note.message}`);
  }

  const before = validateServicePorts(input).map((violation) => `${violation.rule} ${violation.field}`);
  for (const violation of validateServicePorts(mutated)) {
    const key = `${violation.rule} ${violation.field}`;
    const at = before.indexOf(key);
    if (at < 0) broken.push(`new violation: ${key}`);
    else before.splice(at, 1);
  }
  return broken;
}

// ---------------------------------------------------------------------------------------------
// Golden cases
// ---------------------------------------------------------------------------------------------

const fixtureFiles = readdirSync(FIXTURES).filter((file) => file.endsWith('.yaml')).sort();

t.test('golden fixtures exist', async (t) => {
  t.ok(fixtureFiles.length >= 20, `${fixtureFiles.length} fixtures`);
});

for (const file of fixtureFiles) {
  const golden = parse(readFileSync(join(FIXTURES, file), 'utf8')) as GoldenCase;
  t.test(`${file}: ${golden.description}`, async (t) => {
    const hints: ProtocolHints = { ...DEFAULT_PROTOCOL_HINTS, ...golden.hints };
    const input = deepFreeze(structuredClone(golden.input));
    const oldObject = golden.oldObject && deepFreeze(structuredClone(golden.oldObject));

    const { mutated, notes } = mutateServicePorts(input, hints, oldObject);
    t.same(mutated, golden.expected, 'mutated object');
    t.same(input, golden.input, 'input not modified');
    t.same(notes.map((note) => note.field), golden.notes, 'note fields');
    t.same(validateServicePorts(mutated).map((violation) => violation.rule), golden.remainingRules, 'remaining rules');
    if (golden.kubernetesValid ?? true) t.same(kubernetesPortNameErrors(mutated), [], 'Kubernetes port names');
    t.same(brokenPromises(input, hints, oldObject), [], 'mutation promises');
  });
}

// ---------------------------------------------------------------------------------------------
// Notes
// ---------------------------------------------------------------------------------------------

t.test('each note says what was renamed and which hint decided', async (t) => {
  const { notes } = mutateServicePorts(
    service([{ name: 'web', port: 8080 }, { name: 'db', port: 5432 }, { port: 80 }, { name: 'thing', port: 9000 }]),
    { ...DEFAULT_PROTOCOL_HINTS, defaultProtocol: 'tcp' },
  );
  t.same(notes.map(({ field, message }) => ({ field, message })), [
    {
      field: 'spec.ports[0].name',
      message: 'spec.ports[0] (port 8080): renamed "web" to "http-web" so Istio need not sniff it: the name "web" ' +
        'suggests http; if the guess is wrong, set the name yourself.',
    },
    {
      field: 'spec.ports[1].name',
      message: 'spec.ports[1] (port 5432): renamed "db" to "tcp-db" so Istio need not sniff it: port 5432 usually ' +
        'carries tcp; if the guess is wrong, set the name yourself.',
    },
    {
      field: 'spec.ports[2].name',
      message: 'spec.ports[2] (port 80): named the unnamed port "http-80" so Istio need not sniff it: port 80 usually ' +
        'carries http; if the guess is wrong, set the name yourself.',
    },
    {
      field: 'spec.ports[3].name',
      message: 'spec.ports[3] (port 9000): renamed "thing" to "tcp-thing" so Istio need not sniff it: no hint matched, ' +
        'so the default protocol tcp applies; if the guess is wrong, set the name yourself.',
    },
  ]);
});

t.test('a note names the matched head of a long name and still fits in a warning', async (t) => {
  const longName = `web-${'x'.repeat(59)}`;
  const { notes } = mutateServicePorts(service([{ name: longName, port: 65535 }]), DEFAULT_PROTOCOL_HINTS);
  t.equal(notes.length, 1);
  t.ok((notes[0]?.message.length ?? 256) < 256);
  t.match(notes[0]?.message, /renamed "web-x+" to "http-65535"/);
  t.match(notes[0]?.message, /suggests http/);
});

t.test('a note quotes an odd old name as JSON, so it stays one line', async (t) => {
  const { notes, mutated } = mutateServicePorts(service([{ name: 'web-"x\ny', port: 8080 }]), DEFAULT_PROTOCOL_HINTS);
  t.same(portsOf(mutated), [{ name: 'http-8080', port: 8080 }]);
  t.match(notes[0]?.message, /renamed "web-\\"x\\ny" to "http-8080"/);
  t.notMatch(notes[0]?.message, /\n/);
});

// ---------------------------------------------------------------------------------------------
// Copies, UPDATE, defaults
// ---------------------------------------------------------------------------------------------

t.test('the result is a copy even when nothing changes', async (t) => {
  const input = deepFreeze(service([{ name: 'http', port: 80 }]));
  const { mutated, notes } = mutateServicePorts(input, DEFAULT_PROTOCOL_HINTS);
  t.not(mutated, input);
  t.same(mutated, input);
  t.same(notes, []);
});

t.test('on UPDATE, a port keeps the name it was given, a legacy port its own, and a renamed port is new', async (t) => {
  // Stored: "web" was renamed to http-web on create; "data" is legacy; "api" was renamed once.
  const oldObject = service([{ name: 'http-web', port: 8080 }, { name: 'data', port: 7000 }, { name: 'http-api', port: 9000 }]);
  // The manifest: unchanged for 8080 and 7000; the user renamed "api" to "ui"; a new port.
  const input = service([{ name: 'web', port: 8080 }, { name: 'data', port: 7000 }, { name: 'ui', port: 9000 }, { name: 'web-next', port: 8081 }]);
  const { mutated, notes } = mutateServicePorts(input, DEFAULT_PROTOCOL_HINTS, oldObject);
  t.same(portsOf(mutated), [
    { name: 'http-web', port: 8080 },
    { name: 'data', port: 7000 },
    { name: 'http-ui', port: 9000 },
    { name: 'http-web-next', port: 8081 },
  ]);
  t.match(notes[0]?.message, /kept "http-web" for "web", the name given when this port was first admitted/);
  t.match(notes[1]?.message, /renamed "ui" to "http-ui"/);
});

t.test('on UPDATE, a grpc-web rename is given back too, even after the hint that made it is gone', async (t) => {
  const oldObject = service([{ name: 'grpc-web-console', port: 8080 }]);
  const input = service([{ name: 'console', port: 8080 }]);
  t.same(portsOf(mutateServicePorts(input, DEFAULT_PROTOCOL_HINTS, oldObject).mutated), [{ name: 'grpc-web-console', port: 8080 }]);
});

t.test('on UPDATE, a stored name of another shape, or one another port now holds, is not given back', async (t) => {
  const oldObject = service([{ name: 'http-web', port: 8080 }, { name: 'frontend', port: 8081 }]);
  // http-web is now taken by another port of the manifest; "frontend" was never a rename of "web".
  const input = service([{ name: 'web', port: 8080 }, { name: 'http-web', port: 8082 }, { name: 'web', port: 8081 }]);
  const { mutated } = mutateServicePorts(input, DEFAULT_PROTOCOL_HINTS, oldObject);
  t.same(portsOf(mutated), [
    { name: 'http-8080', port: 8080 },
    { name: 'http-web', port: 8082 },
    { name: 'http-8081', port: 8081 },
  ]);
});

t.test('the default hint tables hold only usable, high-confidence entries', async (t) => {
  t.equal(DEFAULT_PROTOCOL_HINTS.nameHints, DEFAULT_NAME_HINTS);
  t.equal(DEFAULT_PROTOCOL_HINTS.portHints, DEFAULT_PORT_HINTS);
  t.equal(DEFAULT_PROTOCOL_HINTS.defaultProtocol, undefined, 'no default protocol unless configured');
  t.ok(Object.isFrozen(DEFAULT_NAME_HINTS) && Object.isFrozen(DEFAULT_PORT_HINTS));
  const usable = ISTIO_PORT_PREFIXES.filter((prefix) => prefix !== 'udp');
  for (const [key, value] of Object.entries({ ...DEFAULT_NAME_HINTS, ...DEFAULT_PORT_HINTS })) {
    t.ok(usable.includes(value), `${key} → ${value}`);
  }
  for (const key of Object.keys(DEFAULT_PORT_HINTS)) t.match(key, /^[1-9][0-9]*$/, `port hint key ${key}`);
  for (const key of Object.keys(DEFAULT_NAME_HINTS)) {
    t.equal(classifyPort({ name: key }), 'Unsupported', `${key} needs a hint (Istio does not know it)`);
  }
  t.same(
    { web: DEFAULT_NAME_HINTS.web, metrics: DEFAULT_NAME_HINTS.metrics, postgres: DEFAULT_NAME_HINTS.postgres, mongodb: DEFAULT_NAME_HINTS.mongodb },
    { web: 'http', metrics: 'http', postgres: 'tcp', mongodb: 'mongo' },
  );
  t.same(
    { 80: DEFAULT_PORT_HINTS['80'], 443: DEFAULT_PORT_HINTS['443'], 50051: DEFAULT_PORT_HINTS['50051'], 6379: DEFAULT_PORT_HINTS['6379'] },
    { 80: 'http', 443: 'https', 50051: 'grpc', 6379: 'redis' },
  );
  for (const ambiguous of ['8080', '8443', '9090', '3000']) t.notOk(Object.hasOwn(DEFAULT_PORT_HINTS, ambiguous), ambiguous);
});

t.test('ports that are one object (a YAML alias) are renamed independently', async (t) => {
  const shared = { port: 80 };
  const input = service([shared, shared]);
  const { mutated, notes } = mutateServicePorts(input, DEFAULT_PROTOCOL_HINTS);
  t.same(portsOf(mutated), [{ name: 'http-80', port: 80 }, { name: 'http-80-1', port: 80 }]);
  t.same(notes.map((note) => note.field), ['spec.ports[0].name', 'spec.ports[1].name']);
  t.same(shared, { port: 80 }, 'input not modified');
});

// ---------------------------------------------------------------------------------------------
// Every combination of awkward names and ports
// ---------------------------------------------------------------------------------------------

t.test('the mutation promises hold for every combination of awkward ports', async (t) => {
  const names: readonly (string | undefined)[] = [
    undefined, '', 'web', 'WEB', 'http-web', 'http-8080', 'http-8080-0', 'db', 'grpc-web', 'api-x', 'constructor',
    'web_ui', `web-${'a'.repeat(54)}`, `web-${'a'.repeat(59)}`, 'tcp',
  ];
  const numbers = [80, 8080, 5432, 3306];
  const ports = names.flatMap((name) => numbers.map((port) => (name === undefined ? { port } : { name, port })));
  const hintSets: readonly ProtocolHints[] = [
    DEFAULT_PROTOCOL_HINTS,
    { ...DEFAULT_PROTOCOL_HINTS, defaultProtocol: 'tcp' },
    { nameHints: { web: 'grpc' }, portHints: { '8080': 'grpc-web' } },
  ];

  let services = 0;
  const broken = new Set<string>();
  for (const hints of hintSets) {
    for (const first of ports) {
      for (const second of ports) {
        // Every pair, plus a third port chosen by a fixed stride so that triples vary too.
        const third = ports[(ports.indexOf(first) * 7 + ports.indexOf(second) * 13) % ports.length];
        for (const input of [service([{ ...first }, { ...second }]), service([{ ...first }, { ...second }, { ...third }])]) {
          services += 1;
          deepFreeze(input);
          for (const problem of brokenPromises(input, hints)) broken.add(`${problem} in ${JSON.stringify(portsOf(input))}`);
          const oldObject = service([first]);
          for (const problem of brokenPromises(input, hints, oldObject)) broken.add(`UPDATE: ${problem} in ${JSON.stringify(portsOf(input))}`);
        }
      }
    }
  }
  t.ok(services > 20000, `${services} services`);
  t.same([...broken].slice(0, 10), []);
});
