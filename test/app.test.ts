/** Every row of the README's HTTP behaviour table, through buildApp + app.inject. */
import t from 'tap';
import { buildApp } from '../src/app.ts';
import { createMetrics, kindLabels, MAX_UNKNOWN_KIND_LABELS } from '../src/observability/metrics.ts';
import { REGISTERED_KINDS, webhookConfigurations } from '../src/webhook-config.ts';
import { decodePatch, namespace, review, service, testConfig } from './helpers/reviews.ts';

function makeApp(flags: Record<string, string> = {}) {
  const metrics = createMetrics({ collectProcessMetrics: false });
  const app = buildApp(testConfig(flags), { metrics });
  t.teardown(() => app.close());
  return { app, metrics };
}

async function post(app: ReturnType<typeof makeApp>['app'], url: string, body: unknown, headers: Record<string, string> = {}) {
  return app.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/json', ...headers },
    payload: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
  });
}

t.test('valid review of a good Service is allowed and echoes the uid', async (t) => {
  const { app } = makeApp();
  const res = await post(app, '/validate', review({ uid: 'abc-1', object: service('data-center-service', [{ name: 'http-80', port: 80 }, { name: 'grpc-21000', port: 21000 }]) }));
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /application\/json/);
  t.same(res.json(), { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'abc-1', allowed: true } });
});

t.test('an ambient waypoint Service that istiod manages is admitted unchanged with the default config', async (t) => {
  const { app } = makeApp();
  const waypoint = service('waypoint', [{ name: 'mesh', port: 15008, appProtocol: 'hbone' }], {
    namespace: 'shop',
    labels: { 'gateway.istio.io/managed': 'istio.io-mesh-controller', 'gateway.networking.k8s.io/gateway-name': 'waypoint' },
  });
  const validated = await post(app, '/validate', review({ uid: 'waypoint-1', namespace: 'shop', object: waypoint }));
  t.same(validated.json().response, { uid: 'waypoint-1', allowed: true });
  const mutated = await post(app, '/mutate', review({ uid: 'waypoint-2', namespace: 'shop', object: waypoint }));
  t.same(mutated.json().response, { uid: 'waypoint-2', allowed: true });
  // The same Service without the label is an ordinary Service: hbone is no protocol Istio classifies.
  const unlabelled = service('waypoint', [{ name: 'mesh', port: 15008, appProtocol: 'hbone' }], { namespace: 'shop' });
  t.equal((await post(app, '/validate', review({ namespace: 'shop', object: unlabelled }))).json().response.allowed, false);
});

t.test('a Service with an unclassifiable port is denied with a status kubectl can show', async (t) => {
  const { app } = makeApp();
  const res = await post(app, '/validate', review({ uid: 'deny-1', object: service('data', [{ name: 'data', port: 12345 }]) }));
  t.equal(res.statusCode, 200);
  const response = res.json().response;
  t.equal(response.uid, 'deny-1');
  t.equal(response.allowed, false);
  t.equal(response.status.code, 403);
  t.equal(response.status.reason, 'Forbidden');
  t.match(response.status.message, /^Service default\/data is not ready for the Istio mesh: \[port-protocol\] spec\.ports\[0\] \(port 12345, name "data"\)/);
  t.same(response.status.details.causes.map((c: { field: string; reason: string }) => [c.field, c.reason]), [['spec.ports[0].name', 'port-protocol']]);
});

t.test('warn enforcement allows the same Service with a warning', async (t) => {
  const { app } = makeApp({ enforcement: 'warn' });
  const res = await post(app, '/validate', review({ object: service('data', [{ name: 'data', port: 12345 }]) }));
  const response = res.json().response;
  t.equal(response.allowed, true);
  t.equal(response.status, undefined);
  t.equal(response.warnings.length, 1);
  t.match(response.warnings[0], /^Service default\/data: \[port-protocol\] spec\.ports\[0\]/);
});

t.test('v1beta1 reviews are answered in v1beta1', async (t) => {
  const { app } = makeApp();
  const res = await post(app, '/validate', review({ apiVersion: 'admission.k8s.io/v1beta1', uid: 'beta' }));
  t.equal(res.statusCode, 200);
  t.equal(res.json().apiVersion, 'admission.k8s.io/v1beta1');
  t.equal(res.json().response.uid, 'beta');
});

t.test('mutate renames an unprefixed port with a JSONPatch and a warning', async (t) => {
  const { app } = makeApp();
  const res = await post(app, '/mutate', review({ object: service('web', [{ name: 'web', port: 8080 }]) }));
  const response = res.json().response;
  t.equal(response.allowed, true);
  t.equal(response.patchType, 'JSONPatch');
  t.same(decodePatch(response.patch), [{ op: 'replace', path: '/spec/ports/0/name', value: 'http-web' }]);
  t.equal(response.warnings.length, 1);
  t.match(response.warnings[0], /http-web/);
});

t.test('mutate of an already good Service returns no patch at all', async (t) => {
  const { app } = makeApp();
  const res = await post(app, '/mutate', review({ object: service('ok', [{ name: 'http-80', port: 80 }]) }));
  t.same(res.json().response, { uid: res.json().response.uid, allowed: true });
});

t.test('mutate labels a new Namespace for injection', async (t) => {
  const { app } = makeApp();
  const res = await post(app, '/mutate', review({ kind: 'Namespace', namespace: '', object: namespace('team-a') }));
  const response = res.json().response;
  t.same(decodePatch(response.patch), [{ op: 'add', path: '/metadata/labels', value: { 'istio-injection': 'enabled' } }]);
});

t.test('other kinds, DELETE and CONNECT are allowed without a patch', async (t) => {
  const { app } = makeApp();
  const cases = [
    review({ kind: 'ConfigMap', object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } } }),
    review({ kind: 'Deployment', group: 'apps', object: { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' } } }),
    review({ operation: 'DELETE', object: null, oldObject: service('data', [{ name: 'data', port: 1 }]) }),
    review({ operation: 'CONNECT', object: service('data', [{ name: 'data', port: 1 }]) }),
  ];
  for (const body of cases) {
    for (const url of ['/validate', '/mutate']) {
      const res = await post(app, url, body);
      t.equal(res.statusCode, 200, `${url} ${body.request.kind.kind} ${body.request.operation}`);
      t.same(res.json().response, { uid: body.request.uid, allowed: true });
    }
  }
});

t.test('objects of unexpected shape are answered 200 allowed, never an error', async (t) => {
  const { app } = makeApp();
  const junk: unknown[] = [
    null,
    'a string',
    42,
    [1, 2],
    { metadata: null, spec: null },
    { metadata: { name: 7, labels: ['a'] }, spec: { ports: 'eighty' } },
    { metadata: { name: 'x' }, spec: { ports: [null, 3, 'x', { name: 5, port: 'eighty' }, { name: { a: 1 }, appProtocol: 9 }] } },
    { spec: { ports: [{ port: 80, name: null, protocol: 7 }] } },
  ];
  for (const kind of ['Service', 'Namespace']) {
    for (const object of junk) {
      for (const url of ['/validate', '/mutate']) {
        const res = await post(app, url, review({ kind, object }));
        t.equal(res.statusCode, 200, `${kind} ${url} ${JSON.stringify(object)}`);
        t.type(res.json().response.allowed, 'boolean');
      }
    }
  }
});

t.test('wrong content type is 415 naming the expected type', async (t) => {
  const { app } = makeApp();
  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/yaml']) {
    const res = await post(app, '/validate', JSON.stringify(review()), { 'content-type': type });
    t.equal(res.statusCode, 415, type);
    t.match(res.json(), { statusCode: 415, message: /application\/json/ });
  }
});

t.test('a charset parameter on application/json is accepted', async (t) => {
  const { app } = makeApp();
  const res = await post(app, '/validate', review(), { 'content-type': 'application/json; charset=utf-8' });
  t.equal(res.statusCode, 200);
});

t.test('invalid JSON, non-reviews and missing uid are 400 saying what is wrong', async (t) => {
  const { app } = makeApp();
  const bodies: [string, string | object, RegExp][] = [
    ['truncated JSON', '{"apiVersion": "admission.k8s.io/v1", "kind":', /not valid JSON/],
    ['empty body', '', /empty/],
    ['JSON null', 'null', /AdmissionReview/],
    ['an array', '[]', /AdmissionReview/],
    ['a number', '7', /AdmissionReview/],
    ['no request', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, /request/],
    ['wrong kind', { ...review(), kind: 'Pod' }, /kind/],
    ['unknown version', { ...review(), apiVersion: 'admission.k8s.io/v2' }, /apiVersion/],
    ['no uid', (() => { const r = review(); delete (r.request as { uid?: string }).uid; return r; })(), /uid/],
    ['empty uid', review({ uid: '' }), /uid/],
    ['numeric uid', { ...review(), request: { ...review().request, uid: 12 } }, /uid/],
    ['bad operation', { ...review(), request: { ...review().request, operation: 'PATCH' } }, /operation/],
    ['__proto__ key', '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Service"},"operation":"CREATE","__proto__":{"x":1}}}', /JSON/],
  ];
  for (const [label, body, message] of bodies) {
    const res = await post(app, '/validate', body);
    t.equal(res.statusCode, 400, label);
    t.match(res.json(), { statusCode: 400, error: 'Bad Request', message }, label);
  }
});

t.test('a body over the limit is 413', async (t) => {
  const { app } = makeApp({ 'body-limit-bytes': '1024' });
  const big = review({ object: service('x'.repeat(2000), [{ name: 'http', port: 80 }]) });
  const res = await post(app, '/validate', big);
  t.equal(res.statusCode, 413);
  t.match(res.json(), { statusCode: 413, message: /1024 bytes/ });
});

t.test('the default body limit is 7 MiB', async (t) => {
  const { app } = makeApp();
  const res = await post(app, '/validate', review({ object: { ...service('x', [{ name: 'http', port: 80 }]), pad: 'x'.repeat(7 * 1024 * 1024) } }));
  t.equal(res.statusCode, 413);
  const ok = await post(app, '/validate', review({ object: { ...service('x', [{ name: 'http', port: 80 }]), pad: 'x'.repeat(6 * 1024 * 1024) } }));
  t.equal(ok.statusCode, 200);
});

t.test('unknown paths are 404 and wrong methods 405, as JSON', async (t) => {
  const { app } = makeApp();
  const notFound = await post(app, '/admit', review());
  t.equal(notFound.statusCode, 404);
  t.match(notFound.json(), { statusCode: 404, message: /POST \/validate and POST \/mutate/ });
  const get = await app.inject({ method: 'GET', url: '/validate' });
  t.equal(get.statusCode, 405);
  t.equal(get.headers['allow'], 'POST');
  t.match(get.json(), { statusCode: 405, message: /POST/ });
});

t.test('an exception inside a handler is a logged 500 JSON, not a crash', async (t) => {
  const lines: string[] = [];
  const { pino } = await import('pino');
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
  const config = testConfig();
  const metrics = createMetrics({ collectProcessMetrics: false });
  const app = buildApp(config, { metrics, logger });
  t.teardown(() => app.close());
  // A getter that throws stands in for a bug deep inside a policy.
  const trap = review();
  Object.defineProperty(trap.request.kind, 'kind', { get: () => { throw new Error('boom'); }, enumerable: true });
  app.addHook('preHandler', async (request) => {
    (request as { body: unknown }).body = trap;
  });
  const res = await post(app, '/validate', review());
  t.equal(res.statusCode, 500);
  t.match(res.json(), { statusCode: 500, error: 'Internal Server Error' });
  const logged = lines.map((l) => JSON.parse(l)).find((l) => l.level === 50);
  t.ok(logged, 'error logged');
  t.match(logged.err.stack, /boom/);
});

t.test('metrics count requests, decisions and violations', async (t) => {
  const { app, metrics } = makeApp();
  await post(app, '/validate', review({ object: service('data', [{ name: 'data', port: 12345 }]) }));
  await post(app, '/validate', review());
  const text = await metrics.registry.metrics();
  t.match(text, /mesh_admission_requests_total\{webhook="validate",kind="Service",operation="CREATE",decision="denied"\} 1/);
  t.match(text, /mesh_admission_requests_total\{webhook="validate",kind="Service",operation="CREATE",decision="allowed"\} 1/);
  t.match(text, /mesh_admission_violations_total\{rule="port-protocol",enforced="true"\} 1/);
  t.match(text, /mesh_admission_request_duration_seconds_count\{webhook="validate"\} 2/);
});

t.test('kind labels: junk kinds posted first never take the slots of the kinds the webhook registers', async (t) => {
  const { app, metrics } = makeApp();
  for (let i = 0; i < MAX_UNKNOWN_KIND_LABELS; i++) {
    await post(app, '/mutate', review({ kind: `Junk${i}`, object: { metadata: { name: 'x' } } }));
  }
  await post(app, '/mutate', review({ kind: 'AlsoJunk', object: { metadata: { name: 'x' } } }));
  await post(app, '/mutate', review({ kind: 'Namespace', namespace: '', object: namespace('shop') }));
  await post(app, '/validate', review({ kind: 'VirtualService', group: 'networking.istio.io', object: { metadata: { name: 'vs' }, spec: {} } }));
  const text = await metrics.registry.metrics();
  t.match(text, /mesh_admission_requests_total\{webhook="mutate",kind="Namespace",operation="CREATE",decision="mutated"\} 1/);
  t.match(text, /mesh_admission_requests_total\{webhook="validate",kind="VirtualService",operation="CREATE",decision="[a-z]+"\} 1/);
  t.match(text, /kind="Junk31"/, 'unknown kinds get their own value while shared slots remain');
  t.match(text, /mesh_admission_requests_total\{webhook="mutate",kind="other",operation="CREATE",decision="[a-z]+"\} 1/, 'the unknown kind beyond the slots is "other"');
  t.notMatch(text, /AlsoJunk/);
});

t.test('every kind the webhook configurations register has a reserved label value', async (t) => {
  const configs = webhookConfigurations({ url: 'https://127.0.0.1', caPem: '', name: 'x', failurePolicy: 'Fail', timeoutSeconds: 5, excludedNamespaces: [], trafficChecks: true, holdApplicationUntilProxyStarts: true });
  const resources = new Set(configs.flatMap((c) => (c as { webhooks: { rules: { resources: string[] }[] }[] }).webhooks.flatMap((w) => w.rules.flatMap((r) => r.resources))));
  t.same([...resources].sort(), REGISTERED_KINDS.map((k) => `${k.toLowerCase()}s`).sort(), 'the reserved kinds are exactly the registered resources');
  const label = kindLabels(REGISTERED_KINDS, 0);
  for (const kind of REGISTERED_KINDS) t.equal(label(kind), kind);
  t.equal(label('Unknown'), 'other');
});

t.test('one log line per denial or mutation, none for plain allows at info', async (t) => {
  const lines: string[] = [];
  const { pino } = await import('pino');
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
  const app = buildApp(testConfig(), { metrics: createMetrics({ collectProcessMetrics: false }), logger });
  t.teardown(() => app.close());
  await post(app, '/validate', review({ uid: 'ok' }));
  await post(app, '/validate', review({ uid: 'bad', object: service('data', [{ name: 'data', port: 12345 }]) }));
  await post(app, '/mutate', review({ uid: 'mut', object: service('web', [{ name: 'web', port: 8080 }]) }));
  const entries = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'admission');
  t.same(entries.map((e) => [e.uid, e.decision]), [['bad', 'denied'], ['mut', 'mutated']]);
  t.match(entries[0], { kind: 'Service', namespace: 'default', operation: 'CREATE', rules: ['port-protocol'] });
  t.type(entries[0].durationMs, 'number');
});

t.test('mutate adds holdApplicationUntilProxyStarts to a new Pod when enabled, and leaves Pods alone when not', async (t) => {
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: 'shop' }, spec: { containers: [{ name: 'web', image: 'web:1' }] } };
  const body = review({ kind: 'Pod', namespace: 'shop', object: pod });
  const enabled = (await post(makeApp({ 'hold-application-until-proxy-starts': 'true' }).app, '/mutate', body)).json().response;
  t.equal(enabled.patchType, 'JSONPatch');
  t.same(decodePatch(enabled.patch), [{ op: 'add', path: '/metadata/annotations', value: { 'proxy.istio.io/config': 'holdApplicationUntilProxyStarts: true' } }]);
  t.match(enabled.warnings, [/sidecar is ready/]);
  const disabled = (await post(makeApp().app, '/mutate', body)).json().response;
  t.same(disabled, { uid: body.request.uid, allowed: true });
});
