import t from 'tap';
import {
  ALWAYS_SKIPPED_NAMESPACES,
  DEFAULT_PROTOCOL_HINTS,
  isServiceSkipped,
  readServicePorts,
  suggestProtocol,
  validateServicePorts,
} from '../src/policies/service-ports.ts';
import { isDns1123Label, isValidServicePortName } from '../src/kubernetes-names.ts';
import type { KubeObject, RuleId, Violation } from '../src/policies/types.ts';

function service(ports: unknown, spec: Record<string, unknown> = {}, metadata: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'shop', namespace: 'team-a', ...metadata },
    spec: { ...spec, ports },
  };
}

function rulesOf(violations: readonly Violation[]): string[] {
  return violations.map((violation) => `${violation.rule} ${violation.field}`);
}

/** The advice for a port nothing hints at: the HTTP family if it serves HTTP, else TCP. */
const choice = (suffix: string) => `"http-${suffix}" if it serves HTTP ("grpc-${suffix}" for gRPC), else "tcp-${suffix}"`;

// ---------------------------------------------------------------------------------------------
// port-protocol
// ---------------------------------------------------------------------------------------------

t.test('port-protocol fires for each port Istio would sniff, on the field that decides', async (t) => {
  const positives: ReadonlyArray<readonly [string, unknown, string]> = [
    ['a name without a protocol', { name: 'web', port: 8080 }, 'spec.ports[0].name'],
    ['a glued prefix', { name: 'httpfoo', port: 8080 }, 'spec.ports[0].name'],
    ['grpcweb without its dash', { name: 'grpcweb-x', port: 8080 }, 'spec.ports[0].name'],
    ['no name', { port: 8080 }, 'spec.ports[0].name'],
    ['an empty name', { name: '', port: 8080 }, 'spec.ports[0].name'],
    ['a null name (decoded as empty)', { name: null, port: 8080 }, 'spec.ports[0].name'],
    ['an unknown appProtocol over a good name', { name: 'http-web', appProtocol: 'foo', port: 8080 }, 'spec.ports[0].appProtocol'],
    ['a wrong-case kubernetes.io appProtocol', { name: 'http', appProtocol: 'kubernetes.io/H2C', port: 80 }, 'spec.ports[0].appProtocol'],
    ['an SCTP port with a bad name', { name: 'web', port: 8080, protocol: 'SCTP' }, 'spec.ports[0].name'],
  ];
  for (const [why, port, field] of positives) {
    t.same(rulesOf(validateServicePorts(service([port]))), [`port-protocol ${field}`], why);
  }
});

t.test('port-protocol stays silent for ports Istio can classify', async (t) => {
  const negatives: ReadonlyArray<readonly [string, unknown]> = [
    ['http', { name: 'http', port: 80 }],
    ['http-proxy', { name: 'http-proxy', port: 80 }],
    ['grpc-webx', { name: 'grpc-webx', port: 80 }],
    ['a good appProtocol over a bad name', { name: 'web', appProtocol: 'http', port: 8080 }],
    ['kubernetes.io/h2c', { name: 'web', appProtocol: 'kubernetes.io/h2c', port: 8080 }],
    ['a UDP port with no name', { port: 5353, protocol: 'UDP' }],
    ['an unnamed server-first port', { port: 3306 }],
    ['a TCP port named udp-x (UDP to Istio)', { name: 'udp-x', port: 9000 }],
  ];
  for (const [why, port] of negatives) {
    t.same(validateServicePorts(service([port])), [], why);
  }
});

t.test('port-protocol messages name the port and the concrete fix', async (t) => {
  const [named] = validateServicePorts(service([{ name: 'web', port: 8080 }]));
  t.equal(
    named?.message,
    'spec.ports[0] (port 8080, name "web"): Istio cannot tell its protocol and will sniff it; rename it ' +
      '"http-web" (the name "web" suggests http; if it is not, "tcp-web"), or set appProtocol.',
  );

  const [unnamed] = validateServicePorts(service([{ name: 'http', port: 80 }, { port: 8443 }]));
  t.equal(
    unnamed?.message,
    'spec.ports[1] (port 8443) has no name, so Istio cannot tell its protocol and will sniff it; name it ' +
      `${choice('8443')}, or set appProtocol.`,
  );

  const [unknownAppProtocol] = validateServicePorts(service([{ name: 'data', appProtocol: 'foo', port: 8080 }]));
  t.equal(
    unknownAppProtocol?.message,
    'spec.ports[0] (port 8080, name "data"): appProtocol "foo" is not a protocol Istio recognises, and it overrides ' +
      'the port name, so Istio will sniff this port; set it to "http" if it serves HTTP ("grpc" for gRPC), else "tcp".',
  );
});

t.test('a port nothing hints at gets no guessed protocol, only the choice between HTTP and TCP', async (t) => {
  const messageOf = (port: unknown) => validateServicePorts(service([port]))[0]?.message ?? '';
  // RabbitMQ's Erlang port mapper and distribution ports, and mail on a port Istio does not know.
  t.equal(
    messageOf({ name: 'epmd', port: 4369 }),
    `spec.ports[0] (port 4369, name "epmd"): Istio cannot tell its protocol and will sniff it; rename it ${choice('epmd')}, or set appProtocol.`,
  );
  t.equal(
    messageOf({ name: 'dist', port: 25672 }),
    `spec.ports[0] (port 25672, name "dist"): Istio cannot tell its protocol and will sniff it; rename it ${choice('dist')}, or set appProtocol.`,
  );
  t.equal(
    messageOf({ name: 'smtp', port: 2525 }),
    `spec.ports[0] (port 2525, name "smtp"): Istio cannot tell its protocol and will sniff it; rename it ${choice('smtp')}, or set appProtocol.`,
  );
  for (const port of [{ name: 'epmd', port: 4369 }, { name: 'dist', port: 25672 }, { name: 'smtp', port: 2525 }]) {
    t.notMatch(messageOf(port), /e\.g\.|suggests/, `${port.name}: no example`);
  }
  // Port 25 is one Istio never sniffs: smtp there needs nothing, even with an appProtocol Istio does not know.
  t.same(validateServicePorts(service([{ name: 'smtp', port: 25 }])), []);
  t.same(validateServicePorts(service([{ name: 'mail', port: 25, appProtocol: 'smtp' }])), []);
});

t.test('port-protocol examples come only from the hint tables and never suggest a name Istio misreads', async (t) => {
  const exampleFor = (port: unknown, hints = DEFAULT_PROTOCOL_HINTS) =>
    /rename it "([^"]+)" \(|name it "([^"]+)" \(/.exec(validateServicePorts(service([port]), hints)[0]?.message ?? '')?.slice(1).find(Boolean);

  t.equal(exampleFor({ name: 'db', port: 5432 }), 'tcp-db', 'port hint 5432 → tcp');
  t.match(validateServicePorts(service([{ name: 'db', port: 5432 }]))[0]?.message, /"tcp-db" \(port 5432 usually carries tcp\), or set appProtocol\.$/);
  t.equal(exampleFor({ name: 'cache', port: 6379 }), 'redis-cache', 'port hint 6379 → redis');
  t.match(validateServicePorts(service([{ name: 'cache', port: 6379 }]))[0]?.message, /\(port 6379 usually carries redis; if it is not, "tcp-cache"\)/);
  t.equal(exampleFor({ name: 'postgres-main', port: 9999 }), 'tcp-postgres-main', 'name hint on the head');
  t.equal(exampleFor({ port: 80 }), 'http-80', 'unnamed: <protocol>-<port>');
  t.match(validateServicePorts(service([{ name: 'My_Port', port: 8080 }]))[0]?.message, new RegExp(`rename it ${choice('8080').replace(/[()]/g, '\\$&')}`), 'an invalid name falls back to the port number');
  const byDefault = validateServicePorts(service([{ name: 'thing', port: 8080 }]), { ...DEFAULT_PROTOCOL_HINTS, defaultProtocol: 'tcp' })[0];
  t.match(byDefault?.message, /rename it "tcp-thing" \(tcp is the configured default\), or set appProtocol\./);
  // "grpc-web" would be GRPC-Web, not GRPC: the example must not be it.
  t.equal(exampleFor({ name: 'web', port: 8080 }, { nameHints: { web: 'grpc' }, portHints: {} }), 'grpc-8080');
  // "grpc-webfoo" too: without a hint, all three names fall back to the port number together.
  t.match(validateServicePorts(service([{ name: 'webfoo', port: 8080 }]), { nameHints: {}, portHints: {} })[0]?.message, new RegExp(choice('8080').replace(/[()]/g, '\\$&')));
  // "udp-…" on a TCP port would make Istio treat it as UDP: never suggested.
  t.equal(exampleFor({ name: 'web', port: 8080 }, { nameHints: { web: 'udp' }, portHints: {} }), undefined, 'an unusable hint is no hint');
  t.notMatch(validateServicePorts(service([{ name: 'web', port: 8080 }], {}), { nameHints: { web: 'udp' }, portHints: {} })[0]?.message, /udp/);
});

t.test('an unknown appProtocol message says how to fix that particular case', async (t) => {
  const messageFor = (port: unknown) => validateServicePorts(service([port]))[0]?.message ?? '';
  t.match(messageFor({ name: 'http-web', appProtocol: 'foo', port: 8080 }), /remove it so the name "http-web" decides \(http\)\.$/);
  t.match(messageFor({ name: 'x', appProtocol: 'kubernetes.io/H2C', port: 80 }), /case-sensitive: use "kubernetes\.io\/h2c"\.$/);
  t.match(messageFor({ name: 'x', appProtocol: 'postgresql', port: 9999 }), /set it to "tcp" \(its value "postgresql" suggests tcp\)\.$/);
  t.match(messageFor({ name: 'web', appProtocol: 'foo', port: 9999 }), /set it to "http" \(the port name "web" suggests http; if it is not, "tcp"\)\.$/);
  t.match(messageFor({ name: 'x', appProtocol: 'foo', port: 50051 }), /set it to "grpc" \(port 50051 usually carries grpc; if it is not, "tcp"\)\.$/);
  t.match(messageFor({ name: 'x', appProtocol: 'smtp', port: 2525 }), /set it to "http" if it serves HTTP \("grpc" for gRPC\), else "tcp"\.$/);
});

// ---------------------------------------------------------------------------------------------
// port-name-duplicate and port-duplicate
// ---------------------------------------------------------------------------------------------

t.test('port-name-duplicate fires on each later port reusing a name', async (t) => {
  const violations = validateServicePorts(service([
    { name: 'http', port: 80 },
    { name: 'http', port: 8080 },
    { name: 'grpc', port: 9000 },
    { name: 'http', port: 8081 },
  ]));
  t.same(rulesOf(violations), ['port-name-duplicate spec.ports[1].name', 'port-name-duplicate spec.ports[3].name']);
  t.equal(
    violations[0]?.message,
    'spec.ports[1] (port 8080, name "http"): the name is already used by spec.ports[0] (port 80); Kubernetes and ' +
      'Istio need unique port names, so rename one of them, e.g. to "http-8080".',
  );
});

t.test('port-name-duplicate ignores unnamed ports and compares names exactly', async (t) => {
  t.same(validateServicePorts(service([{ port: 3306 }, { port: 27017 }])), [], 'two unnamed ports');
  t.same(validateServicePorts(service([{ name: 'http', port: 80 }, { name: 'HTTP', port: 81 }])), [], 'different case');
});

t.test('port-duplicate fires on a repeated port and protocol, TCP by default', async (t) => {
  const violations = validateServicePorts(service([
    { name: 'http', port: 8080 },
    { name: 'http-metrics', port: 8080, protocol: 'TCP' },
  ]));
  t.same(rulesOf(violations), ['port-duplicate spec.ports[1]']);
  t.equal(
    violations[0]?.message,
    'spec.ports[1] (port 8080, name "http-metrics"): port 8080/TCP is already declared by spec.ports[0]; ' +
      'Kubernetes rejects a repeated port and protocol, so remove this entry or change its port number.',
  );
});

t.test('port-duplicate allows one port number over TCP and UDP', async (t) => {
  t.same(validateServicePorts(service([{ name: 'tcp-dns', port: 53 }, { name: 'udp-dns', port: 53, protocol: 'UDP' }])), []);
});

// ---------------------------------------------------------------------------------------------
// externalname-port
// ---------------------------------------------------------------------------------------------

t.test('externalname-port fires on an ExternalName Service port named "tcp" or without a protocol', async (t) => {
  const externalName = { type: 'ExternalName', externalName: 'db.example.com' };
  const named = validateServicePorts(service([{ name: 'tcp', port: 443 }], externalName));
  t.same(rulesOf(named), ['externalname-port spec.ports[0].name'], '"tcp" alone is classified, so only IST0150');
  t.equal(
    named[0]?.message,
    'spec.ports[0] (port 443, name "tcp"): Istio may not forward traffic to an ExternalName Service\'s port named ' +
      'just "tcp" (IST0150); add a suffix, e.g. "tcp-443".',
  );

  t.same(
    rulesOf(validateServicePorts(service([{ port: 8080 }], externalName))),
    ['port-protocol spec.ports[0].name', 'externalname-port spec.ports[0].name'],
  );
  t.same(
    rulesOf(validateServicePorts(service([{ name: 'tls', appProtocol: 'foo', port: 443 }], externalName))),
    ['port-protocol spec.ports[0].appProtocol', 'externalname-port spec.ports[0].appProtocol'],
  );
});

t.test('externalname-port advice is what the rule accepts: a Postgres port is told tcp-, nothing is guessed', async (t) => {
  const externalName = { type: 'ExternalName', externalName: 'db.example.com' };
  const [postgresProtocol, postgres] = validateServicePorts(service([{ name: 'postgres', port: 5432 }], externalName));
  t.equal(
    postgres?.message,
    'spec.ports[0] (port 5432, name "postgres"): Istio may not forward traffic to an ExternalName Service\'s port ' +
      'without an Istio protocol (IST0150); name it "tcp-postgres" (the name "postgres" suggests tcp).',
  );
  t.match(postgresProtocol?.message, /rename it "tcp-postgres" \(the name "postgres" suggests tcp\)/, 'port-protocol says the same');
  t.same(validateServicePorts(service([{ name: 'tcp-postgres', port: 5432 }], externalName)), [], 'and that name passes');
  t.notMatch(postgres?.message, /tls|https/);

  const unhinted = validateServicePorts(service([{ name: 'data', port: 7000 }], externalName))[1];
  t.match(unhinted?.message, /\(IST0150\); name it "http-data" if it serves HTTP \("grpc-data" for gRPC\), else "tcp-data"\.$/);
  const byAppProtocol = validateServicePorts(service([{ name: 'x', appProtocol: 'foo', port: 7000 }], externalName))[1];
  t.match(byAppProtocol?.message, /\(IST0150\); set appProtocol to "http" if it serves HTTP \("grpc" for gRPC\), else "tcp"\.$/);
  const httpsByPort = validateServicePorts(service([{ name: 'api', appProtocol: 'foo', port: 443 }], externalName))[1];
  t.match(httpsByPort?.message, /set appProtocol to "http" \(the port name "api" suggests http; if it is not, "tcp"\)\.$/);
});

t.test('externalname-port accepts protocol-named ports, and ignores other Service types', async (t) => {
  const externalName = { type: 'ExternalName', externalName: 'db.example.com' };
  for (const name of ['tls', 'https-api', 'tcp-db', 'TCP-db']) {
    t.same(validateServicePorts(service([{ name, port: 443 }], externalName)), [], name);
  }
  t.same(validateServicePorts(service([{ name: 'tcp', port: 443 }], { type: 'ClusterIP' })), [], 'ClusterIP "tcp"');
  t.same(validateServicePorts(service([{ name: 'tcp', port: 443 }], { type: 'externalname' })), [], 'type is case-sensitive');
});

// ---------------------------------------------------------------------------------------------
// Properties shared by all rules
// ---------------------------------------------------------------------------------------------

t.test('every rule reports severity error', async (t) => {
  const violations = validateServicePorts(service(
    [{ name: 'web', port: 80 }, { name: 'web', port: 80 }],
    { type: 'ExternalName' },
  ));
  const rules = new Set<RuleId>(violations.map((violation) => violation.rule));
  t.same([...rules].sort(), ['externalname-port', 'port-duplicate', 'port-name-duplicate', 'port-protocol']);
  t.ok(violations.every((violation) => violation.severity === 'error'));
});

t.test('identities do not depend on where a port sits, but do on what is wrong with it', async (t) => {
  const identities = (ports: unknown[]) => validateServicePorts(service(ports)).map((violation) => violation.identity);
  const moved = identities([{ name: 'http', port: 80 }, { name: 'web', port: 8080 }, { name: 'web', port: 8080 }]);
  const original = identities([{ name: 'web', port: 8080 }, { name: 'web', port: 8080 }, { name: 'http', port: 80 }]);
  t.same(moved, original);
  t.same(moved, [
    'port-protocol|TCP/8080|web|',
    'port-protocol|TCP/8080|web|',
    'port-name-duplicate|web|TCP/8080',
    'port-duplicate|TCP/8080|web',
  ]);
  t.same(identities([{ name: 'web', appProtocol: 'foo', port: 8080 }]), ['port-protocol|TCP/8080|web|foo']);
  t.not(identities([{ name: 'web', port: 8081 }])[0], identities([{ name: 'web', port: 8080 }])[0], 'another port');
  t.not(identities([{ name: 'webs', port: 8080 }])[0], identities([{ name: 'web', port: 8080 }])[0], 'another name');
});

t.test('messages fit in an admission warning even for the longest legal values', async (t) => {
  const longName = 'a'.repeat(63);
  const longAppProtocol = `${'b'.repeat(253)}/${'c'.repeat(63)}`;
  const ports = Array.from({ length: 12 }, (_, index) => ({ name: longName, port: 50000 + index }));
  ports.push({ name: longName, port: 50000 });
  const violations = [
    ...validateServicePorts(service(ports, { type: 'ExternalName' })),
    ...validateServicePorts(service([{ name: longName, appProtocol: longAppProtocol, port: 65535 }], { type: 'ExternalName' })),
  ];
  t.ok(violations.length > 20);
  for (const violation of violations) {
    // The webhook prefixes each warning with "[rule] ": the whole line must fit.
    t.ok(violation.message.length + violation.rule.length + 3 <= 256, `${violation.rule} ${violation.field}: ${violation.message.length} characters`);
    t.match(violation.message, new RegExp(`^${violation.field.replace(/\.(name|appProtocol)$/, '').replace(/[[\]]/g, '\\$&')}[ :]`));
  }
});

t.test('the longest names keep the structure of the advice: only the names are cut or left out', async (t) => {
  const longName = 'a'.repeat(63);
  const longAppProtocol = `${'b'.repeat(253)}/${'c'.repeat(63)}`;
  const ports = [
    { name: longName, port: 65535 },
    { name: `postgres-${'d'.repeat(54)}`, port: 65534 },
    { name: 'e'.repeat(63), appProtocol: longAppProtocol, port: 65533 },
    { name: 'tcp', port: 65532 },
  ];
  const padding = Array.from({ length: 996 }, (_, index) => ({ name: `http-${index}`, port: index + 1 }));
  const violations = validateServicePorts(service([...padding, ...ports], { type: 'ExternalName' }));
  const structures: ReadonlyArray<readonly [string, RegExp]> = [
    ['port-protocol spec.ports[996].name', /^spec\.ports\[996\] \(port 65535(, name "a+…?")?\): Istio cannot tell its protocol and will sniff it; rename it "http-[a-z0-9]+" if it serves HTTP \("grpc-[a-z0-9]+" for gRPC\), else "tcp-[a-z0-9]+", or set appProtocol\.$/],
    ['externalname-port spec.ports[996].name', /\(IST0150\); name it "http-[a-z0-9]+" if it serves HTTP \("grpc-[a-z0-9]+" for gRPC\), else "tcp-[a-z0-9]+"\.$/],
    ['port-protocol spec.ports[997].name', /; rename it "tcp-[a-z0-9-]+" \(the name( "postgres")? suggests tcp\), or set appProtocol\.$/],
    ['externalname-port spec.ports[997].name', /\(IST0150\); name it "tcp-[a-z0-9-]+" \(the name( "postgres")? suggests tcp\)\.$/],
    ['port-protocol spec.ports[998].appProtocol', /: appProtocol "b+…" is not a protocol Istio recognises, and it overrides the port name, so Istio will sniff this port; set it to "http" if it serves HTTP \("grpc" for gRPC\), else "tcp"\.$/],
    ['externalname-port spec.ports[998].appProtocol', /\(IST0150\); set appProtocol to "http" if it serves HTTP \("grpc" for gRPC\), else "tcp"\.$/],
    ['externalname-port spec.ports[999].name', /named just "tcp" \(IST0150\); add a suffix, e.g\. "tcp-65532"\.$/],
  ];
  t.same(violations.map((v) => `${v.rule} ${v.field}`), structures.map(([which]) => which));
  for (const [index, violation] of violations.entries()) {
    const [which, structure] = structures[index] ?? ['', /^$/];
    for (const form of [violation.message, ...(violation.shorterMessages ?? [])]) {
      // The webhook prefixes each message with "[rule] ": the whole line must fit, as it is.
      t.ok(form.length + violation.rule.length + 3 <= 256, `${which}: ${form.length} characters`);
      t.match(form, structure, `${which}: every form keeps the advice`);
      t.notMatch(form, /\.\.\.$/, 'never cut');
    }
  }
  t.ok(violations.some((v) => (v.shorterMessages ?? []).length > 0), 'long names have shorter forms');
});

t.test('user-supplied values are quoted as JSON, so a message stays one line', async (t) => {
  const violations = validateServicePorts(service(
    [{ name: 'we"b\nx', port: 8080 }, { name: 'we"b\nx', appProtocol: 'f"o\ro', port: 8081 }],
    { type: 'ExternalName' },
  ));
  t.equal(violations.length, 5);
  for (const violation of violations) t.notMatch(violation.message, /[\n\r]/, violation.rule);
  t.match(violations[0]?.message, /name "we\\"b\\nx"/);
  t.match(violations[2]?.message, /appProtocol "f\\"o\\ro"/);
});

t.test('junk never throws and yields violations only for what can be read', async (t) => {
  const junk: ReadonlyArray<readonly [string, unknown]> = [
    ['null', null],
    ['a string', 'Service'],
    ['no spec', { kind: 'Service' }],
    ['spec null', { spec: null }],
    ['spec a string', { spec: 'ports' }],
    ['ports a string', { spec: { ports: 'http:80' } }],
    ['ports an object', { spec: { ports: { name: 'web', port: 8080 } } }],
    ['ports null', { spec: { ports: null } }],
    ['items of the wrong kind', { spec: { ports: [null, 1, 'web', [], true] } }],
    ['a numeric name', { spec: { ports: [{ name: 80, port: 80 }] } }],
    ['a string port number', { spec: { ports: [{ name: 'web', port: '8080' }] } }],
    ['a fractional port number', { spec: { ports: [{ name: 'web', port: 80.5 }] } }],
    ['no port number', { spec: { ports: [{ name: 'web' }] } }],
    ['a numeric appProtocol', { spec: { ports: [{ name: 'web', port: 8080, appProtocol: 7 }] } }],
    ['a numeric protocol', { spec: { ports: [{ name: 'web', port: 8080, protocol: 6 }] } }],
    ['junk type on an unreadable port', { spec: { type: 'ExternalName', ports: [{ name: 'tcp', port: [] }] } }],
    // The holes are the point: JSON cannot produce them, but a YAML/JS caller of the policy can.
    ['a sparse ports array', { spec: { ports: [, , undefined] } }], // eslint-disable-line no-sparse-arrays
  ];
  for (const [why, object] of junk) {
    t.same(validateServicePorts(object as KubeObject), [], why);
  }

  const mixed = service([null, { name: 80, port: 80 }, { name: 'web', port: 8080 }, 'web', { name: 'web', port: '8080' }]);
  t.same(rulesOf(validateServicePorts(mixed)), ['port-protocol spec.ports[2].name'], 'readable ports keep their index');
});

t.test('readServicePorts defaults the protocol and treats null as absent, as Kubernetes decoding does', async (t) => {
  const [port] = readServicePorts(service([{ port: 80, protocol: null, name: null, appProtocol: null }]));
  t.same(port && { ...port, item: undefined }, { index: 0, port: 80, protocol: 'TCP', name: '', appProtocol: undefined, item: undefined });
});

// ---------------------------------------------------------------------------------------------
// Hints
// ---------------------------------------------------------------------------------------------

t.test('suggestProtocol: whole name, then its head, then the port, then the default', async (t) => {
  const hints = { nameHints: { 'web-admin': 'https', Web: 'http' }, portHints: { '8080': 'grpc' }, defaultProtocol: 'tcp' };
  t.same(suggestProtocol({ name: 'web-admin', port: 8080 }, hints), { protocol: 'https', source: 'name', matched: 'web-admin' });
  t.same(suggestProtocol({ name: 'WEB-x', port: 8080 }, hints), { protocol: 'http', source: 'name', matched: 'WEB' });
  t.same(suggestProtocol({ name: 'x-web', port: 8080 }, hints), { protocol: 'grpc', source: 'port', matched: '8080' });
  t.same(suggestProtocol({ name: '', port: 9 }, hints), { protocol: 'tcp', source: 'default', matched: '' });
  t.equal(suggestProtocol({ name: 'x', port: 9 }, DEFAULT_PROTOCOL_HINTS), undefined, 'no default by default');
});

t.test('suggestProtocol ignores unusable hint values and inherited keys', async (t) => {
  const hints = { nameHints: { web: 'udp', api: 'soap', ui: 'HTTP' }, portHints: { '80': 'http ' }, defaultProtocol: 'carrier-pigeon' };
  t.equal(suggestProtocol({ name: 'web', port: 1 }, hints), undefined, 'udp is not for TCP ports');
  t.equal(suggestProtocol({ name: 'api', port: 1 }, hints), undefined, 'not an Istio protocol');
  t.equal(suggestProtocol({ name: 'x', port: 80 }, hints), undefined, 'no trimming of configuration');
  t.same(suggestProtocol({ name: 'ui', port: 1 }, hints)?.protocol, 'http', 'values are lower-cased');
  for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
    t.equal(suggestProtocol({ name, port: 1 }, DEFAULT_PROTOCOL_HINTS), undefined, name);
  }
  t.equal(validateServicePorts(service([{ name: 'constructor', port: 1 }]))[0]?.rule, 'port-protocol');
});

t.test('a port named by kubectl create service (<port>-<targetPort>) gets a fix that command can reach', async (t) => {
  const [violation] = validateServicePorts(service([{ name: '8080-8080', port: 8080 }]));
  t.equal(violation?.rule, 'port-protocol');
  t.equal(
    violation?.message,
    'spec.ports[0] (port 8080, name "8080-8080"): Istio would sniff it, and kubectl create/expose cannot ' +
      `name ports: use --dry-run=client -o yaml, name it ${choice('8080')}, then apply.`,
  );
  // A name of that shape that does not start with the port is an ordinary name.
  t.match(validateServicePorts(service([{ name: '9090-8080', port: 8080 }]))[0]?.message, /rename it "http-9090-8080" if it serves HTTP/);
});

// ---------------------------------------------------------------------------------------------
// Skipping
// ---------------------------------------------------------------------------------------------

t.test('isServiceSkipped skips Istio\'s system namespaces, configured ones, and the control plane', async (t) => {
  t.same([...ALWAYS_SKIPPED_NAMESPACES], ['kube-system', 'kube-public', 'kube-node-lease', 'local-path-storage']);
  const plain = service([{ name: 'web', port: 8080 }]);
  for (const namespace of ALWAYS_SKIPPED_NAMESPACES) t.ok(isServiceSkipped(plain, namespace, []), namespace);
  t.ok(isServiceSkipped(plain, 'legacy', ['legacy']), 'configured exemption');
  t.notOk(isServiceSkipped(plain, 'team-a', ['legacy']), 'an ordinary namespace');
  t.notOk(isServiceSkipped(plain, 'kube-systems', []), 'only exact names');

  t.ok(isServiceSkipped(service([], {}, { namespace: 'kube-system' }), undefined, []), 'the object\'s own namespace');
  t.notOk(isServiceSkipped(service([], {}, { namespace: 'kube-system' }), 'team-a', []), 'the request namespace wins');

  const labelled = (labels: unknown) => service([], {}, { labels });
  t.ok(isServiceSkipped(labelled({ istio: 'pilot' }), 'team-a', []), 'label istio');
  t.ok(isServiceSkipped(labelled({ istio: '' }), 'team-a', []), 'label istio with an empty value');
  t.ok(isServiceSkipped(labelled({ release: 'istio' }), 'team-a', []), 'release: istio');
  t.notOk(isServiceSkipped(labelled({ release: 'shop' }), 'team-a', []), 'another release');
  t.notOk(isServiceSkipped(labelled({ app: 'istio' }), 'team-a', []), 'istio as another label\'s value');

  // Services istiod's gateway controllers create and manage (waypoints, gateways).
  for (const controller of ['istio.io-gateway-controller', 'istio.io-mesh-controller', 'istio.io-eastwest-controller']) {
    t.ok(isServiceSkipped(labelled({ 'gateway.istio.io/managed': controller }), 'team-a', []), controller);
  }
  t.notOk(isServiceSkipped(labelled({ 'gateway.istio.io/managed': 'example.com-controller' }), 'team-a', []), 'another controller');
  t.notOk(isServiceSkipped(labelled({ 'gateway.istio.io/managed': '' }), 'team-a', []), 'an empty value');
});

t.test('isServiceSkipped never throws on junk metadata', async (t) => {
  for (const object of [null, {}, { metadata: null }, { metadata: 'x' }, { metadata: { labels: ['istio'] } }, { metadata: { namespace: 7 } }]) {
    t.equal(isServiceSkipped(object as KubeObject, undefined, []), false, JSON.stringify(object));
  }
});

// ---------------------------------------------------------------------------------------------
// Kubernetes names
// ---------------------------------------------------------------------------------------------

t.test('isDns1123Label matches Kubernetes\' IsDNS1123Label', async (t) => {
  const valid = ['a', '0', 'http', 'http-web', 'a--b', '8080', 'a'.repeat(63)];
  const invalid = ['', '-a', 'a-', 'A', 'http-Web', 'a_b', 'a.b', 'a b', 'ä', 'a'.repeat(64)];
  for (const label of valid) t.ok(isDns1123Label(label), `valid: ${label}`);
  for (const label of invalid) t.notOk(isDns1123Label(label), `invalid: ${label}`);
  t.ok(isValidServicePortName('grpc-web'));
  t.notOk(isValidServicePortName(`http-${'a'.repeat(59)}`), '64 characters');
});
