/** gateway-conflict: another Gateway on the same workloads serves the same port, bind and host. */
import t from 'tap';
import { validateGatewayConflicts } from '../src/policies/gateway-conflicts.ts';
import { policyModuleFor } from '../src/policies/registry.ts';
import { unavailableWorld, worldFromObjects } from '../src/policies/traffic-world.ts';
import type { KubeObject, Violation } from '../src/policies/types.ts';
import { gateway, ingressService, type ServerSpec } from './helpers/traffic.ts';

const fitsWarning = (v: Violation) => `[${v.rule}] ${v.message}`.length <= 256;
const http = (hosts: string[], number = 80): ServerSpec => ({ number, name: `http-${number}`, protocol: 'HTTP', hosts });
const withBind = (object: KubeObject, bind: string): KubeObject => {
  const spec = object.spec as { servers: Record<string, unknown>[] };
  return { ...object, spec: { ...spec, servers: spec.servers.map((server) => ({ ...server, bind })) } };
};

/** The conflicts of `judged` against a world of `others` (and the judged Gateway itself, as `check` and the webhook on UPDATE see it). */
function conflicts(judged: KubeObject, others: readonly KubeObject[]): Violation[] {
  const namespace = (judged.metadata as { namespace: string }).namespace;
  return validateGatewayConflicts(judged, namespace, worldFromObjects([ingressService(), ...others, judged]));
}

t.test('same selector, port and host in another namespace: a warning naming the other Gateway', async (t) => {
  const mine = gateway('shop-gateway', [http(['shop.example.com', 'api.example.com'])], { namespace: 'shop' });
  const theirs = gateway('team-gateway', [http(['shop.example.com'])], { namespace: 'team' });
  const v = conflicts(mine, [theirs]);
  t.equal(v.length, 1);
  t.equal(v[0]?.rule, 'gateway-conflict');
  t.equal(v[0]?.severity, 'warning');
  t.equal(v[0]?.field, 'spec.servers[0].hosts');
  t.match(v[0]?.message, /Gateway team\/team-gateway also serves port 80 for host "shop.example.com" on the same pods \(istio=ingressgateway\); which one gets the traffic is undefined \(IST0145\)/);
  t.notMatch(v[0]?.message, /api\.example\.com/, 'only the shared host is named');
  t.ok(v.every(fitsWarning));
});

t.test('no conflict: another host, port, bind address or unrelated workloads', async (t) => {
  const mine = gateway('mine', [http(['shop.example.com'])], { namespace: 'shop' });
  t.same(conflicts(mine, [gateway('other', [http(['team.example.com'])], { namespace: 'team' })]), [], 'another host');
  t.same(conflicts(mine, [gateway('other', [http(['shop.example.com'], 8080)], { namespace: 'team' })]), [], 'another port');
  t.same(conflicts(mine, [gateway('other', [http(['shop.example.com'])], { namespace: 'team', selector: { istio: 'eastwestgateway' } })]), [], 'other workloads');
  t.same(conflicts(mine, [gateway('other', [http(['shop.example.com'])], { namespace: 'team', selector: { istio: 'ingressgateway', app: 'x' } })]).length, 1,
    'a selector holding the other and more: the same pods');
  t.same(conflicts(mine, [gateway('other', [http(['shop.example.com'])], { namespace: 'team', selector: {} })]).length, 1, 'an empty selector applies to every gateway');
  t.same(conflicts(withBind(mine, '10.0.0.1'), [withBind(gateway('other', [http(['shop.example.com'])], { namespace: 'team' }), '10.0.0.2')]), [], 'other bind addresses');
  t.same(conflicts(withBind(mine, '10.0.0.1'), [withBind(gateway('other', [http(['shop.example.com'])], { namespace: 'team' }), '10.0.0.1')]).length, 1, 'the same bind address');
});

t.test('hosts are compared as written, namespace forms included', async (t) => {
  const judged = (hosts: string[]) => gateway('mine', [http(hosts)], { namespace: 'shop' });
  const other = (hosts: string[]) => gateway('other', [http(hosts)], { namespace: 'team' });
  t.same(conflicts(judged(['*.example.com']), [other(['a.example.com'])]), [], 'a wildcard and a name it covers');
  t.same(conflicts(judged(['*/a.example.com']), [other(['a.example.com'])]), [], '*/host and host');
  t.equal(conflicts(judged(['./a.example.com']), [other(['./a.example.com'])]).length, 1, 'the same ./host');
  t.equal(conflicts(judged(['*']), [other(['*'])]).length, 1, 'both *');
});

t.test('never compared with itself: the stored copy under its own name is not a conflict', async (t) => {
  const stored = gateway('gw', [http(['shop.example.com'])], { namespace: 'shop' });
  const updated = gateway('gw', [http(['shop.example.com']), http(['shop.example.com'], 443)], { namespace: 'shop' });
  t.same(validateGatewayConflicts(updated, 'shop', worldFromObjects([stored])), []);
  t.equal(validateGatewayConflicts(updated, 'other', worldFromObjects([stored])).length, 1, 'the same name in another namespace is another Gateway');
  const nameless = { ...updated, metadata: { namespace: 'shop', generateName: 'gw-' } };
  t.equal(validateGatewayConflicts(nameless, 'shop', worldFromObjects([stored])).length, 1, 'a Gateway named by generateName is new');
});

t.test('one warning per server, listing every conflicting Gateway, sorted, at most three by name', async (t) => {
  const others = ['d', 'b', 'a', 'c'].map((name) => gateway(name, [http(['shop.example.com'])], { namespace: 'team' }));
  const v = conflicts(gateway('mine', [http(['shop.example.com']), http(['shop.example.com'])], { namespace: 'shop' }), others);
  t.equal(v.length, 1, 'two alike servers are one thing to fix');
  t.match(v[0]?.message, /Gateways team\/a, team\/b, team\/c and 1 more also serve port 80/);
  const two = conflicts(gateway('mine', [http(['shop.example.com']), http(['shop.example.com'], 443)], { namespace: 'shop' }), [
    gateway('other', [http(['shop.example.com']), http(['shop.example.com'], 443)], { namespace: 'team' }),
  ]);
  t.same(two.map((x) => x.field), ['spec.servers[0].hosts', 'spec.servers[1].hosts']);
});

t.test('every server of the other Gateway counts, not only its last on the port', async (t) => {
  const other = gateway('other', [http(['a.example.com']), http(['b.example.com'])], { namespace: 'team' });
  t.equal(conflicts(gateway('mine', [http(['a.example.com'])], { namespace: 'shop' }), [other]).length, 1);
});

t.test('without a world, or with an unavailable one, nothing is compared (validateGateway reports the world)', async (t) => {
  const mine = gateway('mine', [http(['shop.example.com'])], { namespace: 'shop' });
  t.same(validateGatewayConflicts(mine, 'shop'), []);
  t.same(validateGatewayConflicts(mine, 'shop', unavailableWorld('the API is down')), []);
  const module = policyModuleFor('networking.istio.io/Gateway');
  const v = module?.validate?.({ object: mine, namespace: 'shop', config: {} as never, context: { traffic: unavailableWorld('the API is down') }, operation: 'CREATE' }) ?? [];
  t.same(v.map((x) => x.rule), ['traffic-checks-unavailable'], 'one warning for the whole Gateway');
});

t.test('the registry runs the rule with the Gateway\'s namespace', async (t) => {
  const module = policyModuleFor('networking.istio.io/Gateway');
  const object = gateway('mine', [http(['shop.example.com'])], { namespace: 'shop' });
  const world = worldFromObjects([ingressService(), gateway('other', [http(['shop.example.com'])], { namespace: 'team' })]);
  const v = module?.validate?.({ object, namespace: 'shop', config: {} as never, context: { traffic: world }, operation: 'CREATE' }) ?? [];
  t.same(v.map((x) => x.rule), ['gateway-conflict']);
});

t.test('untrusted shapes never throw', async (t) => {
  const world = worldFromObjects([gateway('other', [http(['*'])], { namespace: 'team' })]);
  for (const spec of [undefined, null, 'x', [], { servers: 'x' }, { servers: [null, 1, { port: 'x', hosts: 'x' }, { port: { number: '80' }, hosts: [1, null] }] }, { selector: 'x', servers: [{ port: { number: 80 }, hosts: ['*'] }] }]) {
    t.doesNotThrow(() => validateGatewayConflicts({ apiVersion: 'networking.istio.io/v1', kind: 'Gateway', metadata: { name: 'g' }, spec }, 'shop', world), JSON.stringify(spec));
  }
});

t.test('10,000 Gateways on one port: judging one looks up its hosts, not every Gateway', async (t) => {
  const others = Array.from({ length: 10_000 }, (_, i) => gateway(`gw-${i}`, [http([`host-${i}.example.com`])], { namespace: 'team' }));
  const world = worldFromObjects(others);
  let reads = 0;
  const counting = { ...world, gatewaysListening: (port: number, bind: string, host: string) => {
    const found = world.gatewaysListening(port, bind, host);
    reads += found.length;
    return found;
  } };
  const v = validateGatewayConflicts(gateway('mine', [http(['host-7.example.com', 'new.example.com'])], { namespace: 'shop' }), 'shop', counting);
  t.equal(v.length, 1);
  t.equal(reads, 1, 'only the Gateway listing the same host is looked at');
});

t.test('71,000 servers of one host against 1,000 Gateways listing it: each Gateway is looked at once', async (t) => {
  const others = Array.from({ length: 1_000 }, (_, i) => gateway(`gw-${i}`, [http(['*'])], { namespace: 'team' }));
  const world = worldFromObjects(others);
  const servers = Array.from({ length: 71_000 }, () => ({ port: { number: 80, protocol: 'HTTP' }, hosts: ['*'] }));
  const mine = { apiVersion: 'networking.istio.io/v1', kind: 'Gateway', metadata: { name: 'mine', namespace: 'shop' }, spec: { selector: { istio: 'ingressgateway' }, servers } };
  const started = performance.now();
  const v = validateGatewayConflicts(mine, 'shop', world);
  // Going over the 1,000 Gateways for every server would be 71,000,000 selector comparisons.
  t.ok(performance.now() - started < 1500, `${Math.round(performance.now() - started)} ms`);
  t.equal(v.length, 1, 'alike servers are one warning');
  t.match(v[0]?.message, /Gateways team\/gw-0, team\/gw-1, team\/gw-10 and 997 more/);
});
