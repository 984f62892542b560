/** Gateway rules: structural (always) and gateway-port-not-exposed (with a world). */
import t from 'tap';
import { validateGateway as validateEveryGatewayRule } from '../src/policies/gateway.ts';
import { unavailableWorld, worldFromObjects } from '../src/policies/traffic-world.ts';
import type { Violation } from '../src/policies/types.ts';
import { byName, gateway, ingressService, seed, svc } from './helpers/traffic.ts';

const rules = (violations: readonly Violation[]) => violations.map((v) => v.rule);

/** Istio's validation of a server on its own: test/gateway-validation.test.ts, where the servers here are complete. */
const VALIDATION_RULES: ReadonlySet<string> = new Set([
  'gateway-servers-missing', 'gateway-hosts-missing', 'gateway-port-missing', 'gateway-port-name-missing', 'gateway-port-number', 'gateway-tls-credentials', 'gateway-tls-on-plain-port',
]);
/** The Gateway rules these tests are about: all but the ones of gateway-validation.ts. */
const validateGateway = (...args: Parameters<typeof validateEveryGatewayRule>) => validateEveryGatewayRule(...args).filter((v) => !VALIDATION_RULES.has(v.rule));
/** `[rule] message` must fit the 256-character admission warning limit. */
const fitsWarning = (v: Violation) => `[${v.rule}] ${v.message}`.length <= 256;

t.test('gateway-port-name-duplicate', async (t) => {
  const dup = validateGateway(gateway('gw', [
    { number: 80, name: 'http', protocol: 'HTTP' },
    { number: 8080, name: 'web', protocol: 'HTTP' },
    { number: 8081, name: 'http', protocol: 'HTTP' },
  ]));
  t.same(rules(dup), ['gateway-port-name-duplicate']);
  t.equal(dup[0]?.severity, 'error');
  t.equal(dup[0]?.field, 'spec.servers[2].port.name');
  t.match(dup[0]?.message, /spec\.servers\[2\]\.port \(8081, "http"\): the name is already used by spec\.servers\[0\].*e\.g\. to "http-8081"/);

  t.same(validateGateway(gateway('gw', [{ number: 80, name: 'http', protocol: 'HTTP' }, { number: 443, name: 'https', protocol: 'HTTPS', tls: { mode: 'SIMPLE', credentialName: 'c' } }])), [], 'distinct names');
  t.same(validateGateway(gateway('gw', [{ number: 80, protocol: 'HTTP' }, { number: 81, protocol: 'HTTP' }])), [], 'unnamed ports are not duplicates of each other');
});

t.test('gateway-protocol: Istio protocol words, any case; anything else is an error', async (t) => {
  for (const protocol of ['HTTP', 'https', 'Http2', 'GRPC', 'grpc-web', 'GRPC-WEB', 'TCP', 'tls', 'MONGO', 'redis', 'MySQL', 'UDP', 'HTTP_PROXY']) {
    const tls = ['https', 'tls'].includes(protocol.toLowerCase()) ? { mode: 'PASSTHROUGH' } : undefined;
    t.same(validateGateway(gateway('gw', [{ number: 80, name: 'p', protocol, ...(tls ? { tls } : {}) }])), [], protocol);
  }
  for (const protocol of ['HTTPX', 'h2c', 'grpcweb', 'WEBSOCKET', '']) {
    const [v, ...rest] = validateGateway(gateway('gw', [{ number: 80, name: 'p', protocol }]));
    t.equal(rest.length, 0, protocol);
    t.equal(v?.rule, 'gateway-protocol', protocol);
    t.equal(v?.severity, 'error');
    t.equal(v?.field, 'spec.servers[0].port.protocol');
    t.match(v?.message, /HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, TCP, TLS, MONGO, REDIS, MYSQL/);
  }
  const missing = validateGateway(gateway('gw', [{ number: 80, name: 'p' }]));
  t.same(rules(missing), ['gateway-protocol']);
  t.match(missing[0]?.message, /has no protocol/);
});

t.test('gateway-tls-missing: HTTPS and TLS servers need tls', async (t) => {
  for (const protocol of ['HTTPS', 'TLS', 'https']) {
    const [v, ...rest] = validateGateway(gateway('gw', [{ number: 443, name: 'secure', protocol }]));
    t.equal(rest.length, 0);
    t.equal(v?.rule, 'gateway-tls-missing', protocol);
    t.equal(v?.severity, 'error');
    t.equal(v?.field, 'spec.servers[0].tls');
    t.match(v?.message, /needs tls settings.*SIMPLE, credentialName.*PASSTHROUGH/);
  }
  t.same(validateGateway(gateway('gw', [{ number: 443, name: 'secure', protocol: 'HTTPS', tls: { mode: 'PASSTHROUGH' } }])), []);
  t.same(validateGateway(gateway('gw', [{ number: 80, name: 'plain', protocol: 'HTTP' }])), [], 'HTTP needs no tls');
  t.same(validateGateway(gateway('gw', [{ number: 443, name: 'secure', protocol: 'HTTPS', tls: null }])).map((v) => v.rule), ['gateway-tls-missing'], 'tls: null is no tls');
});

t.test("the seed's Gateways pass when the ingress Service exposes 80, 443 (and 21000)", async (t) => {
  const world = worldFromObjects([ingressService([{ name: 'grpc-21000', port: 21000 }]), ...seed.services]);
  for (const gw of seed.gateways) t.same(validateGateway(gw, world), [], String(gw.metadata?.name));
  const without = worldFromObjects([ingressService(), ...seed.services]);
  t.same(validateGateway(byName(seed.gateways, 'Gateway', 'test-kratos-gateway'), without), [], 'HTTP on 80');
  t.same(validateGateway(byName(seed.gateways, 'Gateway', 'es-gateway'), without), [], 'HTTPS on 443');
});

t.test("the seed's 21000 Gateway with an ingress Service lacking 21000 warns with the exact fix", async (t) => {
  const world = worldFromObjects([ingressService(), ...seed.services]);
  const [v, ...rest] = validateGateway(byName(seed.gateways, 'Gateway', 'data-center-grpc-gateway'), world);
  t.equal(rest.length, 0);
  t.equal(v?.rule, 'gateway-port-not-exposed');
  t.equal(v?.severity, 'warning');
  t.equal(v?.field, 'spec.servers[0].port.number');
  t.ok(v && fitsWarning(v), `fits one warning with its prefix: ${v?.message.length}`);
  t.match(v?.message, /IST0162/);
  t.match(v?.message, /Helm: service\.ports/);
  const command = /kubectl -n istio-system patch svc istio-ingressgateway --type=json -p '(.*)'$/.exec(v?.message ?? '');
  t.ok(command, `the message ends with the kubectl command: ${v?.message}`);
  t.same(JSON.parse(command?.[1] ?? 'null'), [{ op: 'add', path: '/spec/ports/-', value: { name: 'grpc-21000', port: 21000 } }]);
});

t.test('the fix names the real Service and its namespace', async (t) => {
  const world = worldFromObjects([svc('gw', 'ingress', [{ name: 'http', port: 80 }], { istio: 'ingressgateway' })]);
  const [v] = validateGateway(gateway('g', [{ number: 9000, name: 'tcp-9000', protocol: 'TCP' }]), world);
  t.ok(v && fitsWarning(v));
  t.match(v?.message, /^Service gw\/ingress lacks port 9000 \(IST0162\)/);
  t.match(v?.message, /kubectl -n gw patch svc ingress /);
  const json = /-p '(.*)'$/.exec(v?.message ?? '')?.[1] ?? 'null';
  t.same(JSON.parse(json), [{ op: 'add', path: '/spec/ports/-', value: { name: 'tcp-9000', port: 9000 } }]);
});

t.test('the new port name: the server name if usable and free, else <protocol>-<number>', async (t) => {
  const world = worldFromObjects([svc('gw', 'ingress', [{ name: 'tcp-9000', port: 80 }], { istio: 'ingressgateway' })]);
  const portName = (server: Parameters<typeof gateway>[1][number]) => {
    const message = validateGateway(gateway('g', [server]), world)[0]?.message ?? '';
    return (JSON.parse(/-p '(.*)'$/.exec(message)?.[1] ?? '[{}]') as { value: { name: string } }[])[0]?.value.name;
  };
  t.equal(portName({ number: 9000, name: 'Grpc_Thing', protocol: 'GRPC' }), 'grpc-9000', 'invalid as a Service port name');
  t.equal(portName({ number: 9000, name: 'tcp-9000', protocol: 'TCP' }), 'tcp-gw-9000', 'already taken on the Service');
  t.equal(portName({ number: 9001, protocol: 'TLS', tls: { mode: 'PASSTHROUGH' } }), 'tls-9001', 'unnamed server');
});

t.test('a Service exposes a server port as its port or its targetPort, TCP only', async (t) => {
  const check = (ports: Parameters<typeof svc>[2], number: number) =>
    validateGateway(gateway('g', [{ number, name: 'p', protocol: 'HTTP' }]), worldFromObjects([svc('istio-system', 'ingress', ports, { istio: 'ingressgateway' })]));
  t.same(check([{ name: 'http2', port: 80, targetPort: 8080 }], 80), [], 'port');
  t.same(check([{ name: 'http2', port: 80, targetPort: 8080 }], 8080), [], 'targetPort');
  t.same(rules(check([{ name: 'http2', port: 80, targetPort: 8080 }], 8081)), ['gateway-port-not-exposed']);
  t.same(rules(check([{ name: 'udp-53', port: 5353, protocol: 'UDP' }], 5353)), ['gateway-port-not-exposed'], 'a UDP port carries no gateway traffic');
  t.same(check([{ name: 'http2', port: 80, targetPort: 'http' }], 80), [], 'a named targetPort still exposes the port');
});

t.test('which Services serve a Gateway: selectors equal, one within the other, any namespace', async (t) => {
  const gw = gateway('g', [{ number: 21000, name: 'tcp', protocol: 'TCP' }], { namespace: 'apps', selector: { istio: 'ingressgateway' } });
  const serves = (selector: Record<string, string> | undefined) =>
    validateGateway(gw, worldFromObjects([svc('istio-system', 'ingress', [{ name: 'tcp', port: 21000 }], selector)], { complete: true })).length === 0;
  t.ok(serves({ istio: 'ingressgateway' }), 'same selector');
  t.ok(serves({ istio: 'ingressgateway', app: 'istio-ingressgateway' }), 'the Service selects more labels');
  t.notOk(serves({ istio: 'eastwestgateway' }), 'other value');
  t.notOk(serves({ app: 'istio-ingressgateway' }), 'lacks the gateway key');
  t.notOk(serves(undefined), 'a Service without a selector selects no pods');
  const narrowGateway = gateway('g', [{ number: 21000, name: 'tcp', protocol: 'TCP' }], { selector: { istio: 'ingressgateway', app: 'istio-ingressgateway' } });
  const subsetWorld = worldFromObjects([svc('istio-system', 'istio-ingressgateway', [{ name: 'tcp', port: 21000 }], { istio: 'ingressgateway' })], { complete: true });
  t.same(validateGateway(narrowGateway, subsetWorld), [], 'a Service selecting fewer of the gateway labels selects its pods');

  const many = worldFromObjects([
    svc('istio-system', 'a-ingress', [{ name: 'http', port: 80 }], { istio: 'ingressgateway' }),
    svc('istio-system', 'b-ingress', [{ name: 'tcp', port: 21000 }], { istio: 'ingressgateway' }),
  ]);
  t.same(validateGateway(gw, many), [], 'any serving Service exposing the port is enough');
  const [v] = validateGateway(gateway('g', [{ number: 7000, name: 'tcp-7000', protocol: 'TCP' }]), many);
  t.match(v?.message, /istio-system\/a-ingress/, 'the fix names the first Service');

  // The ingress gateway's own Service selects a subset of the Gateway's labels; another
  // Service wanting more labels (a canary) must not become the patch target.
  const realWorld = worldFromObjects([
    svc('istio-system', 'canary', [{ name: 'http', port: 80 }], { istio: 'ingressgateway', app: 'istio-ingressgateway', version: 'canary' }),
    svc('istio-system', 'istio-ingressgateway', [{ name: 'http', port: 80 }], { istio: 'ingressgateway' }),
  ], { complete: true });
  const [fix] = validateGateway(gateway('g', [{ number: 7000, name: 'tcp-7000', protocol: 'TCP' }], { selector: { istio: 'ingressgateway', app: 'istio-ingressgateway' } }), realWorld);
  t.match(fix?.message, /patch svc istio-ingressgateway /, 'the patch aims at the Service certain to select the pods');
});

t.test('no serving Service: silent offline (ingress Service not in the files), a warning when the world is complete', async (t) => {
  const gw = gateway('g', [{ number: 80, name: 'http', protocol: 'HTTP' }], { selector: { istio: 'missing' } });
  t.same(validateGateway(gw, worldFromObjects([ingressService()])), []);
  const [v, ...rest] = validateGateway(gw, worldFromObjects([ingressService()], { complete: true }));
  t.equal(rest.length, 0, 'one warning, not one per server');
  t.equal(v?.rule, 'gateway-port-not-exposed');
  t.equal(v?.field, 'spec.selector');
  t.match(v?.message, /no Service selects the gateway pods \(spec\.selector istio=missing\)/);
  t.same(validateGateway(gateway('g', [{ number: 80, name: 'http', protocol: 'HTTP' }], { selector: {} }), worldFromObjects([], { complete: true })), [], 'an empty selector is not checked');
});

t.test('unavailable world: one warning instead of the cluster-aware rule; structural rules still run', async (t) => {
  const world = unavailableWorld('the Kubernetes API could not be read (Services: connect ECONNREFUSED)');
  const v = validateGateway(gateway('g', [
    { number: 21000, name: 'tcp', protocol: 'TCP' },
    { number: 21001, name: 'tcp', protocol: 'TCP' },
  ]), world);
  t.same(rules(v), ['gateway-port-name-duplicate', 'traffic-checks-unavailable']);
  t.equal(v[1]?.severity, 'warning');
  t.match(v[1]?.message, /could not check whether a Service exposes its ports because the Kubernetes API could not be read/);
  t.ok(v.every(fitsWarning));
});

t.test('without a world only the structural rules run', async (t) => {
  t.same(validateGateway(byName(seed.gateways, 'Gateway', 'data-center-grpc-gateway')), []);
});

t.test('identities do not depend on server order (grandfathering on UPDATE)', async (t) => {
  const world = worldFromObjects([ingressService()]);
  const servers = [
    { number: 21000, name: 'tcp', protocol: 'TCP' },
    { number: 21001, name: 'tcp', protocol: 'BOGUS' },
    { number: 443, name: 'https', protocol: 'HTTPS' },
  ];
  const ids = (list: typeof servers) => validateGateway(gateway('g', list), world).map((v) => v.identity).sort();
  const forward = ids(servers);
  t.equal(forward.length, 5, 'dup name, protocol, tls, two ports not exposed');
  t.same(ids([servers[2], servers[0], servers[1]] as typeof servers).filter((id) => !id.startsWith('gateway-port-name-duplicate')), forward.filter((id) => !id.startsWith('gateway-port-name-duplicate')));
});

t.test('untrusted shapes never throw and yield nothing', async (t) => {
  const world = worldFromObjects([ingressService()], { complete: true });
  for (const spec of [undefined, null, 'x', [], { servers: 'x' }, { servers: [null, 1, 'x', { port: 'x' }, { port: { number: '80' } }] }, { selector: 'x', servers: [] }]) {
    t.same(validateGateway({ apiVersion: 'networking.istio.io/v1', kind: 'Gateway', metadata: { name: 'g' }, spec }, world).filter((v) => v.rule !== 'gateway-protocol'), [], JSON.stringify(spec));
  }
});

t.test('messages fit one admission warning even with long names', async (t) => {
  const long = 'x'.repeat(63);
  const world = worldFromObjects([svc(long, long, [{ name: 'http', port: 80 }], { istio: 'ingressgateway' })]);
  const violations = validateGateway(gateway('g', [
    { number: 65000, name: `tcp-${'y'.repeat(50)}`, protocol: 'TCP' },
    { number: 65001, name: `tcp-${'y'.repeat(50)}`, protocol: `X${'z'.repeat(200)}` },
    { number: 65002, name: `t-${'y'.repeat(50)}`, protocol: 'HTTPS' },
  ]), world);
  t.same(rules(violations).sort(), ['gateway-port-name-duplicate', 'gateway-port-not-exposed', 'gateway-port-not-exposed', 'gateway-port-not-exposed', 'gateway-protocol', 'gateway-tls-missing']);
  for (const v of violations) t.ok(fitsWarning(v), `${v.rule}: ${v.message.length}`);
});

t.test('the short kubectl patch for a UDP server still names the UDP protocol', async (t) => {
  const world = worldFromObjects([svc('istio-system', 'istio-ingressgateway', [{ name: 'http', port: 80 }], { istio: 'ingressgateway' })]);
  const [v] = validateGateway(gateway('g', [{ number: 5353, name: 'udp-dns-server', protocol: 'UDP' }]), world);
  t.ok(v && fitsWarning(v));
  t.notMatch(v?.message, /targetPort/, 'the short form was needed');
  const json = /-p '(.*)'$/.exec(v?.message ?? '')?.[1] ?? 'null';
  const [patch] = JSON.parse(json) as { value: Record<string, unknown> }[];
  t.equal(patch?.value.protocol, 'UDP', v?.message ?? '');
  t.equal(patch?.value.port, 5353);
  const [tcp] = validateGateway(gateway('g', [{ number: 9000, name: 'tcp-dns-server', protocol: 'TCP' }]), world);
  t.match(tcp?.message, /kubectl/);
  t.notMatch(tcp?.message, /"protocol"/, 'TCP is the default and is left out of the short form');
});

t.test('a Gateway with 200,000 unexposed servers is judged, not a stack overflow', async (t) => {
  const servers = Array.from({ length: 200_000 }, (_, i) => ({ number: 30000 + (i % 30000), protocol: 'TCP' }));
  const violations = validateGateway(gateway('g', servers), worldFromObjects([ingressService()]));
  t.equal(violations.length, 200_000);
  t.equal(violations[199_999]?.field, 'spec.servers[199999].port.number');
});

t.test('a deeply nested Gateway with the cluster unavailable is judged, not thrown on', async (t) => {
  let nested: Record<string, unknown> = {};
  for (let depth = 0; depth < 20_000; depth++) nested = { next: nested };
  const deepGateway = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'Gateway',
    metadata: { name: 'deep', namespace: 'default' },
    spec: { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }], extra: nested },
  };
  const violations = validateGateway(deepGateway, unavailableWorld('the API is down'));
  t.same(violations.map((v) => v.rule), ['traffic-checks-unavailable']);
});
