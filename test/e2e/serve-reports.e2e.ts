// `serve --report-interval` against a real kube-apiserver + etcd: before the report CRDs exist
// each run is a warning that says so and serve keeps serving; once they are installed the next
// run writes the reports (the same as `audit --write-reports`), and later runs keep them
// current as the cluster changes. `--report-format openreports` writes OpenReports instead.
// Then the chart's RBAC, as `helm template` renders it: serve as the chart's ServiceAccount is
// told which write was refused until the chart's reports role is bound, and `audit
// --write-reports` works for a user bound to the chart's audit and report-writer roles.
// Run: E2E_REQUIRED=1 PATH=$PWD/node_modules/.bin:$PATH tap --timeout 600 test/e2e/serve-reports.e2e.ts
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { serviceAccountKubeconfig } from './chart-replica.ts';
import { binariesOrSkip, startControlPlane } from './control-plane.ts';
import { openReportsCrds, POLICY_REPORT_CRDS } from './report-crds.ts';
import { runCliWithStatus, startWebhook } from './webhook-server.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function execFileText(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => (error ? reject(new Error(`${file} ${args.join(' ')}: ${stderr}`)) : resolve(stdout)));
  });
}

type RbacObject = { kind: string; metadata: { name: string } };

/** The chart's RBAC objects for release mesh-admission in mesh-system, with these values set. */
async function chartRbac(sets: Record<string, string>): Promise<RbacObject[]> {
  const helm = (await execFileText('bash', [path.join(REPO, 'scripts', 'helm.sh')])).trim().split('\n').pop()!;
  const args = ['template', 'mesh-admission', path.join(REPO, 'charts', 'mesh-admission'), '--namespace', 'mesh-system', '--show-only', 'templates/rbac.yaml', '--set', 'image.repository=registry.example/mesh-admission'];
  for (const [key, value] of Object.entries(sets)) args.push('--set', `${key}=${value}`);
  return parseAllDocuments(await execFileText(helm, args)).map((doc) => doc.toJS() as RbacObject).filter((object) => object !== null);
}

interface Report {
  metadata: { name: string; namespace?: string };
  results: { rule: string; resources: { kind: string; name: string }[] }[];
}

/** Polls `probe` until it gives a value, for at most timeoutMs. */
async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

const binDir = await binariesOrSkip(t);
if (binDir) {
  const cp = await startControlPlane({ binDir, log: (line) => t.comment(line) });
  t.teardown(() => cp.stop());
  const env = { KUBECONFIG: cp.kubeconfigPath };
  const apply = (objects: object[]) => cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }) });
  const installCrds = async (crds: readonly object[]) => {
    await apply([...crds]);
    const names = crds.map((crd) => `crd/${(crd as { metadata: { name: string } }).metadata.name}`);
    await cp.kubectl(['wait', '--for=condition=Established', '--timeout=60s', ...names]);
  };
  /** The reports of a resource, or undefined while the API server does not serve it. */
  const reports = async (resource: string): Promise<Report[] | undefined> => {
    const got = await cp.kubectl(['get', resource, '-A', '-o', 'json'], { allowFailure: true });
    return got.code === 0 ? (JSON.parse(got.stdout) as { items: Report[] }).items : undefined;
  };

  await apply([
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'istio-injection': 'enabled' } } },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop' }, spec: { clusterIP: 'None', selector: { app: 'web' }, ports: [{ name: 'web', port: 80 }] } },
  ]);

  t.test('policy reports: a warning while the CRDs are missing, written once they exist, kept current', async (t) => {
    const webhook = await startWebhook(['--report-interval', '1s'], { env });
    t.teardown(() => webhook.stop());
    const missing = await webhook.waitForLog((line) => line['level'] === 40 && String(line['msg']).startsWith('reports not written'));
    t.match(missing['msg'], /cannot write wgpolicyk8s\.io\/v1alpha2 PolicyReport and ClusterPolicyReport reports to .*the cluster does not serve them; install their CRDs first/, 'the warning says which reports and why');
    t.match(missing, { api: 'wgpolicyk8s.io/v1alpha2', nextInMs: 1000 });
    t.notOk(webhook.logs.some((line) => (line['level'] as number) >= 50), 'a failed run is no error: serve goes on');

    await installCrds(POLICY_REPORT_CRDS);
    const shop = await until('the PolicyReport of shop', async () => (await reports('policyreports.wgpolicyk8s.io'))?.find((r) => r.metadata.namespace === 'shop'));
    t.equal(shop.metadata.name, 'mesh-admission');
    t.match(shop.results, [{ rule: 'port-protocol', resources: [{ kind: 'Service', name: 'web' }] }], 'the audit\'s finding');
    const cluster = await until('the ClusterPolicyReport', async () => (await reports('clusterpolicyreports.wgpolicyk8s.io'))?.[0]);
    t.ok(cluster.results.some((r) => r.rule === 'namespace-not-injected' && r.resources[0]?.name === 'default'), 'the cluster report for Namespaces');
    const written = await webhook.waitForLog((line) => String(line['msg']).startsWith('reports written'));
    t.match(written, { level: 30, api: 'wgpolicyk8s.io/v1alpha2', objects: Number, findings: Number, reports: { created: Number, updated: Number, deleted: Number }, durationMs: Number }, 'one line per run with its counts and duration');
    t.ok((written['objects'] as number) >= 2 && (written['findings'] as number) >= 2, 'the Service and Namespaces were judged');

    // The next runs follow the cluster: the fixed Service leaves no finding in shop, so its report goes.
    await cp.kubectl(['patch', 'service', 'web', '-n', 'shop', '--type=json', '-p', JSON.stringify([{ op: 'replace', path: '/spec/ports/0/name', value: 'http-web' }])]);
    await until('the shop report deleted', async () => ((await reports('policyreports.wgpolicyk8s.io'))?.some((r) => r.metadata.namespace === 'shop') ? undefined : true));
    await webhook.waitForLog((line) => (line['reports'] as { deleted?: number } | undefined)?.deleted === 1);
    t.pass('a later run deleted the report with nothing left to report');
  });

  t.test('--report-format openreports writes Report and ClusterReport', async (t) => {
    await cp.kubectl(['patch', 'service', 'web', '-n', 'shop', '--type=json', '-p', JSON.stringify([{ op: 'replace', path: '/spec/ports/0/name', value: 'web' }])]);
    await installCrds(await openReportsCrds());
    const webhook = await startWebhook(['--report-interval', '1s', '--report-format', 'openreports'], { env });
    t.teardown(() => webhook.stop());
    const shop = await until('the Report of shop', async () => (await reports('reports.openreports.io'))?.find((r) => r.metadata.namespace === 'shop'));
    t.match(shop.results, [{ rule: 'port-protocol', resources: [{ kind: 'Service', name: 'web' }] }]);
    await until('the ClusterReport', async () => (await reports('clusterreports.openreports.io'))?.[0]);
    const written = await webhook.waitForLog((line) => String(line['msg']).startsWith('reports written'));
    t.equal(written['api'], 'openreports.io/v1alpha1');
    await webhook.stop();
    t.match(webhook.logs.at(-1), { msg: 'stopped' }, 'shut down cleanly with the schedule running');
  });

  t.test('the chart\'s RBAC: serve as its ServiceAccount is told which write is refused, then writes with the reports role', async (t) => {
    const work = await mkdtemp(path.join(os.tmpdir(), 'mesh-admission-e2e-reports-rbac-'));
    t.teardown(() => rm(work, { recursive: true, force: true }));
    const rbac = await chartRbac({ 'reports.interval': '1s' });
    const pick = (kind: string, name: string) => {
      const found = rbac.find((object) => object.kind === kind && object.metadata.name === name);
      if (!found) throw new Error(`the chart renders no ${kind} ${name}`);
      return found;
    };
    await cp.kubectl(['create', 'namespace', 'mesh-system']);
    await cp.kubectl(['create', 'serviceaccount', 'mesh-admission', '-n', 'mesh-system']);
    const kubeconfig = await serviceAccountKubeconfig(cp, 'mesh-system', 'mesh-admission', path.join(work, 'kubeconfig'));
    // Reads only: the chart's audit role, bound by hand.
    await apply([pick('ClusterRole', 'mesh-admission-audit')]);
    await cp.kubectl(['create', 'clusterrolebinding', 'reads-only', '--clusterrole=mesh-admission-audit', '--serviceaccount=mesh-system:mesh-admission']);

    const webhook = await startWebhook(['--report-interval', '1s'], { env: { KUBECONFIG: kubeconfig } });
    t.teardown(() => webhook.stop());
    const refused = await webhook.waitForLog((line) => line['level'] === 40 && /refused to list policyreports/.test(String(line['msg'])));
    t.match(refused['msg'], /cannot write wgpolicyk8s\.io\/v1alpha2 PolicyReport and ClusterPolicyReport reports to https:\/\/127\.0\.0\.1:\d+: HTTP 403 \(refused to list policyreports for User "system:serviceaccount:mesh-system:mesh-admission"\); writing them needs list, create, update, delete on policyreports and clusterpolicyreports \(API group wgpolicyk8s\.io\) in all namespaces: the Helm chart's ClusterRole mesh-admission-report-writer/);

    // The chart's reports role alone (the hand-made binding gone) is enough for every run.
    await apply([pick('ClusterRole', 'mesh-admission-reports'), pick('ClusterRoleBinding', 'mesh-admission-reports')]);
    await cp.kubectl(['delete', 'clusterrolebinding', 'reads-only']);
    const since = webhook.logs.length;
    await until('a run with the chart\'s reports role', async () => (webhook.logs.slice(since).some((line) => String(line['msg']).startsWith('reports written')) ? true : undefined));
    t.ok(await until('the shop PolicyReport', async () => (await reports('policyreports.wgpolicyk8s.io'))?.find((r) => r.metadata.namespace === 'shop')));
  });

  t.test('audit --write-reports as a user bound to the chart\'s audit and report-writer roles', async (t) => {
    const work = await mkdtemp(path.join(os.tmpdir(), 'mesh-admission-e2e-report-writer-'));
    t.teardown(() => rm(work, { recursive: true, force: true }));
    const rbac = await chartRbac({});
    const writer = rbac.find((object) => object.kind === 'ClusterRole' && object.metadata.name === 'mesh-admission-report-writer');
    t.ok(writer, 'the chart renders the report-writer role by default');
    await apply([writer!]);
    await cp.kubectl(['create', 'serviceaccount', 'auditor', '-n', 'default']);
    const kubeconfig = await serviceAccountKubeconfig(cp, 'default', 'auditor', path.join(work, 'kubeconfig'));
    await cp.kubectl(['create', 'clusterrolebinding', 'auditor-reads', '--clusterrole=mesh-admission-audit', '--serviceaccount=default:auditor']);
    const readsOnly = await runCliWithStatus(['audit', '--write-reports', '--report-format', 'openreports', '--kubeconfig', kubeconfig]);
    t.equal(readsOnly.code, 2, 'reading works, writing is refused');
    t.match(readsOnly.stderr, /refused to list reports for User "system:serviceaccount:default:auditor"\); writing them needs list, create, update, delete on reports and clusterreports \(API group openreports\.io\).*ClusterRole mesh-admission-report-writer/);
    await cp.kubectl(['create', 'clusterrolebinding', 'auditor-writes', '--clusterrole=mesh-admission-report-writer', '--serviceaccount=default:auditor']);
    for (const format of ['openreports', 'policyreport']) {
      const written = await runCliWithStatus(['audit', '--write-reports', '--report-format', format, '--kubeconfig', kubeconfig]);
      t.equal(written.code, 1, `${format}: the findings, written: ${written.stderr}`);
      t.match(written.stderr, /reports: \d+ created, \d+ updated, \d+ deleted/);
    }
  });
}
