/** virtualservice-mesh-host-conflict: which hosts a VirtualService defines for the mesh, and when two collide. */
import t from 'tap';
import { MeshHostIndex, readMeshHosts, type MeshHost } from '../src/policies/mesh-hosts.ts';
import { validateVirtualService } from '../src/policies/virtual-service.ts';
import { worldFromObjects } from '../src/policies/traffic-world.ts';
import { MAX_VIRTUAL_SERVICE_HOSTS } from '../src/policies/object-limits.ts';
import type { KubeObject, Violation } from '../src/policies/types.ts';
import { virtualService } from './helpers/traffic.ts';

const fitsWarning = (v: Violation) => `[${v.rule}] ${v.message}`.length <= 256;
const vs = (namespace: string, name: string, hosts: unknown[], extra: Record<string, unknown> = {}): KubeObject =>
  virtualService(name, { hosts, ...extra, http: [{ route: [{ destination: { host: 'backend.shop.svc.cluster.local' } }] }] }, namespace);

t.test('mesh hosts: bound to the mesh without gateways or with "mesh"; short names completed; one per export scope', async (t) => {
  t.same(readMeshHosts(vs('shop', 'a', ['reviews', 'api.example.com']), 'shop'), {
    hosts: [{ scope: '*', host: 'reviews.shop.svc.cluster.local', index: 0 }, { scope: '*', host: 'api.example.com', index: 1 }],
  });
  t.same(readMeshHosts(vs('shop', 'a', ['reviews'], { gateways: ['istio-system/public', 'mesh'] }), 'shop')?.hosts.length, 1);
  t.equal(readMeshHosts(vs('shop', 'a', ['reviews'], { gateways: ['istio-system/public'] }), 'shop'), undefined, 'a Gateway only');
  t.same(readMeshHosts(vs('shop', 'a', ['reviews'], { gateways: [] }), 'shop')?.hosts.length, 1, 'an empty list is the mesh');
  t.same(readMeshHosts(vs('shop', 'a', ['reviews'], { exportTo: ['.', 'front', 'shop'] }), 'shop')?.hosts.map((h) => h.scope), ['shop', 'front']);
  t.same(readMeshHosts(vs('shop', 'a', ['reviews'], { exportTo: ['front', '*'] }), 'shop')?.hosts.map((h) => h.scope), ['*']);
  t.same(readMeshHosts(vs('shop', 'a', ['*.example.com', 7, '']), 'shop')?.hosts, [{ scope: '*', host: '*.example.com', index: 0 }]);
  t.equal(readMeshHosts(vs('shop', 'a', []), 'shop'), undefined, 'no hosts');
  t.equal(readMeshHosts(virtualService('a', { http: [] }, 'shop'), 'shop'), undefined);
  const many = Array.from({ length: MAX_VIRTUAL_SERVICE_HOSTS / 10 + 1 }, (_, i) => `h${i}.example.com`);
  t.equal(readMeshHosts(vs('shop', 'a', many, { exportTo: Array.from({ length: 10 }, (_, i) => `ns${i}`) }), 'shop'), undefined, 'past the limit it takes part in nothing');
});

t.test('the index: equal hosts per scope, wildcards across the two planes, never the object itself', async (t) => {
  const index = new MeshHostIndex();
  const add = (key: string, hosts: string[], exportTo?: string[]) => {
    const [namespace] = key.split('/');
    index.set(key, readMeshHosts(vs(namespace as string, 'x', hosts, exportTo ? { exportTo } : {}), namespace as string));
  };
  const conflicts = (host: string, scope = '*', self = 'me/me') => index.conflicts({ scope, host } satisfies MeshHost, self)?.names ?? [];
  add('shop/reviews', ['reviews']);
  add('shop/wild', ['*.example.com']);
  add('front/api', ['api.example.com'], ['.']);
  add('back/api', ['api.example.com'], ['front', 'back']);
  add('back/deep', ['*.eu.example.org'], ['.']);

  t.same(conflicts('reviews.shop.svc.cluster.local'), ['shop/reviews']);
  t.same(conflicts('reviews.shop.svc.cluster.local', '*', 'shop/reviews'), [], 'its own stored copy is left out');
  t.same(conflicts('ratings.shop.svc.cluster.local'), []);
  t.same(conflicts('api.example.com', 'front'), ['back/api', 'front/api', 'shop/wild'], 'equal in the scope, and the wildcard exported everywhere');
  t.same(conflicts('api.example.com', 'elsewhere'), ['shop/wild'], 'only the wildcard reaches another namespace');
  t.same(conflicts('api.example.com'), ['back/api', 'front/api'], 'exported everywhere: meets the namespaced ones it matches');
  t.same(conflicts('a.example.com'), [], 'between hosts exported everywhere only equal ones collide');
  t.same(conflicts('*.example.com'), ['back/api', 'front/api', 'shop/wild'], 'a wildcard exported everywhere covers the namespaced hosts under it');
  t.same(conflicts('*.example.com', 'back'), ['shop/wild']);
  t.same(conflicts('x.eu.example.org'), ['back/deep'], 'a namespaced wildcard covers a host exported everywhere');
  t.same(conflicts('*.example.org'), ['back/deep'], 'wildcards: the wider covers the narrower...');
  t.same(conflicts('*.a.eu.example.org'), ['back/deep'], '...and the narrower is covered');
  t.same(conflicts('*.xeu.example.org'), [], 'at label boundaries only');
  t.same(conflicts('*'), ['back/api', 'back/deep', 'front/api'], '* covers every namespaced host');

  index.set('shop/wild', undefined);
  index.delete('back/api');
  index.delete('nothing/here');
  t.same(conflicts('api.example.com', 'front'), ['front/api']);
  t.same(conflicts('*.example.com'), ['front/api']);
  add('front/api', ['other.example.com'], ['.']);
  t.same(conflicts('api.example.com', 'front'), [], 'a replaced object leaves its old hosts');

  const crowded = new MeshHostIndex();
  for (let i = 0; i < 5; i++) crowded.set(`ns${i}/vs`, readMeshHosts(vs(`ns${i}`, 'vs', ['api.example.com']), `ns${i}`));
  t.same(crowded.conflicts({ scope: '*', host: 'api.example.com' }, 'ns0/vs'), { count: 4, more: false, names: ['ns1/vs', 'ns2/vs', 'ns3/vs'] }, 'a few names and the count');

  // A wide wildcard may cover thousands: the search stops after 16.
  const wide = new MeshHostIndex();
  for (let i = 0; i < 40; i++) wide.set(`team/vs-${i}`, readMeshHosts(vs('team', `vs-${i}`, [`h${i}.example.com`], { exportTo: ['.'] }), 'team'));
  const many = wide.conflicts({ scope: '*', host: '*.example.com' }, 'team/vs-0');
  t.same([many?.count, many?.more, many?.names.length], [16, true, 3]);
  for (let i = 16; i < 40; i++) wide.delete(`team/vs-${i}`);
  t.same(wide.conflicts({ scope: '*', host: '*.example.com' }, 'team/vs-0')?.count, 15, 'itself never counts');
  t.same(wide.conflicts({ scope: '*', host: '*.example.com' }, 'team/vs-0')?.more, false);
});

t.test('validateVirtualService: one warning per conflicting host, naming the other VirtualServices', async (t) => {
  const objects = [
    vs('shop', 'reviews', ['reviews', 'api.example.com', 'solo.example.com']),
    vs('shop', 'canary', ['reviews.shop.svc.cluster.local']),
    vs('front', 'api', ['api.example.com']),
    vs('front', 'edge', ['solo.example.com'], { gateways: ['istio-system/public'] }),
  ];
  const world = worldFromObjects(objects);
  const found = validateVirtualService(objects[0] as KubeObject, 'shop', world).filter((v) => v.rule === 'virtualservice-mesh-host-conflict');
  t.same(found.map((v) => v.field), ['spec.hosts[0]', 'spec.hosts[1]']);
  t.match(found[0]?.message, /"reviews\.shop\.svc\.cluster\.local" is also defined for the mesh by VirtualService shop\/canary, so sidecars' routing is undefined \(IST0109\); merge them/);
  t.match(found[1]?.message, /VirtualService front\/api/);
  for (const v of found) {
    t.equal(v.severity, 'warning');
    t.ok(fitsWarning(v), v.message);
  }
  t.same(validateVirtualService(objects[3] as KubeObject, 'front', world).filter((v) => v.rule === 'virtualservice-mesh-host-conflict'), [], 'bound to a Gateway only');

  const scoped = worldFromObjects([vs('back', 'a', ['x.example.com'], { exportTo: ['.'] }), vs('back', 'b', ['x.example.com'], { exportTo: ['back'] })]);
  const [inScope] = validateVirtualService(vs('back', 'a', ['x.example.com'], { exportTo: ['.'] }), 'back', scoped).filter((v) => v.rule === 'virtualservice-mesh-host-conflict');
  t.match(inScope?.message, /for the mesh in namespace back by VirtualService back\/b/);

  const crowd = worldFromObjects(Array.from({ length: 6 }, (_, i) => vs(`team-${i}-with-a-rather-long-namespace-name`, `route-with-a-long-name-${i}`, ['api.example.com'])));
  const [many] = validateVirtualService(vs('shop', 'new', ['api.example.com']), 'shop', crowd).filter((v) => v.rule === 'virtualservice-mesh-host-conflict');
  t.match(many?.message, /and 3 more|another VirtualService/);
  t.ok(many && fitsWarning(many));
  const crowdOf = (n: number) => worldFromObjects(Array.from({ length: n }, (_, i) => vs(`t${i}`, 'r', ['api.example.com'])));
  const [capped] = validateVirtualService(vs('shop', 'new', ['api.example.com']), 'shop', crowdOf(30)).filter((v) => v.rule === 'virtualservice-mesh-host-conflict');
  t.match(capped?.message, /VirtualServices t0\/r, t1\/r, t10\/r and more, so sidecars/, 'past the search limit: "and more"');
});
