/** virtualservice-subset-not-found: a route's subset looked up in the DestinationRules for its host. */
import t from 'tap';
import { validateVirtualService } from '../src/policies/virtual-service.ts';
import { worldFromObjects } from '../src/policies/traffic-world.ts';
import type { KubeObject, Violation } from '../src/policies/types.ts';
import { destinationRule, serviceEntry, svc, virtualService } from './helpers/traffic.ts';

const fitsWarning = (v: Violation) => `[${v.rule}] ${v.message}`.length <= 256;
const subsetFindings = (violations: readonly Violation[]) => violations.filter((v) => v.rule === 'virtualservice-subset-not-found');
const to = (host: string, subset?: string) => ({ destination: { host, ...(subset !== undefined ? { subset } : {}) } });

const world = worldFromObjects([
  svc('shop', 'reviews', [{ name: 'http', port: 9080 }]),
  svc('other', 'reviews', [{ name: 'http', port: 9080 }]),
  serviceEntry('shop', 'api', ['api.example.com']),
  destinationRule('shop', 'reviews', 'reviews', ['v1', 'v2']),
  destinationRule('front', 'reviews-canary', 'reviews.shop.svc.cluster.local', ['canary']),
  destinationRule('other', 'reviews', 'reviews', ['legacy']),
  destinationRule('shop', 'api', 'api.example.com', ['primary']),
]);

t.test('subsets are found in every DestinationRule whose host names the same Service or host', async (t) => {
  const check = (namespace: string, host: string, subset?: string) =>
    subsetFindings(validateVirtualService(virtualService('vs', { hosts: ['x'], http: [{ route: [to(host, subset)] }] }, namespace), namespace, world)).length;
  t.equal(check('shop', 'reviews', 'v1'), 0, 'the short name in its namespace');
  t.equal(check('shop', 'reviews', 'canary'), 0, 'a DestinationRule of another namespace naming the Service in full');
  t.equal(check('front', 'reviews.shop.svc.cluster.local', 'v2'), 0, 'the full name from another namespace');
  t.equal(check('shop', 'reviews', 'legacy'), 1, "other/reviews's subsets are not shop/reviews's");
  t.equal(check('front', 'reviews', 'v1'), 1, 'a short name in another namespace names another Service');
  t.equal(check('shop', 'reviews', 'v3'), 1);
  t.equal(check('shop', 'reviews'), 0, 'no subset: nothing to look up');
  t.equal(check('shop', 'reviews', ''), 0, 'an empty subset is none');
  t.equal(check('shop', 'api.example.com', 'primary'), 0, 'a host with a dot in its own namespace');
  t.equal(check('front', 'api.example.com', 'primary'), 1, 'a host with a dot is looked up in the VirtualService\'s namespace only');
});

t.test('routes of every section and mirrors; one warning per host and subset', async (t) => {
  const object: KubeObject = virtualService('vs', {
    hosts: ['reviews'],
    http: [{ route: [to('reviews', 'v9'), to('reviews', 'v9'), to('reviews', 'v1')], mirror: { host: 'reviews', subset: 'v8' }, mirrors: [{ destination: { host: 'reviews', subset: 'v9' } }] }],
    tcp: [{ route: [to('reviews', 'v7')] }],
    tls: [{ match: [{ sniHosts: ['reviews'] }], route: [to('reviews', 'v6')] }],
  }, 'shop');
  const found = subsetFindings(validateVirtualService(object, 'shop', world));
  t.same(found.map((v) => v.field), [
    'spec.http[0].route[0].destination.subset',
    'spec.tls[0].route[0].destination.subset',
    'spec.tcp[0].route[0].destination.subset',
    'spec.http[0].mirror.subset',
  ]);
  t.match(found[0]?.message, /DestinationRule (front\/reviews-canary|shop\/reviews) \(and 1 more\) for "reviews" defines .*not "v9"; requests routed there fail \(IST0101\)/);
  for (const v of found) {
    t.equal(v.severity, 'warning');
    t.ok(fitsWarning(v), v.message);
  }
});

t.test('messages when no DestinationRule, or one without subsets, exists for the host', async (t) => {
  const bare = worldFromObjects([destinationRule('shop', 'plain', 'ratings')]);
  const [none] = subsetFindings(validateVirtualService(virtualService('vs', { hosts: ['x'], http: [{ route: [to('reviews', 'v1')] }] }, 'shop'), 'shop', bare));
  t.match(none?.message, /no DestinationRule for "reviews" defines subsets, so subset "v1" does not exist/);
  const [empty] = subsetFindings(validateVirtualService(virtualService('vs', { hosts: ['x'], http: [{ route: [to('ratings', 'v1')] }] }, 'shop'), 'shop', bare));
  t.match(empty?.message, /DestinationRule shop\/plain for "ratings" defines no subsets, not "v1"/);
  const longName = `${'r'.repeat(60)}.example.com`;
  const [long] = subsetFindings(validateVirtualService(virtualService('vs', { hosts: ['x'], http: [{ route: [to(longName, 's'.repeat(60))] }] }, 'shop'), 'shop', bare));
  for (const v of [none, empty, long]) t.ok(v && fitsWarning(v), v?.message ?? 'missing');
});
