/** VirtualService rules: sniHosts (always) and the destination/port/gateway rules (with a world). */
import t from 'tap';
import { gatewayRefTarget, validateVirtualService as validateEveryVirtualServiceRule } from '../src/policies/virtual-service.ts';
import { unavailableWorld, worldFromObjects } from '../src/policies/traffic-world.ts';
import type { Violation } from '../src/policies/types.ts';
import { byName, gateway, httpTo, seed, serviceEntry, svc, virtualService } from './helpers/traffic.ts';

const rules = (violations: readonly Violation[]) => violations.map((v) => v.rule);

/** Istio's validation of routes on their own: test/virtual-service-validation.test.ts, where the routes here are complete. */
const VALIDATION_RULES: ReadonlySet<string> = new Set([
  'virtualservice-routes-missing', 'virtualservice-route-action-missing', 'virtualservice-destination-missing', 'virtualservice-weights-zero',
]);
/** The VirtualService rules these tests are about: all but the ones of virtual-service-validation.ts. */
const validateVirtualService = (...args: Parameters<typeof validateEveryVirtualServiceRule>) => validateEveryVirtualServiceRule(...args).filter((v) => !VALIDATION_RULES.has(v.rule));
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

t.test('virtualservice-destination-not-found: hosts resolved as Istio resolves them', async (t) => {
  const world = worldFromObjects([svc('shop', 'reviews', [{ name: 'http', port: 9080 }])]);
  const check = (host: string, ns = 'shop') => rules(validateVirtualService(virtualService('vs', { hosts: ['x'], http: [httpTo(host)] }, ns), ns, world));
  t.same(check('reviews'), [], 'short name, same namespace');
  t.same(check('reviews.shop.svc.cluster.local', 'web'), [], 'the full name from another namespace');
  t.same(check('reviews', 'web'), ['virtualservice-destination-not-found'], 'short name from another namespace');
  for (const host of ['reviews.shop', 'reviews.shop.svc', 'Reviews.Shop.SVC.cluster.local', 'reviews.shop.svc.cluster.local.', 'reviews.web',
    'reviews.web.svc.cluster.local', 'ratings.shop.svc.cluster.local', 'reviews.shop.svc.example.com', '*.shop.svc.cluster.local', '10.0.0.7', '::1']) {
    t.same(check(host, 'web'), ['virtualservice-destination-not-found'], `${host} is taken literally and names nothing`);
  }
  const [literal] = validateVirtualService(virtualService('vs', { hosts: ['x'], http: [httpTo('reviews.shop')] }, 'web'), 'web', world);
  t.match(literal?.message, /Istio takes a host with a dot literally, so "reviews\.shop" is not Service shop\/reviews.*write "reviews\.shop\.svc\.cluster\.local"/);
  t.ok(literal && fitsWarning(literal));
  const [ip] = validateVirtualService(virtualService('vs', { hosts: ['x'], http: [httpTo('10.0.0.7')] }, 'web'), 'web', world);
  t.match(ip?.message, /"10\.0\.0\.7" matches no Service and no ServiceEntry/);
  t.same(check('10.0.0.7', 'web'), ['virtualservice-destination-not-found']);
  const withEntry = worldFromObjects([serviceEntry('web', 'ip', ['10.0.0.7'])]);
  t.same(rules(validateVirtualService(virtualService('vs', { hosts: ['x'], http: [httpTo('10.0.0.7', 443)] }, 'web'), 'web', withEntry)), [], 'an IP a ServiceEntry lists as a host');
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
  t.same(check('Api.example.com', [serviceEntry('web', 'ext', ['api.example.com'])]), ['virtualservice-destination-not-found'], 'exact, not case-folded');
  t.same(check('*.api.example.com', [serviceEntry('other', 'ext', ['*.example.com'])]), [], 'a narrower wildcard destination');
  t.same(check('api', [serviceEntry('web', 'ext', ['api'])]), [], 'a short ServiceEntry host is completed in its namespace');
  t.same(check('api', [serviceEntry('other', 'ext', ['api'])]), ['virtualservice-destination-not-found'], '... not in the VirtualService\'s');
  t.same(check('api.other.svc.cluster.local', [serviceEntry('other', 'ext', ['api'])]), []);
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
  t.equal(v?.severity, 'error', "Istio's validation rejects the route");
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
    'spec.http[0].route[1].destination.subset',
  ]);
});

t.test('unavailable world: one warning; the SNI rule still runs', async (t) => {
  const vs = virtualService('vs', { hosts: ['a.example.com'], gateways: ['gw'], tls: [{ match: [{ sniHosts: ['b.example.com'] }], route: [{ destination: { host: 'x' } }] }] });
  const v = validateVirtualService(vs, 'default', unavailableWorld("the webhook's caches of Services, Gateways and ServiceEntries have not synced yet"));
  t.same(rules(v), ['virtualservice-sni-hosts', 'traffic-checks-unavailable']);
  t.match(v[1]?.message, /could not check its destinations, gateways and hosts because the webhook's caches/);
  t.ok(v.every(fitsWarning));
  t.same(validateVirtualService(virtualService('vs', { hosts: [], gateways: ['mesh'] }), 'default', unavailableWorld('x')), [], 'nothing to look up: no warning');
  t.same(rules(validateVirtualService(virtualService('vs', { hosts: ['a'] }), 'default', unavailableWorld('x'))), ['traffic-checks-unavailable'], 'mesh hosts are looked up');
});

t.test('without a world only the SNI rule runs', async (t) => {
  t.same(validateVirtualService(virtualService('vs', { hosts: ['x'], gateways: ['nope'], http: [httpTo('nope')] }), 'default'), []);
});

t.test('untrusted shapes never throw', async (t) => {
  const world = worldFromObjects([]);
  for (const spec of [undefined, null, 7, [], { http: 'x' }, { http: [null, { route: 'x' }, { route: [null] }] }, { gateways: [null, 7, ''] }, { tls: [{ match: [null, { sniHosts: [7] }] }] }, { hosts: 'x', tls: [{ match: [{ sniHosts: 'x' }] }] }]) {
    t.same(validateVirtualService({ kind: 'VirtualService', spec } as never, 'default', world), [], JSON.stringify(spec));
  }
  // A route entry whose destination is missing or has no usable host goes nowhere: reported once.
  const hostless = validateVirtualService({ kind: 'VirtualService', spec: { http: [{ route: [{ destination: 'x' }, { destination: { host: 7 } }, { weight: 100 }] }] } } as never, 'default', world);
  t.same(hostless.map((v) => [v.rule, v.field]), [['virtualservice-destination-not-found', 'spec.http[0].route[0].destination.host']]);
  t.match(hostless[0]?.message, /has no host/);
});

t.test('a route without a destination host is reported, as Istio reports the empty host; an absent mirror is not', async (t) => {
  const world = worldFromObjects([svc('default', 'reviews', [{ name: 'http', port: 80 }])]);
  const v = validateVirtualService(virtualService('vs', { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }, { weight: 10 }] }, httpTo('reviews')] }), 'default', world);
  t.same(v.map((x) => [x.rule, x.field]), [['virtualservice-destination-not-found', 'spec.http[0].route[1].destination.host']]);
  t.match(v[0]?.message, /the destination has no host, so Istio routes this traffic nowhere \(IST0101\)/);
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

t.test('mirrors are destinations: host and port checked', async (t) => {
  const world = worldFromObjects([svc('shop', 'reviews', [{ name: 'http', port: 9080 }, { name: 'grpc', port: 9090 }])]);
  const vs = virtualService('vs', {
    hosts: ['x'],
    http: [{
      route: [{ destination: { host: 'reviews', port: { number: 9080 } } }],
      mirror: { host: 'shadow' },
      mirrors: [{ destination: { host: 'reviews', port: { number: 9999 } } }, { destination: { host: 'reviews' } }, 'junk'],
    }],
  }, 'shop');
  const v = validateVirtualService(vs, 'shop', world);
  t.same(rules(v), ['virtualservice-destination-not-found', 'virtualservice-port-not-found', 'virtualservice-port-required']);
  t.same(v.map((x) => x.field), ['spec.http[0].mirror.host', 'spec.http[0].mirrors[0].destination.port.number', 'spec.http[0].mirrors[1].destination.port']);
  const fine = virtualService('vs', { hosts: ['x'], http: [{ route: [], mirror: { host: 'reviews', port: { number: 9090 } }, mirrors: [{ destination: { host: 'reviews', port: { number: 9080 } } }] }] }, 'shop');
  t.same(validateVirtualService(fine, 'shop', world), []);
});

t.test('ServiceEntry ports: IST0101 host:port for an undeclared port, IST0112 for several and none named', async (t) => {
  const entry = (ports: number[]) => ({ ...serviceEntry('web', 'ext', ['api.example.com']), spec: { hosts: ['api.example.com'], ports: ports.map((number) => ({ number, name: `p-${number}`, protocol: 'TLS' })) } });
  const check = (port: number | undefined, ports: number[]) =>
    validateVirtualService(virtualService('vs', { hosts: ['x'], tcp: [httpTo('api.example.com', port)] }, 'web'), 'web', worldFromObjects([entry(ports)]));
  t.same(check(443, [443]), []);
  t.same(check(undefined, [443]), [], 'one port: none needed');
  const [missing, ...rest] = check(8443, [443, 9443]);
  t.equal(rest.length, 0);
  t.equal(missing?.rule, 'virtualservice-port-not-found');
  t.match(missing?.message, /ServiceEntry web\/ext has no port 8443, so Istio cannot route "api\.example\.com:8443" \(IST0101\); use one of its ports: 443, 9443/);
  const [required] = check(undefined, [443, 9443]);
  t.equal(required?.rule, 'virtualservice-port-required');
  t.match(required?.message, /ServiceEntry web\/ext has several ports \(443, 9443\).*IST0112/);
  t.same(rules(check(443, [])), ['virtualservice-port-not-found'], 'a ServiceEntry without ports has none to route to');
  const many = check(1, Array.from({ length: 40 }, (_, i) => 1000 + i));
  t.match(many[0]?.message, /1015, \.\.\./, 'long port lists are elided');
  t.ok(many.every(fitsWarning));
});

t.test('exportTo: the Service annotation and the VirtualService spec limit who sees a destination', async (t) => {
  const exported = (value: string) => {
    const service = svc('shop', 'reviews', [{ name: 'http', port: 9080 }]);
    return { ...service, metadata: { ...service.metadata, annotations: { 'networking.istio.io/exportTo': value } } };
  };
  const check = (objects: Parameters<typeof worldFromObjects>[0], ns: string, exportTo?: string[], host = 'reviews.shop.svc.cluster.local') =>
    rules(validateVirtualService(virtualService('vs', { hosts: ['x'], ...(exportTo ? { exportTo } : {}), http: [httpTo(host)] }, ns), ns, worldFromObjects(objects)));
  const missing = ['virtualservice-destination-not-found'];
  t.same(check([exported('.')], 'shop'), [], '"." is seen from its own namespace');
  t.same(check([exported('.')], 'shop', undefined, 'reviews'), [], '... by its short name too');
  t.same(check([exported('.')], 'web'), missing, '"." hides it from other namespaces');
  t.same(check([exported('web,other')], 'web'), [], 'a listed namespace sees it');
  t.same(check([exported('other')], 'web'), missing, 'an unlisted one does not');
  t.same(check([exported('web, other')], 'other'), missing, 'names are taken as written, spaces included');
  t.same(check([exported('*')], 'web'), []);
  t.same(check([exported('')], 'web'), [], 'an empty annotation exports everywhere');
  t.same(check([exported('other')], 'web', ['other']), [], "the VirtualService's exportTo namespaces are where it looks");
  t.same(check([exported('.')], 'shop', ['*']), missing, 'a VirtualService exported everywhere sees only what is exported everywhere');
  t.same(check([exported('.')], 'shop', ['.']), [], '"." in the VirtualService is its own namespace');
  t.same(check([svc('shop', 'reviews', [{ name: 'http', port: 9080 }])], 'web', ['other']), [], 'a Service exported everywhere is always seen');
  t.same(check([serviceEntry('ext', 'api', ['api.example.com'], ['other'])], 'web', ['other'], 'api.example.com'), [], 'the same for ServiceEntries');
  t.same(check([serviceEntry('ext', 'api', ['api.example.com'], ['other'])], 'web', undefined, 'api.example.com'), missing);
  t.same(check([serviceEntry('ext', 'api', ['*.example.com'], ['other'])], 'web', ['other'], 'api.example.com'), missing, 'wildcard hosts count only when exported everywhere or to its own namespace');
  t.same(check([serviceEntry('ext', 'api', ['*.example.com'], ['web'])], 'web', ['other'], 'api.example.com'), []);
});

t.test('a Service without ports still gets its port checked', async (t) => {
  const world = worldFromObjects([svc('shop', 'headless', [])]);
  const check = (port?: number) => rules(validateVirtualService(virtualService('vs', { hosts: ['x'], http: [httpTo('headless', port)] }, 'shop'), 'shop', world));
  t.same(check(8080), ['virtualservice-port-not-found'], 'Istio has no port of it to route to');
  t.same(check(), [], 'no port named: nothing to choose between');
  const [v] = validateVirtualService(virtualService('vs', { hosts: ['x'], http: [httpTo('headless', 8080)] }, 'shop'), 'shop', world);
  t.match(v?.message, /Service shop\/headless has no port 8080/);
});

t.test('an IP address in sniHosts is a warning of its own (IST0133), not compared with spec.hosts', async (t) => {
  const vs = (sniHosts: string[]) => virtualService('vs', { hosts: ['a.example.com'], tls: [{ match: [{ sniHosts }], route: [] }] });
  const v = validateVirtualService(vs(['10.1.2.3', '::1', 'a.example.com']), 'default');
  t.same(rules(v), ['virtualservice-sni-host-address', 'virtualservice-sni-host-address']);
  t.same(v.map((x) => x.field), ['spec.tls[0].match[0].sniHosts[0]', 'spec.tls[0].match[0].sniHosts[1]']);
  t.match(v[0]?.message, /SNI host "10\.1\.2\.3" is an IP address; .*IST0133/);
  t.notMatch(v[0]?.message, /rejects/);
  t.equal(v[0]?.severity, 'warning');
  t.ok(v.every(fitsWarning));
  const withIpHost = validateVirtualService(virtualService('vs', { hosts: ['10.1.2.3'], tls: [{ match: [{ sniHosts: ['10.1.2.3'] }], route: [] }] }), 'default');
  t.same(rules(withIpHost), ['virtualservice-sni-host-address'], 'warned even when spec.hosts lists it');
});

t.test('8,000 uncovered sniHosts: one warning each, each message bounded whatever the size of spec.hosts', async (t) => {
  const hosts = Array.from({ length: 8000 }, (_, i) => `h${i}.example.com`);
  const sniHosts = Array.from({ length: 8000 }, (_, i) => `s${i}.example.com`);
  const v = validateVirtualService(virtualService('vs', { hosts, tls: [{ match: [{ sniHosts: [...sniHosts, 'h42.example.com'] }], route: [] }] }), 'default');
  t.equal(v.length, 8000, 'h42 is covered, every s<i> is not');
  t.ok(v.every(fitsWarning), 'every message fits one warning');
  t.ok(Math.max(...v.map((x) => x.message.length)) <= 256);
  const [few] = validateVirtualService(virtualService('vs', { hosts: ['a.io', 'c.io', 'e.io'], tls: [{ match: [{ sniHosts: ['b.io'] }], route: [] }] }), 'default');
  t.match(few?.message, /not covered by spec\.hosts \("a\.io", "c\.io", "e\.io"\)/, 'a short list is shown whole');
  const [many] = validateVirtualService(virtualService('vs', { hosts: Array.from({ length: 8000 }, (_, i) => `h${i}.io`), tls: [{ match: [{ sniHosts: ['b.io'] }], route: [] }] }), 'default');
  t.match(many?.message, /not covered by spec\.hosts \("h0\.io", "h1\.io", .*, \.\.\.\)/, 'a long one is cut after the first hosts');
});

t.test('a reference to a Gateway Istio generates for a Kubernetes Gateway is reported even when it exists', async (t) => {
  const generated = 'gateway~istio-autogenerated-k8s-gateway~foo';
  const world = worldFromObjects([gateway(generated, [], { namespace: 'istio-ingress' })]);
  const v = validateVirtualService(virtualService('vs', { hosts: ['foo.com'], gateways: [`istio-ingress/${generated}`] }), 'default', world);
  t.same(v.map((x) => [x.rule, x.field]), [['virtualservice-gateway-not-found', 'spec.gateways[0]']]);
  t.match(v[0]?.message, /is a Gateway Istio generates (for a Kubernetes Gateway, not one to bind to|internally) \(IST0165\)/);
  const plain = validateVirtualService(virtualService('vs', { hosts: ['foo.com'], gateways: ['istio-ingress/gateway~foo'] }), 'default', worldFromObjects([gateway('gateway~foo', [], { namespace: 'istio-ingress' })]));
  t.same(plain, [], 'a ~ alone does not make a generated Gateway');
});
