/**
 * listPageFetcher against a real HTTP server: the query it sends (limit, continue), the
 * kubeconfig's credentials on every page, one parse of the answer, and errors that keep the
 * HTTP status (404: not served; 410: the continue token expired).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { KubeConfig } from '@kubernetes/client-node';
import { listPageFetcher } from '../src/kube/list-request.ts';
import { ApiRequestError } from '../src/kube/api-request.ts';
import { listPages } from '../src/kube/paginated-list.ts';
import { describeError, httpStatus } from '../src/kube/istio-resources.ts';

interface Seen {
  readonly url: string;
  readonly authorization: string | undefined;
}

async function apiServer(t: Test, answer: (url: URL) => { status: number; body: string }): Promise<{ kubeConfig: KubeConfig; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ url: req.url ?? '', authorization: req.headers.authorization });
    const { status, body } = answer(new URL(req.url ?? '/', 'http://x'));
    res.writeHead(status, { 'content-type': 'application/json' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'fake', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 'secret-token' }],
    contexts: [{ name: 'c', cluster: 'fake', user: 'u' }],
    currentContext: 'c',
  });
  return { kubeConfig, seen };
}

t.test('pages follow the continue token, each with the credentials', async (t) => {
  const { kubeConfig, seen } = await apiServer(t, (url) => {
    const from = Number(url.searchParams.get('continue') ?? 0);
    const limit = Number(url.searchParams.get('limit'));
    const items = Array.from({ length: Math.min(limit, 5 - from) }, (_, i) => ({ metadata: { name: `svc-${from + i}` } }));
    const next = from + items.length < 5 ? String(from + items.length) : undefined;
    return { status: 200, body: JSON.stringify({ kind: 'ServiceList', metadata: { resourceVersion: '42', ...(next ? { continue: next } : {}) }, items }) };
  });
  const names: string[] = [];
  for await (const page of listPages(listPageFetcher(kubeConfig, '/api/v1/services'), { pageSize: 2, what: 'listing Services' })) {
    t.equal(page.metadata?.resourceVersion, '42');
    for (const item of page.items ?? []) names.push(item.metadata?.name ?? '');
  }
  t.same(names, ['svc-0', 'svc-1', 'svc-2', 'svc-3', 'svc-4']);
  t.same(seen.map((s) => s.url), ['/api/v1/services?limit=2', '/api/v1/services?limit=2&continue=2', '/api/v1/services?limit=2&continue=4']);
  t.ok(seen.every((s) => s.authorization === 'Bearer secret-token'), 'the kubeconfig token on every page');
});

t.test('an answer other than 200 keeps its status and the server message', async (t) => {
  const { kubeConfig } = await apiServer(t, (url) =>
    url.pathname.includes('gateways')
      ? { status: 404, body: JSON.stringify({ kind: 'Status', code: 404, message: 'the server could not find the requested resource' }) }
      : { status: 410, body: JSON.stringify({ kind: 'Status', code: 410, message: 'The provided continue parameter is too old' }) },
  );
  const expired = await listPageFetcher(kubeConfig, '/api/v1/services')(100, 'stale').catch((error: unknown) => error);
  t.type(expired, ApiRequestError);
  t.equal(httpStatus(expired), 410);
  t.match((expired as Error).message, /HTTP 410: The provided continue parameter is too old/);
  const absent = await listPageFetcher(kubeConfig, '/apis/networking.istio.io/v1/gateways')(100, undefined).catch((error: unknown) => error);
  t.equal(httpStatus(absent), 404);
});

t.test('an answer that is not JSON is an error, not an empty list', async (t) => {
  const { kubeConfig } = await apiServer(t, () => ({ status: 200, body: '<html>proxy error</html>' }));
  await t.rejects(listPageFetcher(kubeConfig, '/api/v1/services')(100, undefined), /listing \/api\/v1\/services: the answer is not JSON/);
});

t.test('an unreachable API server names the socket error once', async (t) => {
  const { kubeConfig } = await apiServer(t, () => ({ status: 200, body: '{}' }));
  const server = kubeConfig.getCurrentCluster()?.server ?? '';
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'fake', server: server.replace(/:\d+\/$/, ':1/'), skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'c', cluster: 'fake', user: 'u' }],
    currentContext: 'c',
  });
  const error = await listPageFetcher(kubeConfig, '/api/v1/services')(100, undefined).catch((e: unknown) => e);
  t.equal(describeError(error), 'list failed: ECONNREFUSED');
});

t.test('no cluster in the kubeconfig', async (t) => {
  await t.rejects(listPageFetcher(new KubeConfig(), '/api/v1/services')(100, undefined), /no cluster configured/);
});
