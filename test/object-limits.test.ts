/** Objects beyond what the webhook judges are refused with a message, by both webhooks, before any rule runs. */
import t from 'tap';
import { handleMutate, handleValidate } from '../src/admission/handlers.ts';
import type { AdmissionRequest } from '../src/admission/review.ts';
import { MAX_LABELS, MAX_SERVICE_PORTS, MAX_VIRTUAL_SERVICE_HOSTS, exceededLimit } from '../src/policies/object-limits.ts';
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
