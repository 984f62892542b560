/**
 * src/kube/report-writer.ts against a fake API server (plain HTTP) whose answers each test
 * sets: what a failed call is reported as (CRDs missing, writes refused, a race with another
 * writer), a stale report another writer already deleted, and the stop signal.
 * test/e2e/audit-reports.e2e.ts and serve-reports.e2e.ts write to a real API server.
 */
import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { buildReports, type ReportedFinding } from '../src/check/policy-reports.ts';
import { writeReports } from '../src/kube/report-writer.ts';

interface Answer {
  readonly code: number;
  readonly body: object;
}

const calls: string[] = [];
/** The answer to `METHOD path` (query left out); unset: 404. */
let answers: Record<string, Answer> = {};
const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  const call = `${req.method} ${url.pathname}`;
  calls.push(call);
  req.resume();
  const answer = answers[call] ?? { code: 404, body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 404 } };
  res.writeHead(answer.code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(answer.body));
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));

const kubeConfig = new KubeConfig();
kubeConfig.loadFromOptions({
  clusters: [{ name: 'fake', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
  users: [{ name: 'u' }],
  contexts: [{ name: 'fake', cluster: 'fake', user: 'u' }],
  currentContext: 'fake',
});

const LIST_NAMESPACED = 'GET /apis/wgpolicyk8s.io/v1alpha2/policyreports';
const LIST_CLUSTER = 'GET /apis/wgpolicyk8s.io/v1alpha2/clusterpolicyreports';
const emptyList = { code: 200, body: { kind: 'List', apiVersion: 'v1', metadata: {}, items: [] } };
const finding: ReportedFinding = { rule: 'port-protocol', severity: 'error', kind: 'Service', namespace: 'shop', name: 'web', field: 'spec.ports[0].name', message: 'm', file: '', line: 0, apiVersion: 'v1', uid: 'u1' };
const shopReports = buildReports([finding], 'policyreport', new Date(0));

t.beforeEach(() => {
  calls.length = 0;
  answers = {};
});

t.test('the report resources not served: install their CRDs', async (t) => {
  await t.rejects(writeReports(kubeConfig, 'policyreport', shopReports), {
    message: /^cannot write wgpolicyk8s\.io\/v1alpha2 PolicyReport and ClusterPolicyReport reports to http:\/\/127\.0\.0\.1:\d+: HTTP 404: the cluster does not serve them; install their CRDs first$/,
  });
});

t.test('a refused list names the refused call, the permissions and the chart role', async (t) => {
  answers[LIST_NAMESPACED] = {
    code: 403,
    body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Forbidden', code: 403, message: 'policyreports.wgpolicyk8s.io is forbidden: User "system:serviceaccount:ci:auditor" cannot list resource "policyreports" in API group "wgpolicyk8s.io" at the cluster scope' },
  };
  await t.rejects(writeReports(kubeConfig, 'policyreport', shopReports), {
    message: /HTTP 403 \(refused to list policyreports for User "system:serviceaccount:ci:auditor"\); writing them needs list, create, update, delete on policyreports and clusterpolicyreports \(API group wgpolicyk8s\.io\) in all namespaces: the Helm chart's ClusterRole mesh-admission-report-writer/,
  });
});

t.test('a create that loses a race with another writer: a conflict, not "install the CRDs"', async (t) => {
  answers[LIST_NAMESPACED] = emptyList;
  answers[LIST_CLUSTER] = emptyList;
  answers['POST /apis/wgpolicyk8s.io/v1alpha2/namespaces/shop/policyreports'] = { code: 409, body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'AlreadyExists', code: 409 } };
  await t.rejects(writeReports(kubeConfig, 'policyreport', shopReports), { message: /HTTP 409: another writer \(another webhook replica\?\) changed a report meanwhile; the next run writes it again$/ });
});

t.test('a stale report another writer already deleted is no failure', async (t) => {
  answers[LIST_NAMESPACED] = { code: 200, body: { kind: 'List', apiVersion: 'v1', metadata: {}, items: [{ metadata: { name: 'mesh-admission', namespace: 'gone', resourceVersion: '3' } }] } };
  answers[LIST_CLUSTER] = emptyList;
  answers['POST /apis/wgpolicyk8s.io/v1alpha2/namespaces/shop/policyreports'] = { code: 201, body: shopReports[0]! };
  const result = await writeReports(kubeConfig, 'policyreport', shopReports);
  t.same(result, { created: 1, updated: 0, deleted: 0 }, 'created the new one; the stale one was gone already');
  t.ok(calls.includes('DELETE /apis/wgpolicyk8s.io/v1alpha2/namespaces/gone/policyreports/mesh-admission'), 'the delete was tried');
});

t.test('an aborted signal stops before the next call, with the signal\'s reason', async (t) => {
  const stop = new AbortController();
  stop.abort(new Error('shutting down'));
  await t.rejects(writeReports(kubeConfig, 'policyreport', shopReports, stop.signal), { message: 'shutting down' });
  t.same(calls, [], 'no call made');
});
