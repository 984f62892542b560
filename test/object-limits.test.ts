/** Objects beyond what the webhook judges are refused with a message, by both webhooks, before any rule runs. */
import t from 'tap';
import { handleMutate, handleValidate } from '../src/admission/handlers.ts';
import type { AdmissionRequest } from '../src/admission/review.ts';
import {
  MAX_GATEWAY_HOSTS, MAX_GATEWAY_SERVERS, MAX_LABELS, MAX_SERVICE_PORTS, MAX_VIRTUAL_SERVICE_DESTINATIONS, MAX_VIRTUAL_SERVICE_GATEWAYS,
  MAX_VIRTUAL_SERVICE_HOSTS, MAX_VIRTUAL_SERVICE_ROUTES, exceededLimit,
} from '../src/policies/object-limits.ts';
import { namespace, review, service, testConfig } from './helpers/reviews.ts';

const config = testConfig();
const request = (options: Parameters<typeof review>[0]) => review(options).request as unknown as AdmissionRequest;
const ports = (count: number) => Array.from({ length: count }, (_, i) => ({ name: 'web', port: 1 + i }));
const labels = (count: number) => Object.fromEntries(Array.from({ length: count }, (_, i) => [`l${i}`, 'v']));

t.test('a Service with more ports than the limit is denied by /validate and /mutate, naming the count', async (t) => {
  const huge = service('huge', ports(MAX_SERVICE_PORTS + 1));
  for (const outcome of [handleValidate(request({ object: huge }), config), handleMutate(request({ object: huge }), config)]) {
    t.equal(outcome.response.allowed, false);
    t.equal(outcome.decision, 'denied');
    t.equal(outcome.response.status?.code, 403);
    t.equal(outcome.response.status?.message, `Service default/huge was not admitted: it has ${MAX_SERVICE_PORTS + 1} ports; mesh-admission judges Services of at most ${MAX_SERVICE_PORTS} ports (an EndpointSlice holds at most 100): split it into several Services`);
    t.notOk(outcome.response.patch, 'no mutation');
  }
});

t.test('at the limit, the rules run as usual', async (t) => {
  const atLimit = service('big', ports(MAX_SERVICE_PORTS));
  const mutated = handleMutate(request({ object: atLimit }), config);
  t.equal(mutated.decision, 'mutated');
  t.equal(handleValidate(request({ object: atLimit }), config).response.allowed, false, 'duplicate names are denied by the rules');
  t.equal(exceededLimit('Service', atLimit), undefined);
});

t.test('warn enforcement never blocks: the object is allowed with the reason as a warning', async (t) => {
  const outcome = handleValidate(request({ object: service('huge', ports(MAX_SERVICE_PORTS + 1)) }), testConfig({ enforcement: 'warn' }));
  t.equal(outcome.response.allowed, true);
  t.equal(outcome.decision, 'warned');
  t.match(outcome.response.warnings, [/^Service default\/huge was not admitted: it has 1001 ports/]);
});

t.test('exempt namespaces and Istio-managed Services are never refused', async (t) => {
  const huge = (ns: string, extra = {}) => service('huge', ports(MAX_SERVICE_PORTS + 1), { namespace: ns, ...extra });
  t.equal(handleValidate(request({ namespace: 'sandbox', object: huge('sandbox') }), testConfig({ 'exempt-namespaces': 'sandbox' })).decision, 'skipped');
  t.equal(handleValidate(request({ namespace: 'kube-system', object: huge('kube-system') }), config).decision, 'skipped');
  t.equal(handleMutate(request({ object: huge('default', { labels: { istio: 'pilot' } }) }), config).decision, 'skipped');
});

t.test('a Namespace with more labels than the limit is denied; one at the limit is labelled', async (t) => {
  const over = handleMutate(request({ kind: 'Namespace', namespace: '', object: namespace('crowded', labels(MAX_LABELS + 1)) }), config);
  t.equal(over.decision, 'denied');
  t.match(over.response.status?.message, /^Namespace crowded was not admitted: it has more than 5000 labels/);
  const at = handleMutate(request({ kind: 'Namespace', namespace: '', object: namespace('crowded', labels(MAX_LABELS)) }), config);
  t.equal(at.decision, 'mutated');
});

t.test('a VirtualService listing more hosts and sniHosts than the limit is denied before its rules run; one at the limit is judged', async (t) => {
  const traffic = testConfig({ 'traffic-checks': 'true' });
  const names = (count: number, domain: string) => Array.from({ length: count }, (_, i) => `h${i}.${domain}`);
  // The hosts and the sniHosts of two TLS matches add up.
  const route = [{ destination: { host: 'backend.default.svc.cluster.local' } }];
  const virtualService = (hosts: number, sniHosts: number) => ({
    apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'wide', namespace: 'default' },
    spec: { hosts: names(hosts, 'example.com'), tls: [{ match: [{ sniHosts: names(sniHosts, 'example.org') }, { port: 443 }], route }, { match: [{ sniHosts: names(1, 'example.net') }], route }] },
  });
  const vsRequest = (object: object) => request({ kind: 'VirtualService', group: 'networking.istio.io', object });
  const over = handleValidate(vsRequest(virtualService(10, MAX_VIRTUAL_SERVICE_HOSTS - 10)), traffic);
  t.equal(over.decision, 'denied');
  t.equal(over.response.status?.message, `VirtualService default/wide was not admitted: it lists ${MAX_VIRTUAL_SERVICE_HOSTS + 1} hosts and sniHosts; mesh-admission judges VirtualServices of at most ${MAX_VIRTUAL_SERVICE_HOSTS}: split it into several VirtualServices`);
  t.same(over.judged, [], 'no rule ran');
  const at = handleValidate(vsRequest(virtualService(10, MAX_VIRTUAL_SERVICE_HOSTS - 11)), traffic);
  t.notMatch(at.response.status?.message ?? '', /was not admitted: it lists/, 'not refused by the limit: judged by the rules');
  t.ok(at.judged.length > 0, 'the rules ran');
  t.equal(exceededLimit('VirtualService', { spec: { hosts: 'many', tls: [null, { match: 'x' }, { match: [{ sniHosts: {} }]}] } }), undefined, 'odd shapes count nothing');
});

t.test('other kinds and odd shapes are not limited', async (t) => {
  t.equal(exceededLimit('ConfigMap', { spec: { ports: ports(MAX_SERVICE_PORTS + 1) } }), undefined);
  t.equal(exceededLimit('Service', { spec: { ports: 'many' } }), undefined);
  t.equal(exceededLimit('Namespace', { metadata: { labels: null } }), undefined);
});

t.test('a Gateway with more servers, or more hosts across its servers, than the limits is denied before its rules run', async (t) => {
  const gatewayRequest = (servers: object[]) => request({
    kind: 'Gateway', group: 'networking.istio.io',
    object: { apiVersion: 'networking.istio.io/v1', kind: 'Gateway', metadata: { name: 'edge', namespace: 'default' }, spec: { selector: { istio: 'ingressgateway' }, servers } },
  });
  const server = (i: number, hosts = 1) => ({ port: { number: 8000 + (i % 1000), name: `http-${i}`, protocol: 'HTTP' }, hosts: Array.from({ length: hosts }, (_, j) => `h${i}-${j}.example.com`) });
  const servers = (count: number, hosts = 1) => Array.from({ length: count }, (_, i) => server(i, hosts));

  const tooManyServers = handleValidate(gatewayRequest(servers(MAX_GATEWAY_SERVERS + 1)), config);
  t.equal(tooManyServers.decision, 'denied');
  t.equal(tooManyServers.response.status?.message, `Gateway default/edge was not admitted: it has ${MAX_GATEWAY_SERVERS + 1} servers; mesh-admission judges Gateways of at most ${MAX_GATEWAY_SERVERS} servers: split it into several Gateways`);
  t.same(tooManyServers.judged, [], 'no rule ran');

  const perServer = MAX_GATEWAY_HOSTS / 10;
  const tooManyHosts = handleValidate(gatewayRequest([...servers(10, perServer), server(10)]), config);
  t.equal(tooManyHosts.response.status?.message, `Gateway default/edge was not admitted: its servers list ${MAX_GATEWAY_HOSTS + 1} hosts; mesh-admission judges Gateways of at most ${MAX_GATEWAY_HOSTS}: split it into several Gateways`);

  for (const atLimit of [servers(MAX_GATEWAY_SERVERS), servers(10, perServer)]) {
    const judged = handleValidate(gatewayRequest(atLimit), config);
    t.notMatch(judged.response.status?.message ?? '', /was not admitted/, 'at the limit: judged by the rules');
  }
  t.equal(exceededLimit('Gateway', { spec: { servers: [null, 'x', { hosts: 'many' }] } }), undefined, 'odd shapes count nothing');
});

t.test('a VirtualService with more gateways, routes, or destinations than the limits is denied before its rules run', async (t) => {
  const vsRequest = (spec: object) => request({
    kind: 'VirtualService', group: 'networking.istio.io',
    object: { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'wide', namespace: 'default' }, spec: { hosts: ['shop.example.com'], ...spec } },
  });
  const destination = (i: number) => ({ destination: { host: `backend-${i}` } });
  const routes = (count: number, make: (i: number) => unknown) => Array.from({ length: count }, (_, i) => make(i));
  const cases: { spec: object; message: string }[] = [
    {
      spec: { gateways: routes(MAX_VIRTUAL_SERVICE_GATEWAYS + 1, (i) => `gw-${i}`), http: [{ route: [destination(0)] }] },
      message: `it lists ${MAX_VIRTUAL_SERVICE_GATEWAYS + 1} gateways; mesh-admission judges VirtualServices bound to at most ${MAX_VIRTUAL_SERVICE_GATEWAYS}`,
    },
    {
      // http, tls and tcp routes add up.
      spec: { http: routes(MAX_VIRTUAL_SERVICE_ROUTES - 1, (i) => ({ route: [destination(i)] })), tls: [{ route: [destination(0)] }], tcp: [{ route: [destination(0)] }] },
      message: `it has ${MAX_VIRTUAL_SERVICE_ROUTES + 1} routes (http, tls and tcp); mesh-admission judges VirtualServices of at most ${MAX_VIRTUAL_SERVICE_ROUTES}`,
    },
    {
      // Weighted destinations, the mirror and the mirrors of a route add up.
      spec: { http: routes(MAX_VIRTUAL_SERVICE_DESTINATIONS / 4, (i) => ({ route: [destination(i), destination(i + 1)], mirror: { host: 'shadow' }, mirrors: [destination(i)] })), tcp: [{ route: [destination(0)] }] },
      message: `its routes have ${MAX_VIRTUAL_SERVICE_DESTINATIONS + 1} destinations and mirrors; mesh-admission judges VirtualServices of at most ${MAX_VIRTUAL_SERVICE_DESTINATIONS}`,
    },
  ];
  for (const { spec, message } of cases) {
    const outcome = handleValidate(vsRequest(spec), config);
    t.equal(outcome.decision, 'denied');
    t.equal(outcome.response.status?.message, `VirtualService default/wide was not admitted: ${message}: split it into several VirtualServices`);
    t.same(outcome.judged, [], 'no rule ran');
  }
  const atLimits = {
    gateways: routes(MAX_VIRTUAL_SERVICE_GATEWAYS, (i) => `gw-${i}`),
    http: routes(MAX_VIRTUAL_SERVICE_DESTINATIONS / 4, (i) => ({ route: [destination(i), destination(i + 1)], mirror: { host: 'shadow' }, mirrors: [destination(i)] })),
  };
  t.equal(exceededLimit('VirtualService', atLimits), undefined);
  t.notMatch(handleValidate(vsRequest(atLimits), config).response.status?.message ?? '', /was not admitted/, 'at the limits: judged by the rules');
});
