/** The offline world, host matching, and the trafficChecks setting. */
import t from 'tap';
import {
  hostCoveredBy,
  gatewaySelectorMatch,
  servingServices,
  toTrafficService,
  worldFromObjects,
} from '../src/policies/traffic-world.ts';
import { buildConfig } from '../src/config.ts';
import { gateway, ingressService, serviceEntry, svc, virtualService } from './helpers/traffic.ts';

t.test('hostCoveredBy mirrors Istio host.Name.SubsetOf', async (t) => {
  const table: [string, string, boolean][] = [
    ['a.example.com', 'a.example.com', true],
    ['A.Example.com', 'a.example.com', false],
    ['a.example.com', '*.Example.com', false],
    ['a.example.com', 'b.example.com', false],
    ['a.example.com', '*.example.com', true],
    ['b.a.example.com', '*.example.com', true],
    ['*.a.example.com', '*.example.com', true],
    ['*.example.com', '*.example.com', true],
    ['example.com', '*.example.com', false],
    ['*.example.com', 'a.example.com', false],
    ['*.com', '*.example.com', false],
    ['anything', '*', true],
    ['*', '*', true],
    ['*', 'a.example.com', false],
  ];
  for (const [host, pattern, expected] of table) t.equal(hostCoveredBy(host, pattern), expected, `${host} within ${pattern}`);
});

t.test('gatewaySelectorMatch: a Service selector equal to, within, or holding the gateway selector', async (t) => {
  const service = toTrafficService(ingressService());
  t.ok(service);
  if (!service) return;
  t.equal(gatewaySelectorMatch(service, { istio: 'ingressgateway', app: 'istio-ingressgateway' }), 'same');
  t.equal(gatewaySelectorMatch(service, { istio: 'ingressgateway' }), 'superset', 'the Service asks for more labels');
  t.equal(gatewaySelectorMatch(service, { istio: 'ingressgateway', app: 'istio-ingressgateway', version: 'v2' }), 'subset', 'every gateway pod has the Service labels');
  t.equal(gatewaySelectorMatch(service, { istio: 'ingressgateway', version: 'v2' }), undefined, 'neither: no pod is known to match both');
  t.equal(gatewaySelectorMatch(service, { istio: 'egressgateway' }), undefined);
  t.equal(gatewaySelectorMatch(service, {}), undefined);
  const selectorless = toTrafficService(svc('istio-system', 'manual', [{ port: 80 }], undefined));
  t.equal(selectorless && gatewaySelectorMatch(selectorless, { istio: 'ingressgateway' }), undefined, 'no selector: no pods');
  const views = [svc('b', 'wide', [{ port: 1 }], { istio: 'ingressgateway', app: 'x', extra: 'y' }), svc('b', 'narrow', [{ port: 1 }], { istio: 'ingressgateway' }), svc('a', 'exact', [{ port: 1 }], { istio: 'ingressgateway', app: 'x' })]
    .map((object) => toTrafficService(object)).filter((view) => view !== undefined);
  t.same(servingServices(views, { istio: 'ingressgateway', app: 'x' }).map((view) => view.name), ['exact', 'narrow', 'wide'], 'best match first');
});

t.test('worldFromObjects: Services, Gateways, ServiceEntries of any Istio version; other kinds ignored', async (t) => {
  const world = worldFromObjects([
    svc('shop', 'reviews', [{ name: 'http', port: 9080, targetPort: 'http' }]),
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'nameless-ns' }, spec: { ports: [{ port: 80 }] } },
    gateway('gw1', [], { namespace: 'shop', apiVersion: 'networking.istio.io/v1alpha3' }),
    gateway('gw2', [], { namespace: 'shop', apiVersion: 'networking.istio.io/v1beta1' }),
    { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'k8s-gw', namespace: 'shop' } },
    { apiVersion: 'example.com/v1', kind: 'Service', metadata: { name: 'fake', namespace: 'shop' } },
    serviceEntry('ext', 'api', ['api.example.com']),
    virtualService('vs', {}),
    null as never,
    'junk' as never,
  ]);
  t.same(world.findService('shop', 'reviews'), { namespace: 'shop', name: 'reviews', selector: { app: 'reviews' }, ports: [{ name: 'http', port: 9080, protocol: 'TCP', targetPort: 'http' }], exportTo: [] });
  t.ok(world.findService('default', 'nameless-ns'), 'no namespace: default, where kubectl puts it');
  t.equal(world.findService('shop', 'fake'), undefined, 'a Service kind of another group is not a Service');
  t.ok(world.gatewayExists('shop', 'gw1'));
  t.ok(world.gatewayExists('shop', 'gw2'));
  t.notOk(world.gatewayExists('shop', 'k8s-gw'), 'Gateway API Gateways are not Istio Gateways');
  t.same(world.serviceEntries(), [{ namespace: 'ext', name: 'api', hosts: ['api.example.com'], exportTo: [], ports: [443] }]);
  t.equal(world.available, true);
  t.equal(world.complete, false);
  t.equal(worldFromObjects([], { complete: true }).complete, true);
});

t.test('worldFromObjects: the later of two same-named objects wins (files over cluster)', async (t) => {
  const live = svc('shop', 'reviews', [{ name: 'http', port: 80 }]);
  const file = svc('shop', 'reviews', [{ name: 'http', port: 8080 }]);
  t.equal(worldFromObjects([live, file]).findService('shop', 'reviews')?.ports[0]?.port, 8080);
});

t.test('worldFromObjects: Gateways as their servers\' ports, binds and hosts, indexed by port and host', async (t) => {
  const withBind = { ...gateway('bound', [{ number: 443, name: 'https', protocol: 'HTTPS', hosts: ['shop/a.example.com'] }], { namespace: 'edge' }) };
  (withBind.spec as { servers: Record<string, unknown>[] }).servers[0]!['bind'] = '10.0.0.1';
  const world = worldFromObjects([
    gateway('public', [{ number: 80, name: 'http', protocol: 'HTTP', hosts: ['a.example.com', 'a.example.com', '*'] }, { name: 'no-number', protocol: 'HTTP' }], { namespace: 'istio-system' }),
    gateway('public', [], { namespace: 'shop', selector: {} }),
    withBind,
    { apiVersion: 'networking.istio.io/v1', kind: 'Gateway', metadata: { name: 'odd' }, spec: { selector: 'x', servers: [null, { port: { number: '80' }, hosts: 'x' }] } },
  ]);
  t.same(world.findGateway('istio-system', 'public'), {
    namespace: 'istio-system',
    name: 'public',
    selector: { istio: 'ingressgateway' },
    servers: [{ port: 80, bind: '', hosts: ['a.example.com', 'a.example.com', '*'] }, { port: undefined, bind: '', hosts: ['*'] }],
  });
  t.same(world.findGateway('shop', 'public')?.selector, {}, 'an empty selector');
  t.same(world.findGateway('default', 'odd'), { namespace: 'default', name: 'odd', selector: {}, servers: [{ port: undefined, bind: '', hosts: [] }] }, 'untrusted shapes read defensively');
  t.same(world.findGateway('edge', 'bound')?.servers[0], { port: 443, bind: '10.0.0.1', hosts: ['shop/a.example.com'] });
  t.same(world.gatewaysListening(80, '', 'a.example.com').map((g) => `${g.namespace}/${g.name}`), ['istio-system/public'], 'once, though listed twice');
  t.same(world.gatewaysListening(80, '', '*').length, 1);
  t.same(world.gatewaysListening(443, '10.0.0.1', 'a.example.com'), [], 'hosts as written: shop/a.example.com is another host');
  t.same(world.gatewaysListening(443, '', 'shop/a.example.com'), [], 'another bind address');
  t.same(world.gatewaysListening(443, '10.0.0.1', 'shop/a.example.com').length, 1);
  t.same(world.gatewayNamespaces('public'), ['istio-system', 'shop']);
  const replaced = worldFromObjects([gateway('g', [{ number: 80, hosts: ['old.example.com'] }]), gateway('g', [{ number: 80, hosts: ['new.example.com'] }])]);
  t.same(replaced.gatewaysListening(80, '', 'old.example.com'), [], 'the later of two same-named Gateways wins');
  t.equal(replaced.gatewaysListening(80, '', 'new.example.com').length, 1);
});

t.test('trafficChecks: default off; flag, environment and file', async (t) => {
  t.equal(buildConfig({}).trafficChecks, false);
  t.equal(buildConfig({ flags: { 'traffic-checks': 'true' } }).trafficChecks, true);
  t.equal(buildConfig({ env: { MESH_ADMISSION_TRAFFIC_CHECKS: 'true' } }).trafficChecks, true);
  t.equal(buildConfig({ file: { path: 'c.yaml', text: 'trafficChecks: true\n' } }).trafficChecks, true);
  t.equal(buildConfig({ flags: { 'traffic-checks': 'false' }, env: { MESH_ADMISSION_TRAFFIC_CHECKS: 'true' } }).trafficChecks, false, 'flags win');
  t.throws(() => buildConfig({ env: { MESH_ADMISSION_TRAFFIC_CHECKS: 'yes' } }), /MESH_ADMISSION_TRAFFIC_CHECKS.*true or false/);
});
