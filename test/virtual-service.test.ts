/** VirtualService rules: sniHosts (always) and the destination/port/gateway rules (with a world). */
import t from 'tap';
import { gatewayRefTarget, serviceForHost, validateVirtualService } from '../src/policies/virtual-service.ts';
import { unavailableWorld, worldFromObjects } from '../src/policies/traffic-world.ts';
import type { Violation } from '../src/policies/types.ts';
import { byName, gateway, httpTo, seed, serviceEntry, svc, virtualService } from './helpers/traffic.ts';

const rules = (violations: readonly Violation[]) => violations.map((v) => v.rule);
const fitsWarning = (v: Violation) => `[${v.rule}] ${v.message}`.length <= 256;

const seedWorld = () => worldFromObjects([...seed.gateways, ...seed.services]);

t.test("the seed's three VirtualServices pass when their Services and Gateways exist", async (t) => {
  const world = seedWorld();
  t.equal(seed.virtualServices.length, 3);
  for (const vs of seed.virtualServices) t.same(validateVirtualService(vs, 'default', world), [], String(vs.metadata?.name));
});

t.test("the seed's VirtualServices without their Services and Gateways warn, once per problem", async (t) => {
  const world = worldFromObjects([]);
  const es = validateVirtualService(byName(seed.virtualServices, 'VirtualService', 'es-vservice'), 'default', world);
  t.same(rules(es), ['virtualservice-destination-not-found', 'virtualservice-gateway-not-found']);
  t.same(es.map((v) => v.field), ['spec.tls[0].route[0].destination.host', 'spec.gateways[0]']);
  t.match(es[0]?.message, /no Service default\/es-dc-product-es-http and no ServiceEntry for "es-dc-product-es-http" \(IST0101\)/);
  t.match(es[1]?.message, /Gateway default\/es-gateway does not exist.*IST0101.*"<namespace>\/es-gateway"/);
  for (const v of es) {
    t.equal(v.severity, 'warning');
    t.ok(fitsWarning(v), `${v.rule}: ${v.message.length}`);
  }
});

t.test('virtualservice-destination-not-found: short names and cross-namespace hosts', async (t) => {
  const world = worldFromObjects([svc('shop', 'reviews', [{ name: 'http', port: 9080 }])]);
  const check = (host: string, ns = 'shop') => rules(validateVirtualService(virtualService('vs', { hosts: ['x'], http: [httpTo(host)] }, ns), ns, world));
  t.same(check('reviews'), [], 'short name, same namespace');
  t.same(check('reviews', 'web'), ['virtualservice-destination-not-found'], 'short name from another namespace');
  for (const host of ['reviews.shop', 'reviews.shop.svc', 'reviews.shop.svc.cluster.local', 'Reviews.Shop.SVC.cluster.local']) {
    t.same(check(host, 'web'), [], `${host} from another namespace`);
  }
  for (const host of ['reviews.web', 'reviews.web.svc.cluster.local', 'ratings.shop.svc.cluster.local', 'reviews.shop.svc.example.com']) {
    t.same(check(host, 'web'), ['virtualservice-destination-not-found'], host);
  }
  t.same(check('*.shop.svc.cluster.local'), [], 'wildcards name no single Service');
  t.same(check('10.0.0.7'), [], 'IP addresses are not looked up');
  t.same(serviceForHost('reviews.shop.svc.cluster.local', 'web'), { namespace: 'shop', name: 'reviews' });
  t.equal(serviceForHost('api.example.com', 'web'), undefined);
});

t.test('external hosts: covered by a ServiceEntry in the input (wildcards, exportTo)', async (t) => {
  const vs = (host: string, ns = 'web') => virtualService('vs', { hosts: [host], http: [httpTo(host, 443)] }, ns);
  const check = (host: string, entries: Parameters<typeof worldFromObjects>[0], ns = 'web') =>
    rules(validateVirtualService(vs(host, ns), ns, worldFromObjects(entries)));
  t.same(check('api.example.com', []), ['virtualservice-destination-not-found']);
  t.same(check('api.example.com', [serviceEntry('web', 'ext', ['api.example.com'])]), []);
  t.same(check('api.example.com', [serviceEntry('other', 'ext', ['api.example.com'])]), [], 'exported everywhere by default');
  t.same(check('api.example.com', [serviceEntry('other', 'ext', ['*.example.com'])]), [], 'wildcard host');
  t.same(check('api.example.com', [serviceEntry('other', 'ext', ['*'])]), [], '* covers all');
  t.same(check('example.com', [serviceEntry('web', 'ext', ['*.example.com'])]), ['virtualservice-destination-not-found'], '*.example.com does not cover example.com');
  t.same(check('api.example.com', [serviceEntry('other', 'ext', ['api.example.com'], ['.'])]), ['virtualservice-destination-not-found'], 'exportTo "." hides it from other namespaces');
  t.same(check('api.example.com', [serviceEntry('web', 'ext', ['api.example.com'], ['.'])]), [], 'exportTo "." from its own namespace');
  t.same(check('api.example.com', [serviceEntry('other', 'ext', ['api.example.com'], ['web'])]), [], 'exportTo lists the namespace');
  t.same(check('api.example.com', [serviceEntry('other', 'ext', ['api.example.com'], ['shop'])]), ['virtualservice-destination-not-found']);
  const [v] = validateVirtualService(vs('api.example.com'), 'web', worldFromObjects([]));
  t.match(v?.message, /"api\.example\.com" matches no Service and no ServiceEntry.*add a ServiceEntry/);
});

t.test('virtualservice-port-not-found (IST0101 host:port)', async (t) => {
  const world = worldFromObjects(seed.services);
  const [v, ...rest] = validateVirtualService(virtualService('vs', { hosts: ['x'], http: [httpTo('es-dc-product-es-http', 9201)] }), 'default', world);
  t.equal(rest.length, 0);
  t.equal(v?.rule, 'virtualservice-port-not-found');
  t.equal(v?.field, 'spec.http[0].route[0].destination.port.number');
  t.match(v?.message, /Service default\/es-dc-product-es-http has no port 9201.*"es-dc-product-es-http:9201".*9200 \(https\)/);
  t.same(validateVirtualService(virtualService('vs', { hosts: ['x'], http: [httpTo('es-dc-product-es-http', 9200)] }), 'default', world), []);
  t.same(validateVirtualService(virtualService('vs', { hosts: ['x'], http: [httpTo('data-center-service', 8080)] }), 'default', world).map((x) => x.rule), ['virtualservice-port-not-found'], 'a targetPort is not a Service port');
});

t.test('virtualservice-port-required (IST0112): several ports and no port named', async (t) => {
  const world = worldFromObjects(seed.services);
  const [v, ...rest] = validateVirtualService(virtualService('vs', { hosts: ['*'], tcp: [httpTo('data-center-service')] }), 'default', world);
  t.equal(rest.length, 0);
  t.equal(v?.rule, 'virtualservice-port-required');
  t.equal(v?.field, 'spec.tcp[0].route[0].destination.port');
  t.match(v?.message, /Service default\/data-center-service has several ports \(80 \(http-80\), 21000 \(grpc-21000\)\).*IST0112.*port\.number/);
  t.same(validateVirtualService(virtualService('vs', { hosts: ['x'], http: [httpTo('test-kratos-service')] }), 'default', world), [], 'single port: no port needed');
});

t.test('virtualservice-gateway-not-found', async (t) => {
  const world = worldFromObjects([gateway('public', [], { namespace: 'istio-system' }), gateway('local', [], { namespace: 'shop' })]);
  const check = (gateways: unknown[], ns = 'shop') => validateVirtualService(virtualService('vs', { hosts: ['x'], gateways }, ns), ns, world);
  t.same(check(['mesh', 'local', 'istio-system/public', 'shop/local']), []);
  const v = check(['public', 'istio-system/private', 'mesh', 'local']);
  t.same(rules(v), ['virtualservice-gateway-not-found', 'virtualservice-gateway-not-found']);
  t.same(v.map((x) => x.field), ['spec.gateways[0]', 'spec.gateways[1]']);
  t.match(v[0]?.message, /Gateway shop\/public does not exist.*write "istio-system\/public": a Gateway public exists in istio-system\./);
  t.match(v[1]?.message, /Gateway istio-system\/private does not exist.*create it or fix the reference/);
  t.same(check(['public.istio-system']), [], 'legacy name.namespace form');
  t.match(check(['nowhere'])[0]?.message, /write "<namespace>\/nowhere" for a Gateway in another namespace\./, 'no Gateway of that name anywhere');
  t.match(check(['shop/public'])[0]?.message, /Gateway shop\/public does not exist.*write "istio-system\/public"/, 'a wrong namespace gets the same hint');
  t.same(gatewayRefTarget('public', 'shop'), { namespace: 'shop', name: 'public' });
  t.same(gatewayRefTarget('istio-system/public', 'shop'), { namespace: 'istio-system', name: 'public' });
});

t.test('virtualservice-sni-hosts: TLS sniHosts within spec.hosts (wildcard-aware)', async (t) => {
  const vs = (hosts: string[], sniHosts: string[]) =>
    virtualService('vs', { hosts, tls: [{ match: [{ port: 443, sniHosts: ['ok.example.com'] }, { port: 443, sniHosts }], route: [] }] });
  const check = (hosts: string[], sniHosts: string[]) => validateVirtualService(vs(hosts, sniHosts), 'default');
  t.same(check(['ok.example.com', 'a.example.com'], ['a.example.com']), [], 'exact');
  t.same(check(['*.example.com'], ['a.example.com', 'b.a.example.com', '*.a.example.com']), [], 'wildcard host covers names and narrower wildcards');
  t.same(check(['*'], ['ok.example.com', 'anything.org']), [], '* covers all');
  const [v, ...rest] = check(['ok.example.com', 'a.example.com'], ['a.example.com', 'b.example.com']);
  t.equal(rest.length, 0);
  t.equal(v?.rule, 'virtualservice-sni-hosts');
  t.equal(v?.severity, 'warning');
  t.equal(v?.field, 'spec.tls[0].match[1].sniHosts[1]');
  t.match(v?.message, /SNI host "b\.example\.com" is not covered by spec\.hosts.*add "b\.example\.com" or a wildcard such as "\*\.example\.com" to spec\.hosts/);
  const [short] = validateVirtualService(virtualService('vs', { hosts: ['a.io'], tls: [{ match: [{ sniHosts: ['b.io'] }], route: [] }] }), 'default');
  t.match(short?.message, /SNI host "b\.io" is not covered by spec\.hosts \("a\.io"\)/, 'short hosts are listed');
  t.same(rules(check(['a.example.com'], ['*.example.com'])), ['virtualservice-sni-hosts', 'virtualservice-sni-hosts'], 'a name does not cover a wildcard (nor ok.example.com here)');
  t.same(rules(check(['*.example.com'], ['example.com'])), ['virtualservice-sni-hosts'], '*.example.com does not cover example.com');
  t.same(rules(validateVirtualService(byName(seed.virtualServices, 'VirtualService', 'es-vservice'), 'default')), [], "the seed's SNI route");
});

t.test('field paths for http, tcp and tls routes; one warning per missing host', async (t) => {
  const vs = virtualService('vs', {
    hosts: ['a.example.com'],
    http: [{ route: [{ destination: { host: 'gone' } }, { destination: { host: 'gone', subset: 'v2' } }] }],
    tcp: [{ route: [{ destination: { host: 'gone-tcp', port: { number: 1 } } }] }],
    tls: [{ match: [{ sniHosts: ['a.example.com'] }], route: [{ destination: { host: 'gone-tls' } }] }],
  });
  const v = validateVirtualService(vs, 'default', worldFromObjects([]));
  t.same(v.map((x) => x.field), [
    'spec.http[0].route[0].destination.host',
    'spec.tls[0].route[0].destination.host',
    'spec.tcp[0].route[0].destination.host',
  ]);
});

t.test('unavailable world: one warning; the SNI rule still runs', async (t) => {
  const vs = virtualService('vs', { hosts: ['a.example.com'], gateways: ['gw'], tls: [{ match: [{ sniHosts: ['b.example.com'] }], route: [{ destination: { host: 'x' } }] }] });
  const v = validateVirtualService(vs, 'default', unavailableWorld("the webhook's caches of Services, Gateways and ServiceEntries have not synced yet"));
  t.same(rules(v), ['virtualservice-sni-hosts', 'traffic-checks-unavailable']);
  t.match(v[1]?.message, /could not check its destinations, ports and gateways because the webhook's caches/);
  t.ok(v.every(fitsWarning));
  t.same(validateVirtualService(virtualService('vs', { hosts: ['a'] }), 'default', unavailableWorld('x')), [], 'nothing to look up: no warning');
});

t.test('without a world only the SNI rule runs', async (t) => {
  t.same(validateVirtualService(virtualService('vs', { hosts: ['x'], gateways: ['nope'], http: [httpTo('nope')] }), 'default'), []);
});

t.test('untrusted shapes never throw', async (t) => {
  const world = worldFromObjects([]);
  for (const spec of [undefined, null, 7, [], { http: 'x' }, { http: [null, { route: 'x' }, { route: [null, { destination: 'x' }, { destination: { host: 7 } }] }] }, { gateways: [null, 7, ''] }, { tls: [{ match: [null, { sniHosts: [7] }] }] }, { hosts: 'x', tls: [{ match: [{ sniHosts: 'x' }] }] }]) {
    t.same(validateVirtualService({ kind: 'VirtualService', spec } as never, 'default', world), [], JSON.stringify(spec));
  }
});

t.test('messages fit one admission warning even with long names', async (t) => {
  const long = `${'a'.repeat(63)}.${'b'.repeat(63)}.svc.cluster.local`;
  const world = worldFromObjects([svc('b'.repeat(63), 'a'.repeat(63), Array.from({ length: 30 }, (_, i) => ({ name: `http-${'p'.repeat(40)}-${i}`, port: 1000 + i })))]);
  const v = validateVirtualService(virtualService('vs', {
    hosts: ['x'.repeat(200)],
    gateways: [`${'g'.repeat(63)}/${'h'.repeat(63)}`],
    http: [httpTo(long, 1), httpTo(long), httpTo(`${'z'.repeat(120)}.example.com`)],
    tls: [{ match: [{ sniHosts: ['y'.repeat(200)] }], route: [] }],
  }), 'default', world);
  t.same(rules(v).sort(), ['virtualservice-destination-not-found', 'virtualservice-gateway-not-found', 'virtualservice-port-not-found', 'virtualservice-port-required', 'virtualservice-sni-hosts']);
  for (const x of v) t.ok(fitsWarning(x), `${x.rule}: ${x.message.length}`);
});
