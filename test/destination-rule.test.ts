/** DestinationRule rules (destinationrule-host-not-found) and the DestinationRule view and index the subset rule reads. */
import t from 'tap';
import { DestinationRuleIndex, destinationRuleHostKey, toTrafficDestinationRule, validateDestinationRule } from '../src/policies/destination-rule.ts';
import { unavailableWorld, worldFromObjects } from '../src/policies/traffic-world.ts';
import type { Violation } from '../src/policies/types.ts';
import { destinationRule, serviceEntry, svc } from './helpers/traffic.ts';

const rules = (violations: readonly Violation[]) => violations.map((v) => v.rule);
const fitsWarning = (v: Violation) => `[${v.rule}] ${v.message}`.length <= 256;

t.test('host keys: a Service host names its Service wherever it is written; any other host is its own, in the namespace', async (t) => {
  t.equal(destinationRuleHostKey('reviews', 'shop'), 'shop/reviews');
  t.equal(destinationRuleHostKey('reviews.shop.svc.cluster.local', 'front'), 'shop/reviews');
  t.equal(destinationRuleHostKey('a.b.shop.svc.cluster.local', 'front'), 'shop/a.b', 'the name takes every dot but the last two');
  t.equal(destinationRuleHostKey('reviews.shop', 'front'), 'front/reviews.shop', 'a host with a dot is taken literally');
  t.equal(destinationRuleHostKey('api.example.com', 'front'), 'front/api.example.com');
  t.equal(destinationRuleHostKey('', 'front'), 'front/');
});

t.test('the view keeps the host, exportTo and subset names, nothing of the traffic policy', async (t) => {
  const object = destinationRule('shop', 'reviews', 'reviews', ['v1', 'v2'], ['.']);
  (object.spec as Record<string, unknown>)['trafficPolicy'] = { tls: { mode: 'ISTIO_MUTUAL' } };
  (object.spec as { subsets: unknown[] }).subsets.push({ labels: { version: 'nameless' } }, 'junk');
  t.same(toTrafficDestinationRule(object), { namespace: 'shop', name: 'reviews', host: 'reviews', exportTo: ['.'], subsets: ['v1', 'v2'], hostKey: 'shop/reviews' });
  t.same(toTrafficDestinationRule({ kind: 'DestinationRule', metadata: { name: 'x' }, spec: { host: 7 } }, 'web'), { namespace: 'web', name: 'x', host: '', exportTo: [], subsets: [], hostKey: 'web/' });
  t.equal(toTrafficDestinationRule({ kind: 'DestinationRule', metadata: { name: 'x' } }), undefined, 'no spec: nothing to read');
});

t.test('the index finds DestinationRules by host key and follows replacements and deletions', async (t) => {
  const index = new DestinationRuleIndex();
  const view = (namespace: string, name: string, host: string, subsets: string[]) => toTrafficDestinationRule(destinationRule(namespace, name, host, subsets));
  index.set('shop/a', view('shop', 'a', 'reviews', ['v1']));
  index.set('front/b', view('front', 'b', 'reviews.shop.svc.cluster.local', ['v2']));
  t.same(index.forHostKey('shop/reviews').map((rule) => rule.name).sort(), ['a', 'b']);
  index.set('shop/a', view('shop', 'a', 'ratings', ['v1']));
  t.same(index.forHostKey('shop/reviews').map((rule) => rule.name), ['b'], 'a changed host leaves its old key');
  t.same(index.forHostKey('shop/ratings').map((rule) => rule.name), ['a']);
  index.set('front/b', undefined);
  index.delete('shop/a');
  index.delete('shop/never');
  t.same([index.forHostKey('shop/reviews'), index.forHostKey('shop/ratings')], [[], []]);
});

t.test('destinationrule-host-not-found: the host resolved from the DestinationRule\'s namespace and exportTo', async (t) => {
  const world = worldFromObjects([
    svc('shop', 'reviews', [{ name: 'http', port: 9080 }]),
    serviceEntry('shop', 'api', ['api.example.com'], ['.']),
    serviceEntry('shop', 'wild', ['*.example.org']),
  ]);
  const check = (namespace: string, host: string, exportTo?: string[]) => rules(validateDestinationRule(destinationRule(namespace, 'dr', host, [], exportTo), namespace, world));
  t.same(check('shop', 'reviews'), [], 'a short name in the Service\'s namespace');
  t.same(check('front', 'reviews.shop.svc.cluster.local'), [], 'the full name from anywhere');
  t.same(check('front', 'reviews'), ['destinationrule-host-not-found'], 'a short name names the Service of its own namespace');
  t.same(check('shop', 'reviews.shop'), ['destinationrule-host-not-found'], 'a host with a dot is taken literally');
  t.same(check('shop', 'api.example.com'), [], 'a ServiceEntry exported to the namespace');
  t.same(check('front', 'api.example.com'), ['destinationrule-host-not-found'], 'not exported to this namespace');
  t.same(check('front', 'api.example.com', ['shop']), [], "the DestinationRule's exportTo names the ServiceEntry's namespace");
  t.same(check('front', 'a.example.org'), [], 'a wildcard ServiceEntry host covers it');
  t.same(check('front', '*.example.org'), [], 'and covers the same wildcard');
  t.same(check('front', '*.example.net'), ['destinationrule-host-not-found']);
  t.same(check('front', ''), ['destinationrule-host-not-found'], 'no host at all');
  for (const host of ['*.local', '*.cluster.local', '*.svc.cluster.local', '*.shop.svc.cluster.local', '*']) {
    t.same(check('istio-system', host), [], `${host} configures the cluster's Services`);
  }
});

t.test('messages: what is wrong, where it was looked for, how to fix it; one warning each', async (t) => {
  const world = worldFromObjects([]);
  const [missing] = validateDestinationRule(destinationRule('front', 'dr', 'reviews'), 'front', world);
  t.equal(missing?.severity, 'warning');
  t.equal(missing?.field, 'spec.host');
  t.match(missing?.message, /"reviews" \(looked for "reviews\.front\.svc\.cluster\.local"\) matches no Service or ServiceEntry visible here.*IST0174/);
  const [empty] = validateDestinationRule(destinationRule('front', 'dr', ''), 'front', world);
  t.match(empty?.message, /has no host, so it applies to nothing \(IST0174\)/);
  const [long] = validateDestinationRule(destinationRule('front', 'dr', `${'a'.repeat(200)}.example.com`), 'front', world);
  for (const v of [missing, empty, long]) t.ok(v && fitsWarning(v), v?.message ?? 'missing');
});

t.test('without a world nothing is checked; an unavailable world gives one warning', async (t) => {
  const object = destinationRule('shop', 'dr', 'nowhere');
  t.same(validateDestinationRule(object, 'shop'), []);
  const [unavailable, ...rest] = validateDestinationRule(object, 'shop', unavailableWorld('the Kubernetes API is unreachable'));
  t.same(rest, []);
  t.equal(unavailable?.rule, 'traffic-checks-unavailable');
  t.match(unavailable?.message, /could not check whether a Service or ServiceEntry has its host because the Kubernetes API is unreachable/);
});
