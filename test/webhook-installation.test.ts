import t from 'tap';
import { includesFields, installableWebhooks, plannedWebhooks, PLANNED_WEBHOOKS_ANNOTATION } from '../src/kube/webhook-installation.ts';
import { routesTo } from '../src/kube/service-routing.ts';

const annotated = (text: string) => ({ metadata: { annotations: { [PLANNED_WEBHOOKS_ANNOTATION]: text } } });

t.test('plannedWebhooks: absent plan, a valid plan, and broken ones', async (t) => {
  t.equal(plannedWebhooks({ metadata: {} }), undefined, 'no annotation: the configuration lists its webhooks itself');
  t.equal(plannedWebhooks({}), undefined);
  t.same(plannedWebhooks(annotated('[{"name":"a","failurePolicy":"Fail"}]')), [{ name: 'a', failurePolicy: 'Fail' }]);
  t.same(plannedWebhooks(annotated('[]')), [], 'an empty plan is a plan');
  t.throws(() => plannedWebhooks(annotated('nope')), /is not JSON/);
  t.throws(() => plannedWebhooks(annotated('[{"name":""}]')), /webhook 0 has no name/);
  t.throws(() => plannedWebhooks(annotated('[null]')), /webhook 0 has no name/);
});

t.test('includesFields: what the plan sets must match; what the API server adds is ignored', async (t) => {
  const plan = { name: 'a', rules: [{ apiGroups: [''] }], namespaceSelector: { matchExpressions: [{ key: 'k', values: ['x'] }] } };
  const live = { name: 'a', rules: [{ apiGroups: [''], scope: '*' }], namespaceSelector: { matchExpressions: [{ key: 'k', values: ['x'] }] }, matchPolicy: 'Equivalent', clientConfig: { caBundle: 'Zm9v' } };
  t.ok(includesFields(live, plan), 'defaults and the caBundle are extra fields');
  t.notOk(includesFields({ ...live, name: 'b' }, plan), 'a changed value');
  t.notOk(includesFields({ ...live, rules: [...live.rules, { apiGroups: ['apps'] }] }, plan), 'an extra rule sends more: a difference');
  t.notOk(includesFields({ ...live, rules: [] }, plan), 'a missing rule');
  t.notOk(includesFields({ ...live, namespaceSelector: { matchExpressions: [{ key: 'k', values: ['x', 'y'] }] } }, plan), 'a changed selector list');
  t.notOk(includesFields(undefined, plan), 'nothing installed');
  t.ok(includesFields([], []));
  t.notOk(includesFields({ port: '443' }, { port: 443 }), 'types count');
});

t.test('installableWebhooks adds the caBundle and keeps the rest of clientConfig', async (t) => {
  const [hook, bare] = installableWebhooks([{ name: 'a', clientConfig: { service: { name: 's', namespace: 'n' } } }, { name: 'b' }], 'Q0E=');
  t.same(hook, { name: 'a', clientConfig: { service: { name: 's', namespace: 'n' }, caBundle: 'Q0E=' } });
  t.same(bare, { name: 'b', clientConfig: { caBundle: 'Q0E=' } });
});

t.test('routesTo: a ready endpoint with one of the pod IPs', async (t) => {
  const slice = (addresses: string[], ready?: boolean) => ({ addressType: 'IPv4', endpoints: [{ addresses, ...(ready === undefined ? {} : { conditions: { ready } }) }] });
  t.ok(routesTo([slice(['10.0.0.5'], true)], ['10.0.0.5']));
  t.ok(routesTo([slice(['10.0.0.5'])], ['10.0.0.5']), 'no ready condition: unknown, counted as ready');
  t.notOk(routesTo([slice(['10.0.0.5'], false)], ['10.0.0.5']), 'not ready yet');
  t.notOk(routesTo([slice(['10.0.0.6'], true)], ['10.0.0.5']), 'another replica is no proof this one is reachable');
  t.ok(routesTo([slice(['10.0.0.6'], true), { addressType: 'IPv6', endpoints: [{ addresses: ['fd00::5'], conditions: { ready: true } }] }], ['10.0.0.5', 'fd00::5']), 'dual stack');
  t.notOk(routesTo([], ['10.0.0.5']), 'no slice yet');
  t.notOk(routesTo([{ addressType: 'IPv4' }], ['10.0.0.5']), 'a slice without endpoints');
});
