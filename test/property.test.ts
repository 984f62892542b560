/**
 * Property tests (fast-check) of Service mutation and validation over random Services: odd
 * names, appProtocols, protocols, port numbers and duplicates.
 *
 * `npm test` runs a bounded number of cases with a fixed seed, so a failure reproduces;
 * `npm run fuzz` runs many more with a random seed (FUZZ_RUNS, FUZZ_SEED to replay one).
 */
import t from 'tap';
import fc from 'fast-check';
import jsonpatch from 'fast-json-patch';
import { handleMutate, handleValidate, MAX_MUTATION_DEPTH } from '../src/admission/handlers.ts';
import type { AdmissionRequest } from '../src/admission/review.ts';
import { runCheck } from '../src/check/run-check.ts';
import { classifyPort } from '../src/istio/protocol.ts';
import { isDns1123Label } from '../src/kubernetes-names.ts';
import { proposePortNames, readServicePorts, suggestProtocol } from '../src/policies/service-ports.ts';
import type { KubeObject } from '../src/policies/types.ts';
import type { Config } from '../src/config.ts';
import { decodePatch, testConfig } from './helpers/reviews.ts';

const FUZZ_RUNS = Number(process.env['FUZZ_RUNS'] ?? 0);
const FUZZING = FUZZ_RUNS > 0;
const RUNS = FUZZING ? FUZZ_RUNS : 300;
const SEED = process.env['FUZZ_SEED'] !== undefined ? Number(process.env['FUZZ_SEED']) : FUZZING ? Date.now() % 2 ** 31 : 20_240_601;
const PARAMETERS: fc.Parameters<unknown> = { numRuns: RUNS, seed: SEED, verbose: fc.VerbosityLevel.Verbose, endOnFailure: true };

t.comment(`fast-check seed ${SEED}, ${RUNS} runs per property${FUZZING ? ' (fuzz)' : ''}`);

// ---------------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------------

/** Port names: Istio prefixes, hint words, near misses, junk, and collisions by construction. */
const portName: fc.Arbitrary<string | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom('', 'http', 'http-web', 'HTTP-api', 'grpc', 'grpc-web', 'grpcweb', 'grpc-weblike', 'tcp', 'udp-dns', 'tls', 'https-443', 'http2', 'mongo', 'redis', 'mysql', 'http_proxy-x', 'httpfoo', 'tcp-1', 'http-80', 'http-8080-1'),
  fc.constantFrom('web', 'www', 'metrics', 'ui', 'api', 'postgres', 'amqp', 'kafka', 'zookeeper', 'nats', 'mqtt', 'memcached', 'mongodb', 'data', 'main', 'admin'),
  fc.tuple(fc.constantFrom('web', 'api', 'metrics', 'data', 'x'), fc.constantFrom('-', '_', '.', ''), fc.stringMatching(/^[a-z0-9]{0,6}$/)).map(([a, b, c]) => `${a}${b}${c}`),
  fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/),
  fc.string({ maxLength: 70 }),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
);

const appProtocol: fc.Arbitrary<string | undefined> = fc.oneof(
  { weight: 6, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.constantFrom('http', 'HTTP', 'grpc', 'kubernetes.io/h2c', 'kubernetes.io/ws', 'kubernetes.io/wss', 'Kubernetes.io/h2c', 'tcp', 'tls') },
  { weight: 1, arbitrary: fc.constantFrom('', 'web', 'example.com/custom', 'h2c') },
);

const protocol: fc.Arbitrary<string | undefined> = fc.oneof(
  { weight: 6, arbitrary: fc.constant(undefined) },
  { weight: 4, arbitrary: fc.constant('TCP') },
  { weight: 1, arbitrary: fc.constantFrom('UDP', 'SCTP') },
);

/** Well-known ports (hint tables, Istio's TCP ports) mixed with any port, from small pools so that duplicates happen. */
const portNumber: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(80, 443, 8080, 25, 53, 3306, 27017, 5432, 6379, 9092, 50051, 15000, 1),
  fc.integer({ min: 1, max: 65535 }),
);

interface PortSpec {
  name?: string;
  port: number;
  protocol?: string;
  appProtocol?: string;
  targetPort: number;
}

const port: fc.Arbitrary<PortSpec> = fc.record({ name: portName, port: portNumber, protocol, appProtocol }).map((p) => {
  const spec: PortSpec = { port: p.port, targetPort: p.port };
  if (p.name !== undefined) spec.name = p.name;
  if (p.protocol !== undefined) spec.protocol = p.protocol;
  if (p.appProtocol !== undefined) spec.appProtocol = p.appProtocol;
  return spec;
});

/** A list of ports, sometimes with exact copies of earlier ports (duplicate names and numbers). */
const ports: fc.Arbitrary<PortSpec[]> = fc
  .tuple(fc.array(port, { maxLength: 10 }), fc.array(fc.nat(), { maxLength: 3 }))
  .map(([list, copies]) => (list.length === 0 ? list : [...list, ...copies.map((i) => ({ ...(list[i % list.length] as PortSpec) }))]));

const serviceObject: fc.Arbitrary<KubeObject> = fc
  .record({ name: fc.stringMatching(/^[a-z]([-a-z0-9]{0,20}[a-z0-9])?$/), type: fc.constantFrom(undefined, 'ClusterIP', 'NodePort', 'ExternalName'), ports })
  .map(({ name, type, ports }) => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default' },
    spec: { ...(type ? { type } : {}), selector: { app: name }, ports },
  }));

/** With and without a configured default protocol (ports no hint recognises). */
const config: fc.Arbitrary<Config> = fc.constantFrom(testConfig(), testConfig({ 'default-protocol': 'tcp' }), testConfig({ enforcement: 'warn' }));

function request(object: unknown, overrides: Partial<AdmissionRequest> = {}): AdmissionRequest {
  return { uid: 'prop', kind: { group: '', version: 'v1', kind: 'Service' }, operation: 'CREATE', namespace: 'default', object, ...overrides };
}

/** The object the webhook's patch turns `object` into, checking the patch applies cleanly. */
function patched(object: KubeObject, patch: string | undefined): KubeObject {
  if (patch === undefined) return object;
  const operations = decodePatch(patch) as jsonpatch.Operation[];
  // validateOperation: every operation must be well-formed and apply to this document.
  return jsonpatch.applyPatch(structuredClone(object), operations, true, false).newDocument;
}

function portNames(object: KubeObject): (string | undefined)[] {
  const list = (object.spec as { ports?: { name?: string }[] }).ports ?? [];
  return list.map((p) => p.name);
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

t.test('mutation never throws, and its patch applies', async (t) => {
  fc.assert(
    fc.property(serviceObject, config, (object, config) => {
      const before = structuredClone(object);
      const outcome = handleMutate(request(object), config);
      const after = patched(object, outcome.response.patch);
      // The request object itself is never modified.
      return JSON.stringify(object) === JSON.stringify(before) && outcome.response.allowed && Array.isArray(portNames(after));
    }),
    PARAMETERS,
  );
  t.pass('held');
});

t.test('mutation never throws on arbitrary JSON, and always allows', async (t) => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 6 }), fc.constantFrom('Service', 'Namespace'), (object, kind) => {
      const outcome = handleMutate(request(object, { kind: { group: '', version: 'v1', kind } }), testConfig());
      handleValidate(request(object, { kind: { group: '', version: 'v1', kind } }), testConfig());
      return outcome.response.allowed;
    }),
    { ...PARAMETERS, numRuns: FUZZING ? Math.ceil(RUNS / 10) : 200 },
  );
  t.pass('held');
});

t.test('new names are valid DNS-1123 labels of at most 63 characters, unique, and classified', async (t) => {
  fc.assert(
    fc.property(serviceObject, config, (object, config) => {
      const after = patched(object, handleMutate(request(object), config).response.patch);
      const before = portNames(object);
      const names = portNames(after);
      names.forEach((name, index) => {
        if (name === before[index]) return;
        if (name === undefined || !isDns1123Label(name) || name.length > 63) throw new Error(`bad new name ${JSON.stringify(name)}`);
        if (names.filter((other) => other === name).length !== 1) throw new Error(`new name ${name} is not unique`);
        const entry = readServicePorts(after).find((p) => p.index === index);
        if (!entry || classifyPort(entry) === 'Unsupported') throw new Error(`new name ${name} is still unclassifiable`);
      });
    }),
    PARAMETERS,
  );
  t.pass('held');
});

t.test('mutation is idempotent: a second pass yields no patch', async (t) => {
  fc.assert(
    fc.property(serviceObject, config, (object, config) => {
      const once = patched(object, handleMutate(request(object), config).response.patch);
      const twice = handleMutate(request(once), config);
      return twice.response.patch === undefined && twice.decision !== 'mutated';
    }),
    PARAMETERS,
  );
  t.pass('held');
});

t.test('on UPDATE, ports that already existed are never renamed', async (t) => {
  fc.assert(
    fc.property(serviceObject, config, (object, config) => {
      const outcome = handleMutate(request(object, { operation: 'UPDATE', oldObject: structuredClone(object) }), config);
      return outcome.response.patch === undefined;
    }),
    PARAMETERS,
  );
  t.pass('held');
});

/**
 * What a redeploy sends: the admitted object as stored, and the unchanged manifest again (or
 * with other fields changed). The API server then validates what the mutation made of it.
 */
function redeploy(manifest: KubeObject, stored: KubeObject, config: Config) {
  const mutation = handleMutate(request(manifest, { operation: 'UPDATE', oldObject: stored }), config);
  const result = patched(manifest, mutation.response.patch);
  const validation = handleValidate(request(result, { operation: 'UPDATE', oldObject: stored }), config);
  return { result, validation };
}

t.test('renames are stable: re-applying the admitted manifest gives back exactly what was admitted', async (t) => {
  fc.assert(
    fc.property(serviceObject, config, (manifest, config) => {
      const admitted = patched(manifest, handleMutate(request(manifest), config).response.patch);
      if (!handleValidate(request(admitted), config).response.allowed) return true;
      for (const round of [1, 2, 3]) {
        const { result, validation } = redeploy(manifest, admitted, config);
        if (JSON.stringify(result) !== JSON.stringify(admitted)) throw new Error(`apply ${round} gave ${JSON.stringify(portNames(result))}, admitted ${JSON.stringify(portNames(admitted))}`);
        if (!validation.response.allowed) throw new Error(`apply ${round} was denied: ${validation.response.status?.message}`);
      }
    }),
    PARAMETERS,
  );
  t.pass('held');
});

t.test('renames are stable when other fields change: labels, selector and an added port', async (t) => {
  fc.assert(
    fc.property(serviceObject, port, config, (manifest, added, config) => {
      const admitted = patched(manifest, handleMutate(request(manifest), config).response.patch);
      const spec = manifest.spec as { ports: PortSpec[]; selector: Record<string, string> };
      const edited: KubeObject = {
        ...manifest,
        metadata: { ...manifest.metadata, labels: { team: 'shop' } },
        spec: { ...spec, selector: { app: 'other' }, ports: [...spec.ports, added] },
      };
      const { result } = redeploy(edited, admitted, config);
      const before = portNames(admitted);
      const after = portNames(result);
      // Every port that was admitted keeps its admitted name, unless the added port is a
      // copy of it (the same port and protocol twice, which Kubernetes rejects anyway).
      const clash = spec.ports.some((p) => p.port === added.port && (p.protocol ?? 'TCP') === (added.protocol ?? 'TCP'));
      if (!clash && before.some((name, i) => after[i] !== name)) {
        throw new Error(`admitted names ${JSON.stringify(before)} became ${JSON.stringify(after.slice(0, before.length))}`);
      }
    }),
    PARAMETERS,
  );
  t.pass('held');
});

t.test('after mutation, every port whose protocol could be inferred passes validation', async (t) => {
  fc.assert(
    fc.property(serviceObject, config, (object, config) => {
      const after = patched(object, handleMutate(request(object), config).response.patch);
      const violations = handleValidate(request(after), config).judged.map((j) => j.violation);
      const finalNames = portNames(after);
      for (const port of readServicePorts(object)) {
        const inferable = port.protocol === 'TCP' && port.appProtocol === undefined && classifyPort(port) === 'Unsupported' && suggestProtocol(port, config.mutation) !== undefined;
        if (!inferable) continue;
        const candidates = proposePortNames((suggestProtocol(port, config.mutation) as { protocol: string }).protocol, port);
        // Skipped only when every candidate name is taken by another port.
        const allTaken = candidates.every((name) => finalNames.some((other, i) => i !== port.index && other === name));
        if (allTaken) continue;
        const own = violations.filter((v) => v.field.startsWith(`spec.ports[${port.index}]`) && (v.rule === 'port-protocol' || v.rule === 'port-name-duplicate'));
        if (own.length > 0) throw new Error(`spec.ports[${port.index}] still violates ${own.map((v) => v.rule).join(', ')}`);
      }
    }),
    PARAMETERS,
  );
  t.pass('held');
});

t.test('check and the webhook reach the same verdicts, with and without --fix', async (t) => {
  fc.assert(
    fc.property(serviceObject, config, (object, config) => {
      const sourced = { object, file: 'prop.yaml', line: 1, documentIndex: 0 };
      const key = (v: { rule: string; field: string; message: string }) => `${v.rule}|${v.field}|${v.message}`;

      // check adds what the webhook's mutation would do to a field it flags; the rest is the same.
      const withoutRenameNote = (v: { rule: string; field: string; message: string }) =>
        key({ ...v, message: v.message.replace(/ The webhook renames it to ".*" on admission; `check --fix` writes that name into the manifest\.$/, '') });
      const checked = runCheck([sourced], config, { fix: false }).findings.map(withoutRenameNote).sort();
      const outcome = handleValidate(request(object), config);
      const webhook = outcome.judged.map((j) => key(j.violation)).sort();
      if (JSON.stringify(checked) !== JSON.stringify(webhook)) throw new Error(`check ${checked.join('; ')} ≠ webhook ${webhook.join('; ')}`);
      const errors = outcome.judged.some((j) => j.violation.severity === 'error');
      if (outcome.response.allowed !== (!errors || config.enforcement === 'warn')) throw new Error('allowed does not follow the errors');

      // `check --fix` = the webhook's mutation followed by its validation.
      const fixed = runCheck([sourced], config, { fix: true });
      const mutated = patched(object, handleMutate(request(object), config).response.patch);
      if (JSON.stringify(fixed.objects[0]?.object) !== JSON.stringify(mutated)) throw new Error('check --fix and the webhook mutate differently');
      const afterFix = fixed.findings.map(key).sort();
      const afterWebhook = handleValidate(request(mutated), config).judged.map((j) => key(j.violation)).sort();
      return JSON.stringify(afterFix) === JSON.stringify(afterWebhook);
    }),
    PARAMETERS,
  );
  t.pass('held');
});

t.test('nesting around the mutation depth limit never throws', async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: MAX_MUTATION_DEPTH - 5, max: MAX_MUTATION_DEPTH * 4 }), (depth) => {
      let deep: unknown = 1;
      for (let i = 0; i < depth; i++) deep = i % 2 ? { a: deep } : [deep];
      const object = { apiVersion: 'v1', kind: 'Service', metadata: { name: 's' }, spec: { ports: [{ name: 'web', port: 8080 }] }, deep };
      const outcome = handleMutate(request(object), testConfig());
      // The Service is level 1, `deep` adds `depth` levels.
      return outcome.response.allowed && (depth + 1 > MAX_MUTATION_DEPTH ? outcome.response.patch === undefined : outcome.decision === 'mutated');
    }),
    { ...PARAMETERS, numRuns: Math.min(RUNS, 30) },
  );
  t.pass('held');
});
