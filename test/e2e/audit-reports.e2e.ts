// `audit` against a real kube-apiserver + etcd with Istio's CRDs and both report CRDs installed:
// it judges every registered kind (Services, Namespaces, Gateways, VirtualServices, the last two
// against the cluster's Services and Gateways), reports the namespaces that missed their
// injection label, and `--write-reports` writes PolicyReports or OpenReports that are read
// back here, then replaced and pruned by the next audit. Reports it does not own stay.
// Run: E2E_REQUIRED=1 PATH=$PWD/node_modules/.bin:$PATH tap --timeout 600 test/e2e/audit-reports.e2e.ts
import t from 'tap';
import { binariesOrSkip, startControlPlane } from './control-plane.ts';
import { ISTIO_CRD_NAMES, istioCrdsManifest } from './istio-crds.ts';
import { openReportsCrds, POLICY_REPORT_CRDS, REPORT_CRD_NAMES } from './report-crds.ts';
import { runCliWithStatus } from './webhook-server.ts';

interface Report {
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; uid: string };
  summary: { fail: number; warn: number };
  results: { rule: string; result: string; severity: string; source: string; resources: { kind: string; name: string; namespace?: string; uid?: string }[]; properties: Record<string, string> }[];
}

const binDir = await binariesOrSkip(t);
if (binDir) {
  const cp = await startControlPlane({ binDir, log: (line) => t.comment(line) });
  t.teardown(() => cp.stop());
  const crds = [...POLICY_REPORT_CRDS, ...(await openReportsCrds())];
  await cp.kubectl(['apply', '-f', '-'], { input: istioCrdsManifest() });
  await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: crds }) });
  await cp.kubectl(['wait', '--for=condition=Established', '--timeout=60s', ...ISTIO_CRD_NAMES, ...REPORT_CRD_NAMES]);
  const env = { KUBECONFIG: cp.kubeconfigPath };
  const apply = (objects: object[]) => cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }) });
  const reports = async (resource: string): Promise<Report[]> => JSON.parse((await cp.kubectl(['get', resource, '-A', '-o', 'json'])).stdout).items;

  await apply([
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'istio-injection': 'enabled' } } },
    // Created without the webhook: no injection label.
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'legacy' } },
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'opted-out', labels: { 'istio-injection': 'disabled' } } },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop' }, spec: { clusterIP: 'None', selector: { app: 'web' }, ports: [{ name: 'web', port: 80 }] } },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'api', namespace: 'legacy' }, spec: { clusterIP: 'None', selector: { app: 'api' }, ports: [{ name: 'http', port: 8080 }] } },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'Gateway',
      metadata: { name: 'public', namespace: 'shop' },
      spec: { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: 443, name: 'https', protocol: 'HTTPS' }, hosts: ['*'] }] },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'routes', namespace: 'shop' },
      spec: { hosts: ['shop.example.com'], gateways: ['public', 'missing'], http: [{ route: [{ destination: { host: 'api.legacy.svc.cluster.local', port: { number: 8080 } } }, { destination: { host: 'nowhere' } }] }] },
    },
  ]);
  // Someone else's report in the same namespace: never touched.
  await apply([{ apiVersion: 'wgpolicyk8s.io/v1alpha2', kind: 'PolicyReport', metadata: { name: 'other-engine', namespace: 'shop' }, results: [{ policy: 'x', result: 'pass' }] }]);

  t.test('audit judges every registered kind and the namespaces that missed injection', async (t) => {
    const run = await runCliWithStatus(['audit', '-o', 'json'], env);
    t.equal(run.code, 1, run.stderr);
    const found = (JSON.parse(run.stdout).violations as { kind: string; namespace: string; name: string; rule: string }[]).map((v) => `${v.rule} ${v.kind} ${v.namespace}/${v.name}`);
    t.ok(found.includes('port-protocol Service shop/web'), 'Service rules');
    t.ok(found.includes('gateway-tls-missing Gateway shop/public'), 'Gateway structural rules');
    t.ok(found.includes('gateway-port-not-exposed Gateway shop/public'), 'Gateway rules against the cluster (no Service serves it)');
    t.ok(found.includes('virtualservice-gateway-not-found VirtualService shop/routes'), 'VirtualService rules against the cluster');
    t.ok(found.includes('virtualservice-destination-not-found VirtualService shop/routes'), '... a destination that no Service has');
    t.notOk(found.some((f) => f.startsWith('virtualservice-port-not-found')), 'api.legacy:8080 is found in the cluster');
    const uninjected = found.filter((f) => f.startsWith('namespace-not-injected')).sort();
    t.same(uninjected, ['namespace-not-injected Namespace /default', 'namespace-not-injected Namespace /legacy'], 'IST0102 for the unlabelled namespaces; opt-outs and system namespaces are not reported');
  });

  t.test('--write-reports writes a PolicyReport per namespace and a ClusterPolicyReport for Namespaces', async (t) => {
    const run = await runCliWithStatus(['audit', '--write-reports'], env);
    t.equal(run.code, 1, run.stderr);
    t.match(run.stderr, /wgpolicyk8s\.io\/v1alpha2 reports: 2 created, 0 updated, 0 deleted/);
    const namespaced = (await reports('policyreports.wgpolicyk8s.io')).filter((r) => r.metadata.labels?.['app.kubernetes.io/managed-by'] === 'mesh-admission');
    t.same(namespaced.map((r) => `${r.metadata.namespace}/${r.metadata.name}`), ['shop/mesh-admission']);
    const shop = namespaced[0]!;
    const web = shop.results.find((r) => r.rule === 'port-protocol');
    t.match(web, { result: 'fail', severity: 'high', source: 'mesh-admission', properties: { field: 'spec.ports[0].name', istioCodes: 'IST0118' } });
    t.match(web?.resources, [{ kind: 'Service', name: 'web', namespace: 'shop' }]);
    t.ok(web?.resources[0]?.uid, 'the object is named by uid too');
    t.equal(shop.summary.fail, shop.results.filter((r) => r.result === 'fail').length);
    t.equal(shop.summary.warn, shop.results.filter((r) => r.result === 'warn').length);
    t.ok(shop.summary.warn > 0, 'the traffic warnings');
    const cluster = await reports('clusterpolicyreports.wgpolicyk8s.io');
    t.same(cluster.map((r) => r.metadata.name), ['mesh-admission']);
    t.same(cluster[0]!.results.map((r) => `${r.rule} ${r.resources[0]?.name}`).sort(), ['namespace-not-injected default', 'namespace-not-injected legacy']);
    t.ok((await reports('policyreports.wgpolicyk8s.io')).some((r) => r.metadata.name === 'other-engine'), 'the other engine\'s report is still there');
  });

  t.test('the next audit updates its reports and deletes those with nothing left to report', async (t) => {
    const before = (await reports('clusterpolicyreports.wgpolicyk8s.io'))[0]!;
    await cp.kubectl(['label', 'namespace', 'legacy', 'default', 'istio-injection=enabled']);
    await cp.kubectl(['delete', 'service', 'web', '-n', 'shop']);
    await cp.kubectl(['delete', 'gateway,virtualservice', '--all', '-n', 'shop']);
    const run = await runCliWithStatus(['audit', '--write-reports'], env);
    t.equal(run.code, 0, run.stderr);
    t.match(run.stderr, /reports: 0 created, 0 updated, 2 deleted/);
    t.same(await reports('clusterpolicyreports.wgpolicyk8s.io'), [], 'no Namespace findings left: the cluster report is gone');
    t.same((await reports('policyreports.wgpolicyk8s.io')).map((r) => r.metadata.name), ['other-engine'], 'only the other engine\'s report is left');
    t.ok(before.metadata.uid);

    await cp.kubectl(['label', 'namespace', 'legacy', 'istio-injection-']);
    const again = await runCliWithStatus(['audit', '--write-reports'], env);
    t.match(again.stderr, /reports: 1 created/);
    await cp.kubectl(['label', 'namespace', 'default', 'istio-injection-']);
    const updated = await runCliWithStatus(['audit', '--write-reports'], env);
    t.match(updated.stderr, /reports: 0 created, 1 updated, 0 deleted/);
    t.same((await reports('clusterpolicyreports.wgpolicyk8s.io'))[0]!.results.map((r) => r.resources[0]?.name).sort(), ['default', 'legacy'], 'replaced in place with the new findings');
  });

  t.test('--report-format openreports writes Report and ClusterReport', async (t) => {
    await apply([{ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop' }, spec: { clusterIP: 'None', selector: { app: 'web' }, ports: [{ name: 'web', port: 80 }] } }]);
    const run = await runCliWithStatus(['audit', '--write-reports', '--report-format', 'openreports'], env);
    t.equal(run.code, 1, run.stderr);
    t.match(run.stderr, /openreports\.io\/v1alpha1 reports: 2 created/);
    const namespaced = await reports('reports.openreports.io');
    t.same(namespaced.map((r) => `${r.kind} ${r.metadata.namespace}/${r.metadata.name}`), ['Report shop/mesh-admission']);
    t.match(namespaced[0]!.results, [{ rule: 'port-protocol', result: 'fail', resources: [{ kind: 'Service', name: 'web' }] }]);
    const cluster = await reports('clusterreports.openreports.io');
    t.same(cluster.map((r) => r.results.map((x) => x.resources[0]?.name).sort()), [['default', 'legacy']]);
    t.same((await reports('policyreports.wgpolicyk8s.io')).filter((r) => r.metadata.name === 'mesh-admission').length, 0, 'the other format is left alone');
  });

  t.test('an unknown report format is a usage error', async (t) => {
    const run = await runCliWithStatus(['audit', '--write-reports', '--report-format', 'csv'], env);
    t.equal(run.code, 2);
    t.match(run.stderr, /unknown report format "csv"; use policyreport or openreports/);
  });
}
