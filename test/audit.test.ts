/**
 * `audit` against a fake API server (plain HTTP) that pages its lists as kube-apiserver does:
 * the findings do not depend on the page size, every list call is paged, progress goes to a
 * terminal only, a failed page is "the cluster could not be read" (a refused one says which
 * permission is missing), and what the webhook never sees is skipped. test/e2e/scale.e2e.ts
 * runs it against a real API server.
 */
import t from 'tap';
import http from 'node:http';
import { writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { runCli } from '../src/cli.ts';
import { buildConfig } from '../src/config.ts';
import { auditCluster } from '../src/kube/cluster-audit.ts';
import { loadKubeConfig } from '../src/kube/kubeconfig.ts';
import { svc } from './helpers/traffic.ts';
import { tempDir } from './helpers/temp-dir.ts';

interface ListCall {
  readonly path: string;
  readonly limit: string | null;
  readonly continue: string | null;
}

const namespaces = [
  { metadata: { name: 'default' } },
  // Both injection labels, disagreeing: a namespace-level finding.
  { metadata: { name: 'conflicted', labels: { 'istio-injection': 'enabled', 'istio.io/rev': 'canary' } } },
  ...Array.from({ length: 5 }, (_, i) => ({ metadata: { name: `team-${i}` } })),
];
// Every third Service has a port Istio cannot classify.
const services = Array.from({ length: 23 }, (_, i) => svc(`team-${i % 5}`, `svc-${i}`, [{ name: i % 3 === 0 ? 'web' : 'http-web', port: 80 + i }]));

// What the webhook never sees, served when a test asks: the webhook's own namespace (default
// config: mesh-admission), a namespace a config exempts, and an object labelled to opt out.
const outOfScope = {
  namespaces: [{ metadata: { name: 'sandbox', labels: { 'istio-injection': 'enabled', 'istio.io/rev': 'canary' } } }],
  services: [
    svc('mesh-admission', 'own', [{ name: 'web', port: 81 }]),
    svc('sandbox', 'play', [{ name: 'web', port: 82 }]),
    { ...svc('team-0', 'opted-out', [{ name: 'web', port: 83 }]), metadata: { name: 'opted-out', namespace: 'team-0', labels: { 'mesh-admission.io/ignore': 'true' } } },
  ],
};
let serveOutOfScope = false;

const calls: ListCall[] = [];
let failAfterPages = Infinity;
/** A Status the server answers every list with instead of the objects. */
let refusal: { code: number; body: object } | undefined;
const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  const listed = url.pathname === '/api/v1/namespaces' ? namespaces : url.pathname === '/api/v1/services' ? services : undefined;
  const all = listed && serveOutOfScope ? [...listed, ...(listed === namespaces ? outOfScope.namespaces : outOfScope.services)] : listed;
  if (refusal) {
    res.writeHead(refusal.code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(refusal.body));
    return;
  }
  if (!all || calls.length >= failAfterPages) {
    res.writeHead(all ? 500 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code: all ? 500 : 404 }));
    return;
  }
  const limit = url.searchParams.get('limit');
  const token = url.searchParams.get('continue');
  calls.push({ path: url.pathname, limit, continue: token });
  const offset = token ? Number(token) : 0;
  const end = limit ? Math.min(all.length, offset + Number(limit)) : all.length;
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ kind: 'List', apiVersion: 'v1', metadata: { resourceVersion: '7', ...(end < all.length ? { continue: String(end) } : {}) }, items: all.slice(offset, end) }));
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));

const dir = await tempDir(t, 'audit-test-');
const kubeconfig = path.join(dir, 'kubeconfig');
await writeFile(
  kubeconfig,
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'fake', cluster: { server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'u', user: {} }],
    contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'u' } }],
    'current-context': 'fake',
  }),
);
async function audit(args: string[], stderrIsTTY = false) {
  calls.length = 0;
  let stdout = '';
  let stderr = '';
  const code = await runCli(['audit', ...args], {
    stdout: (s) => (stdout += s),
    stderr: (s) => (stderr += s),
    readStdin: async () => '',
    env: { KUBECONFIG: kubeconfig },
    nodeVersion: process.versions.node,
    stderrIsTTY,
  });
  return { code, stdout, stderr, calls: [...calls] };
}

t.test('the findings are the same whatever the page size; every call is paged', async (t) => {
  const whole = await audit(['-o', 'json', '--page-size', '1000']);
  t.equal(whole.code, 1, whole.stderr);
  const violations = JSON.parse(whole.stdout).violations as { kind: string; name: string; rule: string }[];
  t.equal(violations.filter((v) => v.rule === 'port-protocol').length, 8, 'svc-0, svc-3, … svc-21');
  t.ok(violations.some((v) => v.kind === 'Namespace' && v.name === 'conflicted' && v.rule === 'namespace-injection-conflict'), 'the namespace finding');
  t.same(violations.filter((v) => v.rule === 'namespace-not-injected').map((v) => v.name).sort(), ['default', 'team-0', 'team-1', 'team-2', 'team-3', 'team-4'], 'the namespaces without an injection label');
  t.same(whole.calls.map((c) => c.limit), ['1000', '1000'], 'one page per kind');
  for (const pageSize of [1, 4, 7]) {
    const paged = await audit(['-o', 'json', '--page-size', String(pageSize)]);
    t.equal(paged.stdout, whole.stdout, `--page-size ${pageSize}: the same report`);
    t.equal(paged.calls.length, Math.ceil(namespaces.length / pageSize) + Math.ceil(services.length / pageSize), `--page-size ${pageSize}: one call per page`);
    t.ok(paged.calls.every((c) => c.limit === String(pageSize)));
  }
  const text = await audit(['--page-size', '4']);
  t.match(text.stdout, /^8 errors, 7 warnings in 30 checked objects\.$/m, 'the count spans every page');
});

t.test('the default page size is 100', async (t) => {
  const { calls } = await audit(['-o', 'json']);
  t.same(calls.map((c) => c.limit), ['100', '100']);
});

t.test('progress on a terminal only, erased before the report', async (t) => {
  const quiet = await audit(['--page-size', '2']);
  t.equal(quiet.stderr, '', 'nothing on stderr when it is not a terminal');
  const tty = await audit(['--page-size', '2'], true);
  t.ok(tty.stderr.startsWith('\r\x1b[Kaudit: 2 objects read, 1 finding so far'), 'the first page shows at once');
  t.ok(tty.stderr.endsWith('\r\x1b[K'), 'the line is erased at the end');
  t.equal(tty.stdout, quiet.stdout, 'the report is the same');
});

t.test('a page that fails: exit 2, naming the kind and the server', async (t) => {
  failAfterPages = 3;
  t.teardown(() => {
    failAfterPages = Infinity;
  });
  const failed = await audit(['--page-size', '2']);
  t.equal(failed.code, 2);
  t.match(failed.stderr, /^mesh-admission audit: cannot list Services from http:\/\/127\.0\.0\.1:\d+: HTTP 500\n$/);
  t.equal(failed.stdout, '', 'no partial report');
});

t.test('--page-size must be a positive integer', async (t) => {
  for (const bad of ['0', '-5', '2.5', 'many']) {
    const r = await audit([`--page-size=${bad}`]);
    t.equal(r.code, 2, bad);
    t.match(r.stderr, /--page-size must be a positive integer/);
  }
});

t.test('what the webhook never sees is not reported: its namespace, exempt namespaces, opted-out objects', async (t) => {
  const names = (stdout: string) => (JSON.parse(stdout).violations as { kind: string; name: string }[]).map((v) => `${v.kind}/${v.name}`);
  const inScopeOnly = names((await audit(['-o', 'json'])).stdout);
  serveOutOfScope = true;
  t.teardown(() => {
    serveOutOfScope = false;
  });
  const plain = names((await audit(['-o', 'json'])).stdout);
  t.ok(plain.includes('Service/play') && plain.includes('Namespace/sandbox'), 'sandbox is judged while nothing exempts it');
  t.notOk(plain.includes('Service/own'), 'the webhook\'s own namespace (mesh-admission by default)');
  t.notOk(plain.includes('Service/opted-out'), 'labelled mesh-admission.io/ignore=true');
  await writeFile(path.join(dir, 'config.yaml'), 'exemptNamespaces: [sandbox]\n');
  t.same(names((await audit(['-o', 'json', '--config', path.join(dir, 'config.yaml')])).stdout), inScopeOnly, 'with sandbox exempt: the report of the cluster without those objects');
  const asWebhookNamespace = names((await audit(['-o', 'json', '--webhook-namespace', 'sandbox'])).stdout);
  t.notOk(asWebhookNamespace.some((n) => n === 'Service/play' || n === 'Namespace/sandbox'), '--webhook-namespace names the namespace the chart runs in');
  t.ok(asWebhookNamespace.includes('Service/own'), 'mesh-admission is then an ordinary namespace');
});

t.test('a refused list: which verb on which resource, for whom, and the ClusterRole to bind', async (t) => {
  refusal = {
    code: 403,
    body: {
      kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Forbidden', code: 403, details: { kind: 'namespaces' },
      message: 'namespaces is forbidden: User "system:serviceaccount:ci:auditor" cannot list resource "namespaces" in API group "" at the cluster scope',
    },
  };
  t.teardown(() => {
    refusal = undefined;
  });
  const refused = await audit([]);
  t.equal(refused.code, 2);
  t.equal(refused.stdout, '');
  t.match(refused.stderr, /^mesh-admission audit: the API server at http:\/\/127\.0\.0\.1:\d+ refused to list namespaces \(core API group\) at the cluster scope for User "system:serviceaccount:ci:auditor" \(HTTP 403 Forbidden\)\.\n/);
  t.match(refused.stderr, /\n {2}kubectl create clusterrolebinding mesh-admission-audit-ci-auditor --clusterrole=mesh-admission-audit --serviceaccount=ci:auditor\n$/);
  t.notMatch(refused.stderr, /\n\s+at /, 'no stack trace');
  refusal = { code: 401, body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Unauthorized', code: 401 } };
  const unauthorized = await audit([]);
  t.equal(unauthorized.code, 2);
  t.match(unauthorized.stderr, /did not accept the kubeconfig's credentials \(HTTP 401 Unauthorized\)/);
});

t.test('an aborted signal stops the audit between two list calls (serve shutting down)', async (t) => {
  const kubeConfig = loadKubeConfig({ kubeconfig, env: {} });
  const stop = new AbortController();
  calls.length = 0;
  const stopped = auditCluster(kubeConfig, buildConfig({}), { pageSize: 2, signal: stop.signal, onPage: () => stop.abort(new Error('shutting down')) });
  await t.rejects(stopped, { message: 'shutting down' }, 'rejects with the reason, not as a cluster read error');
  t.equal(calls.length, 1, 'no list call after the page that saw the abort');
  calls.length = 0;
  const whole = await auditCluster(kubeConfig, buildConfig({}), { pageSize: 2 });
  t.equal(whole.readObjects, namespaces.length + services.length, 'without a signal every page is read');
  t.equal(calls.length, Math.ceil(namespaces.length / 2) + Math.ceil(services.length / 2));
});
