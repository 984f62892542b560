/**
 * apiRequest against an HTTPS stand-in API server: each operation's method, the query in
 * order, the body with its media type, the kubeconfig's CA and token, and errors that keep
 * the HTTP status and the API's Status where the callers read them (`code`, `statusCode`,
 * `body`: conflicts, not-found, refusals).
 */
import t from 'tap';
import { KubeConfig } from '@kubernetes/client-node';
import { apiRequest, ApiRequestError, JSON_PATCH_MEDIA_TYPE } from '../src/kube/api-request.ts';
import { apiRefusal } from '../src/kube/api-refusal.ts';
import { describeError, httpStatus } from '../src/kube/istio-resources.ts';
import { statusCode } from '../src/kube/ca-bundle.ts';
import { FAKE_TOKEN, fakeApiServer, statusAnswer } from './helpers/fake-api-server.ts';

t.test('each operation sends its method, path, query and body with the credentials', async (t) => {
  const { kubeConfig, requests } = await fakeApiServer(t, (request) => ({ status: request.method === 'POST' ? 201 : 200, body: { kind: 'Secret', seen: request.method } }));
  const secret = { metadata: { name: 's' }, data: { a: 'YQ==' } };
  t.same(await apiRequest(kubeConfig, { operation: 'read', path: '/api/v1/namespaces/ns/secrets/s' }), { kind: 'Secret', seen: 'GET' });
  t.same(await apiRequest(kubeConfig, { operation: 'create', path: '/api/v1/namespaces/ns/secrets', query: { fieldManager: 'mesh-admission' }, body: secret }), { kind: 'Secret', seen: 'POST' }, 'a 201 answer is a success');
  await apiRequest(kubeConfig, { operation: 'replace', path: '/api/v1/namespaces/ns/secrets/s', query: { fieldManager: 'mesh-admission' }, body: secret });
  const ops = [{ op: 'test', path: '/metadata/resourceVersion', value: '7' }];
  await apiRequest(kubeConfig, { operation: 'patch', path: '/apis/x/v1/things/t', query: { dryRun: undefined, fieldManager: 'm' }, body: ops, contentType: JSON_PATCH_MEDIA_TYPE });
  await apiRequest(kubeConfig, { operation: 'delete', path: '/api/v1/namespaces/ns/secrets/s' });
  await apiRequest(kubeConfig, { operation: 'list', path: '/api/v1/services', query: { limit: '5', continue: 'abc' } });
  t.same(
    requests.map(({ method, url, contentType, body }) => ({ method, url, contentType, body })),
    [
      { method: 'GET', url: '/api/v1/namespaces/ns/secrets/s', contentType: undefined, body: undefined },
      { method: 'POST', url: '/api/v1/namespaces/ns/secrets?fieldManager=mesh-admission', contentType: 'application/json', body: secret },
      { method: 'PUT', url: '/api/v1/namespaces/ns/secrets/s?fieldManager=mesh-admission', contentType: 'application/json', body: secret },
      { method: 'PATCH', url: '/apis/x/v1/things/t?fieldManager=m', contentType: 'application/json-patch+json', body: ops },
      { method: 'DELETE', url: '/api/v1/namespaces/ns/secrets/s', contentType: undefined, body: undefined },
      { method: 'GET', url: '/api/v1/services?limit=5&continue=abc', contentType: undefined, body: undefined },
    ],
  );
  t.ok(requests.every((request) => request.authorization === `Bearer ${FAKE_TOKEN}`), 'the kubeconfig token on every request, over TLS verified by its CA');
});

t.test('requests one after the other share one TLS connection', async (t) => {
  const { kubeConfig, requests, connections } = await fakeApiServer(t, () => ({ status: 200, body: { kind: 'ServiceList', items: [] } }));
  for (let page = 0; page < 5; page++) await apiRequest(kubeConfig, { operation: 'list', path: '/api/v1/services', query: { limit: '100' } });
  t.equal(requests.length, 5);
  t.equal(connections(), 1, 'one handshake for five list pages');
  const second = await fakeApiServer(t, () => ({ status: 200, body: {} }));
  await apiRequest(second.kubeConfig, { operation: 'read', path: '/api/v1/namespaces/a' });
  t.equal(second.connections(), 1, 'another kubeconfig, another server: its own connection');
});

t.test('an answer outside 2xx keeps its status under both names, the Status body and its message', async (t) => {
  const forbidden = 'secrets "s" is forbidden: User "system:serviceaccount:mesh:webhook" cannot update resource "secrets" in API group "" in the namespace "mesh"';
  const { kubeConfig } = await fakeApiServer(t, (request) =>
    request.method === 'POST' ? statusAnswer(409, 'AlreadyExists', 'secrets "s" already exists')
    : request.method === 'PUT' ? statusAnswer(403, 'Forbidden', forbidden)
    : statusAnswer(404, 'NotFound', 'secrets "s" not found'),
  );
  const conflict = await apiRequest(kubeConfig, { operation: 'create', path: '/api/v1/namespaces/mesh/secrets', body: {} }).catch((error: unknown) => error);
  t.type(conflict, ApiRequestError);
  t.equal(statusCode(conflict), 409, 'ca-bundle.ts and certificate-secret.ts read `code`');
  t.equal(httpStatus(conflict), 409);
  t.equal((conflict as ApiRequestError).statusCode, 409);
  t.equal((conflict as Error).message, 'creating /api/v1/namespaces/mesh/secrets: HTTP 409: secrets "s" already exists');
  t.equal(describeError(conflict), 'HTTP 409');

  const missing = await apiRequest(kubeConfig, { operation: 'read', path: '/api/v1/namespaces/mesh/secrets/s' }).catch((error: unknown) => error);
  t.equal(statusCode(missing), 404);

  const refused = await apiRequest(kubeConfig, { operation: 'replace', path: '/api/v1/namespaces/mesh/secrets/s', body: {} }).catch((error: unknown) => error);
  t.same(apiRefusal(refused), { status: 403, user: 'system:serviceaccount:mesh:webhook', verb: 'update', resource: 'secrets', group: '', scope: 'in the namespace "mesh"' }, 'the Status body is kept for the refusal message');
});

t.test('an answer that is not JSON is an error', async (t) => {
  const { kubeConfig } = await fakeApiServer(t, (request) => ({ status: 200, body: request.method === 'GET' ? '<html>proxy error</html>' : '' }));
  await t.rejects(apiRequest(kubeConfig, { operation: 'read', path: '/api/v1/namespaces/a' }), /^reading \/api\/v1\/namespaces\/a: the answer is not JSON/);
  await t.rejects(apiRequest(kubeConfig, { operation: 'patch', path: '/api/v1/namespaces/a', body: [] }), /^patching \/api\/v1\/namespaces\/a: the answer is not JSON/, 'nor is an empty one');
});

t.test('an unreachable API server names the operation and the socket error once', async (t) => {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:1', skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  const error = await apiRequest(kubeConfig, { operation: 'patch', path: '/apis/x/v1/things/t', body: [] }).catch((e: unknown) => e);
  t.equal(describeError(error), 'patch failed: ECONNREFUSED');
  t.equal(httpStatus(error), undefined, 'no HTTP status: not mistaken for a conflict or a refusal');
});

t.test('a server whose certificate the kubeconfig does not trust is refused', async (t) => {
  const { kubeConfig, requests } = await fakeApiServer(t, () => ({ status: 200, body: {} }));
  const server = kubeConfig.getCurrentCluster()?.server ?? '';
  const untrusting = new KubeConfig();
  untrusting.loadFromOptions({ clusters: [{ name: 'c', server }], users: [{ name: 'u', token: FAKE_TOKEN }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
  const error = await apiRequest(untrusting, { operation: 'read', path: '/api/v1/namespaces/a' }).catch((e: unknown) => e);
  t.match(describeError(error), /^read failed: /);
  t.equal(requests.length, 0, 'nothing, not even the token, reached the server');
});

t.test('no cluster in the kubeconfig', async (t) => {
  await t.rejects(apiRequest(new KubeConfig(), { operation: 'read', path: '/api/v1/namespaces/a' }), /no cluster configured/);
});
