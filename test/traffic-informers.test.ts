/**
 * The informer-backed world against a fake API server (plain HTTP, paginated list + watch):
 * first sync, watch events, paging, slim caches, absent Istio CRDs, older CRD versions, an
 * outage and the recovery, and readiness in degraded mode. The real API server is exercised
 * by test/e2e/traffic.e2e.ts and test/e2e/scale.e2e.ts.
 */
import t from 'tap';
import http from 'node:http';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { AddressInfo, Socket } from 'node:net';
import { KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { slimObject } from '../src/kube/slim-list-watch.ts';
import { startTrafficCaches, startTrafficChecks, type TrafficCacheOptions, type TrafficCaches } from '../src/kube/informers.ts';
import { LOG_SERIALIZERS } from '../src/observability/logger.ts';
import { svc, gateway, serviceEntry } from './helpers/traffic.ts';

interface Stored {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  [key: string]: unknown;
}

/** Just enough of the API server for list+watch of the three resources. */
class FakeApi {
  resourceVersion = 1;
  /** Which version serves gateways/serviceentries; undefined: the CRD is not installed. */
  istioVersion: string | undefined = 'v1';
  readonly objects = new Map<string, Map<string, Stored>>(['services', 'gateways', 'serviceentries', 'destinationrules', 'virtualservices'].map((plural) => [plural, new Map()]));
  readonly requests: string[] = [];
  /** Every list call: its path with the limit and continue token it sent. */
  readonly lists: { path: string; limit: string | null; continue: string | null }[] = [];
  private readonly watchers = new Map<string, Set<http.ServerResponse>>();
  private readonly sockets = new Set<Socket>();
  private server: http.Server | undefined;
  port = 0;

  async listen(port = 0): Promise<void> {
    const server = http.createServer((req, res) => this.handle(req, res));
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.watchers.clear();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }

  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: `http://127.0.0.1:${this.port}`, skipTLSVerify: true }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'c', cluster: 'fake', user: 'u' }],
      currentContext: 'c',
    });
    return kc;
  }

  /** Cuts every open watch connection (as a restarting API server or a proxy reset would). */
  breakWatches(): void {
    for (const set of this.watchers.values()) for (const res of set) res.socket?.destroy();
  }

  put(plural: string, object: Stored): void {
    this.resourceVersion += 1;
    const stored = { ...object, metadata: { ...object.metadata, resourceVersion: String(this.resourceVersion) } };
    const store = this.objects.get(plural) as Map<string, Stored>;
    const key = `${object.metadata.namespace}/${object.metadata.name}`;
    const type = store.has(key) ? 'MODIFIED' : 'ADDED';
    store.set(key, stored);
    for (const res of this.watchers.get(plural) ?? []) res.write(`${JSON.stringify({ type, object: stored })}\n`);
  }

  remove(plural: string, namespace: string, name: string): void {
    this.resourceVersion += 1;
    const store = this.objects.get(plural) as Map<string, Stored>;
    const key = `${namespace}/${name}`;
    const stored = store.get(key);
    if (!stored) return;
    store.delete(key);
    const object = { ...stored, metadata: { ...stored.metadata, resourceVersion: String(this.resourceVersion) } };
    for (const res of this.watchers.get(plural) ?? []) res.write(`${JSON.stringify({ type: 'DELETED', object })}\n`);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    this.requests.push(`${url.pathname}${url.searchParams.get('watch') ? '?watch' : ''}`);
    const core = url.pathname === '/api/v1/services' ? 'services' : undefined;
    const istio = /^\/apis\/networking\.istio\.io\/([^/]+)\/(gateways|serviceentries|destinationrules|virtualservices)$/.exec(url.pathname);
    const plural = core ?? (istio && istio[1] === this.istioVersion ? istio[2] : undefined);
    if (!plural) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404, message: 'the server could not find the requested resource' }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    if (url.searchParams.get('watch') === 'true') {
      const set = this.watchers.get(plural) ?? new Set();
      set.add(res);
      this.watchers.set(plural, set);
      res.on('close', () => set.delete(res));
      res.flushHeaders();
      return;
    }
    // Paged as the API server does: `limit` objects, and a continue token while more remain.
    const all = [...(this.objects.get(plural) as Map<string, Stored>).values()];
    const limit = url.searchParams.get('limit');
    const token = url.searchParams.get('continue');
    this.lists.push({ path: url.pathname, limit, continue: token });
    const offset = token ? Number(Buffer.from(token, 'base64url').toString()) : 0;
    const end = limit ? offset + Number(limit) : all.length;
    const items = all.slice(offset, end);
    const metadata = { resourceVersion: String(this.resourceVersion), ...(end < all.length ? { continue: Buffer.from(String(end)).toString('base64url') } : {}) };
    res.end(JSON.stringify({ kind: 'List', apiVersion: 'v1', metadata, items }));
  }
}

const logger = { info() {}, warn() {}, error() {}, debug() {} };
const fast = { logger, retryBaseMs: 50, retryMaxMs: 200, absentRecheckMs: 100, syncTimeoutMs: 5000 };

async function until(what: string, predicate: () => boolean, timeoutMs = 5000): Promise<number> {
  const started = performance.now();
  while (!predicate()) {
    if (performance.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return performance.now() - started;
}

function asStored(object: unknown): Stored {
  return object as Stored;
}

async function started(t: { teardown: (fn: () => unknown) => void }, api: FakeApi, options: Partial<Omit<TrafficCacheOptions, 'kubeConfig'>> = {}): Promise<TrafficCaches> {
  const caches = startTrafficCaches({ ...fast, ...options, kubeConfig: api.kubeConfig() });
  t.teardown(() => caches.stop());
  return caches;
}

t.test('first sync: lists, then serves lookups from the caches; watch events update them', async (t) => {
  const api = new FakeApi();
  api.put('services', asStored(svc('istio-system', 'istio-ingressgateway', [{ name: 'http2', port: 80 }], { istio: 'ingressgateway' })));
  api.put('gateways', asStored(gateway('public', [], { namespace: 'istio-system' })));
  api.put('serviceentries', asStored(serviceEntry('ext', 'api', ['*.example.com'])));
  await api.listen();
  t.teardown(() => api.stop());
  const caches = await started(t, api);
  t.equal(caches.world.available, false, 'not before the first sync');
  t.match(caches.notReadyReason(), /waiting for the caches of Services and Istio.s networking objects to sync/);
  t.equal(await caches.waitForSync(), true);
  t.equal(caches.notReadyReason(), undefined);
  const { world } = caches;
  t.equal(world.available, true);
  t.equal(world.complete, true);
  t.equal(world.servicesServingGateway({ istio: 'ingressgateway' })[0]?.name, 'istio-ingressgateway');
  t.ok(world.gatewayExists('istio-system', 'public'));
  t.notOk(world.gatewayExists('default', 'public'));
  t.same(world.serviceEntries().map((entry) => entry.hosts), [['*.example.com']]);
  t.same(world.gatewayNamespaces('public'), ['istio-system'], 'where a Gateway of that name lives');
  t.same(world.gatewayNamespaces('nope'), []);

  const before = api.requests.length;
  api.put('services', asStored(svc('shop', 'reviews', [{ name: 'http', port: 9080 }])));
  await until('the watched Service', () => world.findService('shop', 'reviews') !== undefined);
  t.equal(world.findService('shop', 'reviews')?.ports[0]?.port, 9080);
  t.same(api.requests.slice(before), [], 'lookups make no API calls');
});

t.test('lists are read in pages: every object arrives, each page asks for the next with its token', async (t) => {
  const api = new FakeApi();
  for (let i = 0; i < 1234; i++) api.put('services', asStored(svc(`ns-${i % 7}`, `svc-${i}`, [{ name: 'http', port: 8000 + (i % 100) }])));
  for (let i = 0; i < 25; i++) api.put('gateways', asStored(gateway(`gw-${i}`, [], { namespace: 'istio-system' })));
  await api.listen();
  t.teardown(() => api.stop());
  const caches = await started(t, api, { pageSize: 100 });
  t.equal(await caches.waitForSync(), true);
  const serviceLists = api.lists.filter((list) => list.path === '/api/v1/services');
  t.equal(serviceLists.length, 13, '1234 Services in pages of 100');
  t.ok(serviceLists.every((list) => list.limit === '100'), 'every page asks for 100');
  t.equal(serviceLists[0]?.continue, null, 'the first page has no token');
  t.same(serviceLists.slice(1).map((list) => Number(Buffer.from(list.continue ?? '', 'base64url').toString())), Array.from({ length: 12 }, (_, i) => (i + 1) * 100), 'each next page continues where the last ended');
  t.equal(api.lists.filter((list) => list.path.endsWith('/gateways') && list.limit === '100').length, 1, '25 Gateways: one page');
  t.equal(caches.world.findService('ns-0', 'svc-0')?.ports[0]?.port, 8000, 'first page');
  t.equal(caches.world.findService('ns-1', 'svc-1233')?.ports[0]?.port, 8033, 'last page');
  t.ok(caches.world.gatewayExists('istio-system', 'gw-24'));
});

t.test('the caches keep the rules\' views, not the objects', async (t) => {
  const api = new FakeApi();
  const heavy = (name: string) => {
    const object = asStored(svc('shop', name, [{ name: 'http', port: 9080 }], { app: name }));
    const metadata = object.metadata as Record<string, unknown>;
    metadata['annotations'] = { 'kubectl.kubernetes.io/last-applied-configuration': 'x'.repeat(10_000) };
    metadata['managedFields'] = [{ manager: 'kubectl', fieldsV1: { 'f:spec': {} } }];
    return { ...object, status: { loadBalancer: {} } };
  };
  api.put('services', heavy('listed'));
  await api.listen();
  t.teardown(() => api.stop());
  const caches = await started(t, api);
  t.equal(await caches.waitForSync(), true);
  api.put('services', heavy('watched'));
  await until('the watched Service', () => caches.world.findService('shop', 'watched') !== undefined);
  for (const name of ['listed', 'watched']) {
    const view = caches.world.findService('shop', name);
    t.same(view, { namespace: 'shop', name, selector: { app: name }, ports: [{ name: 'http', port: 9080, protocol: 'TCP', targetPort: undefined }], exportTo: [] }, `${name}: the rules' view`);
    t.notOk(JSON.stringify(view).includes('xxxx'), `${name}: no annotation, managedFields or status kept`);
  }
});

t.test('Gateways: the cache keeps their slim view, and the index by port and host follows watch events', async (t) => {
  const api = new FakeApi();
  const public80 = gateway('public', [{ number: 80, name: 'http', protocol: 'HTTP', hosts: ['shop.example.com', './own.example.com'] }], { namespace: 'istio-system' });
  const heavy = { ...public80, metadata: { ...(public80.metadata as object), annotations: { 'kubectl.kubernetes.io/last-applied-configuration': 'x'.repeat(10_000) } } };
  api.put('gateways', asStored(heavy));
  await api.listen();
  t.teardown(() => api.stop());
  const caches = await started(t, api);
  t.equal(await caches.waitForSync(), true);
  const { world } = caches;
  t.same(world.findGateway('istio-system', 'public'), {
    namespace: 'istio-system',
    name: 'public',
    selector: { istio: 'ingressgateway' },
    servers: [{ port: 80, bind: '', hosts: ['shop.example.com', './own.example.com'] }],
  }, "the rules' view");
  t.notOk(JSON.stringify(world.findGateway('istio-system', 'public')).includes('xxxx'), 'no annotation kept');
  t.same(world.gatewaysListening(80, '', 'shop.example.com').map((g) => g.name), ['public']);
  t.same(world.gatewaysListening(443, '', 'shop.example.com'), []);

  api.put('gateways', asStored(gateway('team', [{ number: 80, name: 'http', protocol: 'HTTP', hosts: ['shop.example.com'] }], { namespace: 'team' })));
  await until('the watched Gateway indexed', () => world.gatewaysListening(80, '', 'shop.example.com').length === 2);
  t.same(world.gatewayNamespaces('team'), ['team']);
  api.put('gateways', asStored(gateway('team', [{ number: 443, name: 'https', protocol: 'HTTPS', hosts: ['shop.example.com'] }], { namespace: 'team' })));
  await until('the modified Gateway re-indexed', () => world.gatewaysListening(443, '', 'shop.example.com').length === 1);
  t.same(world.gatewaysListening(80, '', 'shop.example.com').map((g) => g.name), ['public'], 'its old server is gone from the index');
  api.remove('gateways', 'istio-system', 'public');
  await until('the deleted Gateway unindexed', () => world.gatewaysListening(80, '', 'shop.example.com').length === 0);
  t.equal(world.findGateway('istio-system', 'public'), undefined);
  t.same(world.gatewayNamespaces('public'), []);
});

t.test('DestinationRules and VirtualServices are looked up by host through indexes the watch keeps current', async (t) => {
  const api = new FakeApi();
  const destinationRule = (namespace: string, name: string, host: string, subsets: string[]): Stored => ({
    apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name, namespace },
    spec: { host, subsets: subsets.map((subset) => ({ name: subset, labels: { version: subset } })), trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } },
  });
  const virtualService = (namespace: string, name: string, hosts: string[], gateways?: string[]): Stored => ({
    apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name, namespace },
    spec: { hosts, ...(gateways ? { gateways } : {}), http: [{ route: [{ destination: { host: hosts[0] } }] }] },
  });
  api.put('destinationrules', destinationRule('shop', 'reviews', 'reviews', ['v1']));
  api.put('virtualservices', virtualService('shop', 'reviews', ['reviews']));
  api.put('virtualservices', virtualService('shop', 'edge', ['reviews'], ['istio-system/public']));
  await api.listen();
  t.teardown(() => api.stop());
  const caches = await started(t, api);
  t.equal(await caches.waitForSync(), true);
  const world = caches.world;
  const reviews = { scope: '*', host: 'reviews.shop.svc.cluster.local' };

  t.same(world.destinationRulesFor('shop/reviews').map((rule) => rule.subsets), [['v1']]);
  t.notOk(JSON.stringify(world.destinationRulesFor('shop/reviews')).includes('ISTIO_MUTUAL'), 'the traffic policy is not kept');
  t.same(world.meshHostConflicts(reviews, 'shop/new'), { count: 1, more: false, names: ['shop/reviews'] }, 'the Gateway-only VirtualService is no mesh host');
  t.equal(world.meshHostConflicts(reviews, 'shop/reviews'), undefined, 'the stored copy of the VirtualService judged is left out');

  api.put('destinationrules', destinationRule('shop', 'reviews', 'reviews', ['v1', 'v2']));
  await until('the updated subsets', () => world.destinationRulesFor('shop/reviews')[0]?.subsets.length === 2);
  api.put('virtualservices', virtualService('shop', 'edge', ['reviews']));
  await until('the edge VirtualService on the mesh', () => world.meshHostConflicts(reviews, 'shop/new')?.count === 2);
  t.same(world.meshHostConflicts(reviews, 'shop/new')?.names, ['shop/edge', 'shop/reviews']);
  api.put('destinationrules', destinationRule('shop', 'reviews', 'reviews.shop.svc.cluster.local', ['v3']));
  await until('the host change', () => world.destinationRulesFor('shop/reviews')[0]?.subsets[0] === 'v3');
  t.equal(world.destinationRulesFor('shop/reviews').length, 1, 'the old host\'s entry is gone');

  api.remove('destinationrules', 'shop', 'reviews');
  api.remove('virtualservices', 'shop', 'reviews');
  await until('the deletions', () => world.destinationRulesFor('shop/reviews').length === 0 && world.meshHostConflicts(reviews, 'shop/new')?.count === 1);
  t.same(world.meshHostConflicts(reviews, 'shop/new')?.names, ['shop/edge']);

  // A fresh list after a broken watch builds a fresh index, served once it has synced.
  api.breakWatches();
  api.put('destinationrules', destinationRule('front', 'api', 'api.example.com', ['eu']));
  await until('the re-listed DestinationRule', () => world.destinationRulesFor('front/api.example.com').length === 1);
  t.same(world.meshHostConflicts(reviews, 'shop/new')?.names, ['shop/edge'], 'the VirtualServices survive the re-list');
});

t.test('a slim object is the identity ListWatch keys and versions by, and the view', async (t) => {
  const heavy = { ...svc('shop', 'reviews', [{ name: 'http', port: 9080 }]), status: { loadBalancer: {} } };
  const metadata = heavy.metadata as Record<string, unknown>;
  Object.assign(metadata, { uid: 'u-1', resourceVersion: '17', annotations: { big: 'x'.repeat(1000) }, managedFields: [{ manager: 'kubectl' }] });
  t.same(slimObject(heavy as KubernetesObject, () => 'the view'), { metadata: { name: 'reviews', namespace: 'shop', resourceVersion: '17' }, view: 'the view' });
});

t.test('Istio CRDs absent (404): synced and empty, not unavailable; picked up once installed', async (t) => {
  const api = new FakeApi();
  api.istioVersion = undefined;
  await api.listen();
  t.teardown(() => api.stop());
  const logged: { fields: unknown; message: unknown }[] = [];
  const capture = { ...logger, info: (fields: unknown, message: unknown) => void logged.push({ fields, message }) };
  const caches = startTrafficCaches({ ...fast, logger: capture, kubeConfig: api.kubeConfig() });
  t.teardown(() => caches.stop());
  t.equal(await caches.waitForSync(), true);
  t.match(logged.find((l) => l.message === 'traffic caches synced')?.fields, { absent: ['Gateways', 'ServiceEntries'] }, 'the log names the kinds in the plural');
  t.equal(caches.world.available, true);
  t.notOk(caches.world.gatewayExists('istio-system', 'public'));

  api.istioVersion = 'v1';
  api.put('gateways', asStored(gateway('public', [], { namespace: 'istio-system' })));
  await until('the Gateway after the CRD appeared', () => caches.world.gatewayExists('istio-system', 'public'));
  t.pass('rechecked and found');
});

t.test('an older Istio serving only v1alpha3 is read in that version', async (t) => {
  const api = new FakeApi();
  api.istioVersion = 'v1alpha3';
  api.put('gateways', asStored(gateway('legacy', [], { namespace: 'istio-system', apiVersion: 'networking.istio.io/v1alpha3' })));
  await api.listen();
  t.teardown(() => api.stop());
  const caches = await started(t, api);
  t.equal(await caches.waitForSync(), true);
  t.ok(caches.world.gatewayExists('istio-system', 'legacy'));
  t.ok(api.requests.includes('/apis/networking.istio.io/v1alpha3/gateways?watch'));
});

t.test('an outage makes the world unavailable at once; it recovers with a fresh list', async (t) => {
  const api = new FakeApi();
  api.put('services', asStored(svc('shop', 'reviews', [{ name: 'http', port: 9080 }])));
  await api.listen();
  t.teardown(() => api.stop());
  const caches = await started(t, api);
  t.equal(await caches.waitForSync(), true);

  const port = api.port;
  await api.stop();
  const detectedMs = await until('unavailable', () => !caches.world.available);
  t.ok(detectedMs < 2000, `outage noticed in ${Math.round(detectedMs)} ms`);
  t.match(caches.world.unavailableReason, /^the Kubernetes API could not be read \(\w+: .*ECONNREFUSED\)$/);
  t.equal(caches.world.findService('shop', 'reviews'), undefined, 'stale data is not served');
  t.equal(caches.notReadyReason(), undefined, 'readiness does not flap after the first sync');

  api.put('services', asStored(svc('shop', 'ratings', [{ name: 'http', port: 9080 }])));
  await api.listen(port);
  await until('recovered', () => caches.world.available);
  t.ok(caches.world.findService('shop', 'ratings'), 'a change made during the outage is seen');
});

t.test('a broken watch with the API still up: lookups keep working while it re-lists', async (t) => {
  const api = new FakeApi();
  api.put('services', asStored(svc('shop', 'reviews', [{ name: 'http', port: 9080 }])));
  await api.listen();
  t.teardown(() => api.stop());
  const caches = await started(t, api);
  t.equal(await caches.waitForSync(), true);
  const lists = () => api.requests.filter((r) => r === '/api/v1/services').length;
  const before = lists();
  api.breakWatches();
  let everUnavailable = false;
  await until('a re-list', () => {
    everUnavailable ||= !caches.world.available || caches.world.findService('shop', 'reviews') === undefined;
    return lists() > before;
  });
  await until('synced again', () => caches.world.available);
  t.notOk(everUnavailable, 'no "could not check" window for a reset connection');
});

t.test('API unreachable from the start: not ready until the sync timeout, then degraded', async (t) => {
  const api = new FakeApi();
  await api.listen();
  await api.stop(); // a port nobody listens on
  const caches = await started(t, api, { syncTimeoutMs: 300 });
  t.match(caches.notReadyReason(), /waiting/);
  t.equal(await caches.waitForSync(200), false);
  await until('sync timeout', () => caches.notReadyReason() === undefined, 2000);
  t.equal(caches.world.available, false);
  t.match(caches.world.unavailableReason, /could not be read/);
});

t.test('startTrafficChecks without a usable kubeconfig serves degraded at once, and logs why', async (t) => {
  // Through the process's own serializers: a reason handed over as `err` text came out as one
  // field per character.
  const lines: string[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _encoding, done) => void (lines.push(chunk.toString('utf8')), done()) });
  const caches = await startTrafficChecks({ logger: pino({ serializers: LOG_SERIALIZERS }, sink), context: 'no-such-context-anywhere', env: {} });
  t.equal(caches.notReadyReason(), undefined);
  t.equal(caches.world.available, false);
  t.match(caches.world.unavailableReason, /no usable kubeconfig/);
  const line = JSON.parse(lines.find((l) => l.includes('cannot load a kubeconfig')) ?? '{}') as Record<string, unknown>;
  t.match(line['reason'], /^no kubeconfig found; looked for:/, 'the reason, as text');
  await caches.stop();
});
