/**
 * The errors of the commands that read a cluster: where the kubeconfig was looked for when
 * there is none, and what a refused read says (verb, resource, user, the chart's ClusterRole
 * and the command that binds it). test/e2e/webhook.e2e.ts gets the same refusal from a real
 * API server.
 */
import t from 'tap';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ApiException } from '@kubernetes/client-node';
import { apiRefusal, CLUSTER_READER_ROLE, refusalMessage } from '../src/kube/api-refusal.ts';
import { clusterReadError, KubeConfigError, loadKubeConfig, SERVICE_ACCOUNT_TOKEN_PATH } from '../src/kube/kubeconfig.ts';
import { tempDir } from './helpers/temp-dir.ts';

/** A client error as client-node throws it for a failed list: the Status as the body's text. */
function apiError(code: number, status?: object): ApiException<unknown> {
  return new ApiException(code, 'Unknown API Status Code!', status === undefined ? undefined : JSON.stringify(status), {});
}

const forbiddenServices = apiError(403, {
  kind: 'Status',
  apiVersion: 'v1',
  status: 'Failure',
  message: 'services is forbidden: User "system:serviceaccount:ci:auditor" cannot list resource "services" in API group "" at the cluster scope',
  reason: 'Forbidden',
  details: { kind: 'services' },
  code: 403,
});

t.test('a 403 names the verb, resource, group, scope and user from the API Status', async (t) => {
  t.same(apiRefusal(forbiddenServices), { status: 403, user: 'system:serviceaccount:ci:auditor', verb: 'list', resource: 'services', group: '', scope: 'at the cluster scope' });
  const istio = apiError(403, {
    message: 'gateways.networking.istio.io is forbidden: User "alice" cannot list resource "gateways" in API group "networking.istio.io" at the cluster scope',
    details: { group: 'networking.istio.io', kind: 'gateways' },
  });
  t.match(apiRefusal(istio), { user: 'alice', resource: 'gateways', group: 'networking.istio.io' });
});

t.test('the message: what was refused, for whom, what is needed, the ClusterRole and the binding command', async (t) => {
  const message = refusalMessage(apiRefusal(forbiddenServices)!, 'https://10.0.0.1:6443');
  t.equal(
    message,
    [
      'the API server at https://10.0.0.1:6443 refused to list services (core API group) at the cluster scope for User "system:serviceaccount:ci:auditor" (HTTP 403 Forbidden).',
      'audit and check --cluster need list on namespaces, services (core API group) and list on gateways, virtualservices, serviceentries, destinationrules (API group networking.istio.io), in all namespaces.',
      `The Helm chart installs exactly these as the ClusterRole ${CLUSTER_READER_ROLE} (<release fullname>-audit); bind it:`,
      '  kubectl create clusterrolebinding mesh-admission-audit-ci-auditor --clusterrole=mesh-admission-audit --serviceaccount=ci:auditor',
    ].join('\n'),
  );
  const user = refusalMessage(apiRefusal(apiError(403, { message: 'namespaces is forbidden: User "Alice@Example.com" cannot list resource "namespaces" in API group "" at the cluster scope' }))!, 'https://x');
  t.match(user, /refused to list namespaces \(core API group\) at the cluster scope for User "Alice@Example\.com"/);
  t.match(user, /kubectl create clusterrolebinding mesh-admission-audit-alice-example\.com --clusterrole=mesh-admission-audit --user=Alice@Example\.com$/, 'a valid binding name; the user as the API server knows it');
});

t.test('a 403 without a readable Status still names the ClusterRole; other failures are not refusals', async (t) => {
  const bare = apiRefusal(apiError(403));
  t.same(bare, { status: 403, user: undefined, verb: undefined, resource: undefined, group: '', scope: undefined });
  const message = refusalMessage(bare!, 'https://x');
  t.match(message, /^the API server at https:\/\/x refused to read the cluster \(HTTP 403 Forbidden\)\./);
  t.match(message, /--clusterrole=mesh-admission-audit --user=<your user name>$/);
  t.match(refusalMessage(apiRefusal(apiError(401))!, 'https://x'), /^the API server at https:\/\/x did not accept the kubeconfig's credentials \(HTTP 401 Unauthorized\)/);
  t.equal(apiRefusal(apiError(500, { message: 'etcd down' })), undefined);
  t.equal(apiRefusal(new Error('connect ECONNREFUSED')), undefined);
  t.equal(clusterReadError(apiError(500), 'list Services', 'https://x').message, 'cannot list Services from https://x: HTTP 500');
  t.match(clusterReadError(forbiddenServices, 'list Services', 'https://x').message, /^the API server at https:\/\/x refused to list services/);
});

const kubeconfigYaml = (server: string) =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster: { server } }],
    users: [{ name: 'u', user: { token: 't' } }],
    contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
    'current-context': 'ctx',
  });

t.test('no kubeconfig anywhere: every place looked at, and what to do', async (t) => {
  const home = await tempDir(t, 'no-kubeconfig-');
  const error = t.throws(() => loadKubeConfig({ env: { HOME: home } })) as Error;
  t.ok(error instanceof KubeConfigError);
  t.equal(
    error.message,
    [
      'no kubeconfig found; looked for:',
      '  --kubeconfig: not given',
      '  KUBECONFIG: not set',
      `  ${home}/.kube/config: no such file`,
      `  in-cluster service account: no token at ${SERVICE_ACCOUNT_TOKEN_PATH}`,
      'Pass --kubeconfig FILE, set KUBECONFIG, or create ~/.kube/config (e.g. with your cluster provider\'s "get credentials" command).',
    ].join('\n'),
  );
  const listed = t.throws(() => loadKubeConfig({ env: { HOME: home, KUBECONFIG: `${home}/a:${home}/b` } })) as Error;
  t.match(listed.message, new RegExp(`KUBECONFIG: ${home}/a:${home}/b \\(no such file\\)\n  ${home}/.kube/config: not read while KUBECONFIG is set`));
  t.throws(() => loadKubeConfig({ kubeconfig: path.join(home, 'missing'), env: { HOME: home } }), { name: 'KubeConfigError', message: `cannot read the kubeconfig ${home}/missing (--kubeconfig): no such file` });
});

t.test('the kubeconfig is found as kubectl finds it: --kubeconfig, then KUBECONFIG (merged), then ~/.kube/config', async (t) => {
  const home = await tempDir(t, 'kubeconfig-order-');
  await mkdir(path.join(home, '.kube'));
  await writeFile(path.join(home, '.kube', 'config'), kubeconfigYaml('https://home:6443'));
  await writeFile(path.join(home, 'flag'), kubeconfigYaml('https://flag:6443'));
  await writeFile(path.join(home, 'other'), JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [{ name: 'o', cluster: { server: 'https://other:6443' } }], users: [], contexts: [{ name: 'other', context: { cluster: 'o', user: 'u' } }] }));
  t.equal(loadKubeConfig({ env: { HOME: home } }).getCurrentCluster()?.server, 'https://home:6443');
  t.equal(loadKubeConfig({ kubeconfig: path.join(home, 'flag'), env: { HOME: home, KUBECONFIG: path.join(home, 'other') } }).getCurrentCluster()?.server, 'https://flag:6443');
  const merged = loadKubeConfig({ env: { HOME: home, KUBECONFIG: [path.join(home, 'missing'), path.join(home, 'other'), path.join(home, 'flag')].join(':') } });
  t.equal(merged.getCurrentCluster()?.server, 'https://flag:6443', 'the current context of the file that names one');
  t.equal(loadKubeConfig({ context: 'other', env: { HOME: home, KUBECONFIG: `${home}/other:${home}/flag` } }).getCurrentCluster()?.server, 'https://other:6443');
  await writeFile(path.join(home, 'broken'), 'clusters: [');
  t.throws(() => loadKubeConfig({ kubeconfig: path.join(home, 'broken'), env: {} }), { name: 'KubeConfigError', message: new RegExp(`^cannot read the kubeconfig ${home}/broken: `) });
  t.throws(() => loadKubeConfig({ env: { HOME: home, KUBECONFIG: path.join(home, 'other') } }), { name: 'KubeConfigError', message: /names no current context with a cluster; pass --context NAME \(known: other\)/ });
});
