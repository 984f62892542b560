/** Istio's validation of a VirtualService's routes on their own (src/policies/virtual-service-validation.ts), through validateVirtualService. */
import t from 'tap';
import { validateVirtualService } from '../src/policies/virtual-service.ts';
import { virtualServiceValidationViolations } from '../src/policies/virtual-service-validation.ts';
import { worldFromObjects } from '../src/policies/traffic-world.ts';
import type { Violation } from '../src/policies/types.ts';
import { httpTo, seed, svc, virtualService } from './helpers/traffic.ts';

const rules = (violations: readonly Violation[]) => violations.map((v) => v.rule);
const fitsWarning = (v: Violation) => `[${v.rule}] ${v.message}`.length <= 256;
const findings = (spec: Record<string, unknown>) => validateVirtualService(virtualService('vs', { hosts: ['front.example.com'], ...spec }), 'default');
const to = (host: string, weight?: number) => ({ destination: { host }, ...(weight === undefined ? {} : { weight }) });

t.test("the seed's VirtualServices and complete routes give nothing", async (t) => {
  for (const vs of seed.virtualServices) t.same(virtualServiceValidationViolations(vs), [], String(vs.metadata?.name));
  t.same(findings({
    http: [httpTo('reviews'), { redirect: { uri: '/new' } }, { directResponse: { status: 503 } }, { delegate: { name: 'more', namespace: 'default' } }, { route: [to('a', 90), to('b', 10)] }],
    tcp: [{ route: [to('db')] }],
    tls: [{ match: [{ sniHosts: ['front.example.com'] }], route: [to('tls', 0)] }],
  }), []);
});

t.test('virtualservice-routes-missing: no http, tcp or tls routes', async (t) => {
  for (const spec of [{}, { http: [], tcp: [], tls: [] }, { http: 'x' }]) {
    const v = findings(spec);
    t.same(rules(v), ['virtualservice-routes-missing'], JSON.stringify(spec));
    t.equal(v[0]?.severity, 'error');
    t.equal(v[0]?.field, 'spec');
    t.match(v[0]?.message, /no http, tcp or tls routes, and Istio rejects a VirtualService without/);
  }
  t.same(rules(findings({ tcp: [null] })), [], 'an entry, however broken, is a route section');
});

t.test('virtualservice-route-action-missing: http needs route, redirect, directResponse or delegate; tcp and tls need route', async (t) => {
  const v = findings({
    http: [{ match: [{ uri: { prefix: '/a' } }] }, httpTo('reviews'), { route: [], redirect: null }],
    tcp: [{ match: [{ port: 9000 }] }],
    tls: [{ match: [{ sniHosts: ['front.example.com'] }], route: [] }],
  });
  t.same(v.map((x) => [x.rule, x.field, x.identity]), [
    ['virtualservice-route-action-missing', 'spec.http[0].route', 'virtualservice-route-action-missing|http'],
    ['virtualservice-route-action-missing', 'spec.tcp[0].route', 'virtualservice-route-action-missing|tcp'],
    ['virtualservice-route-action-missing', 'spec.tls[0].route', 'virtualservice-route-action-missing|tls'],
  ]);
  t.match(v[0]?.message, /^spec\.http\[0\]\.route and spec\.http\[2\]\.route: the http route has no route, redirect, directResponse or delegate/);
  t.match(v[1]?.message, /^spec\.tcp\[0\]\.route: the tcp route has no route entries/);
  t.ok(v.every((x) => x.severity === 'error' && fitsWarning(x)));
  t.same(findings({ tcp: [{ redirect: { uri: '/x' } }] }).map((x) => x.field), ['spec.tcp[0].route'], 'only http routes redirect');
});

t.test('virtualservice-destination-missing: every route entry needs a destination', async (t) => {
  const v = findings({ http: [{ route: [to('a', 50), { weight: 50 }] }], tls: [{ match: [{ sniHosts: ['front.example.com'] }], route: [{ destination: null }] }] });
  t.same(v.map((x) => [x.rule, x.field]), [['virtualservice-destination-missing', 'spec.http[0].route[1].destination']]);
  t.match(v[0]?.message, /^spec\.http\[0\]\.route\[1\]\.destination and spec\.tls\[0\]\.route\[0\]\.destination: the route entry has no destination/);
  // The cluster-aware rule reports the same entry as routing to no host, as Istio does.
  const world = worldFromObjects([svc('default', 'a', [{ name: 'http', port: 80 }])]);
  const both = validateVirtualService(virtualService('vs', { hosts: ['x'], http: [{ route: [to('a', 50), { weight: 50 }] }] }), 'default', world);
  t.same(rules(both), ['virtualservice-destination-missing', 'virtualservice-destination-not-found']);
});

t.test('virtualservice-weights-zero: several destinations whose weights add up to 0', async (t) => {
  t.same(findings({ http: [{ route: [to('a', 0)] }, { route: [to('b')] }] }), [], 'one destination needs no weight');
  t.same(findings({ http: [{ route: [to('a', 100), to('b', 0)] }] }), [], 'a share of 0 beside others');
  const v = findings({ http: [{ route: [to('a'), to('b', 0)] }], tcp: [{ route: [to('c'), to('d')] }] });
  t.same(v.map((x) => [x.rule, x.field]), [['virtualservice-weights-zero', 'spec.http[0].route']]);
  t.match(v[0]?.message, /^spec\.http\[0\]\.route and spec\.tcp\[0\]\.route: the destination weights add up to 0, so Istio rejects the route/);
  t.same(rules(findings({ http: [{ route: [to('a', -5), to('b', 5)] }] })), ['virtualservice-weights-zero'], 'the sum counts, not each weight');
  t.same(rules(findings({ http: [{ route: [to('a'), null] }] })), ['virtualservice-weights-zero'], 'an entry that is no destination still counts as one');
});

t.test('identities do not depend on route order (grandfathering on UPDATE)', async (t) => {
  const routes = [{ match: [] }, { route: [{ weight: 1 }] }, { route: [to('a'), to('b')] }];
  const ids = (http: unknown[]) => findings({ http }).map((v) => v.identity).sort();
  t.same(ids([routes[2], routes[0], routes[1]]), ids(routes));
});

t.test('untrusted shapes never throw', async (t) => {
  for (const spec of [{ http: [null, 7, 'x'] }, { http: [{ route: 'x' }] }, { tls: [{ route: [7, { destination: 'x', weight: 'x' }] }] }]) {
    t.doesNotThrow(() => findings(spec), JSON.stringify(spec));
  }
  t.same(findings({ http: [null, 7] }), [], 'entries that are not routes are the API server schema\'s to refuse');
  t.same(rules(validateVirtualService({ kind: 'VirtualService' }, 'default')), ['virtualservice-routes-missing'], 'no spec');
});

t.test('one finding per problem however many routes have it, each fitting one warning', async (t) => {
  const http = Array.from({ length: 20_000 }, () => ({ route: [{ weight: 0 }, { weight: 0 }] }));
  const v = findings({ http });
  t.same(rules(v), ['virtualservice-destination-missing', 'virtualservice-weights-zero']);
  for (const x of v) t.ok(fitsWarning(x), `${x.rule}: ${x.message.length}`);
  t.match(v[1]?.message, /spec\.http\[0\]\.route, spec\.http\[1\]\.route, spec\.http\[2\]\.route and 19997 more/);
});
