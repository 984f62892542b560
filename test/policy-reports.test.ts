// Findings as policy reports: grouping by namespace and scope, the two formats, and the fields
// report readers filter on. test/e2e/audit-reports.e2e.ts writes them to a real API server.
import t from 'tap';
import { buildReports, type ReportedFinding } from '../src/check/policy-reports.ts';

function finding(kind: string, namespace: string, name: string, rule: string, severity: 'error' | 'warning'): ReportedFinding {
  return { kind, namespace, name, rule, severity, field: 'spec', message: `${rule} on ${name}`, file: '', line: 0, apiVersion: kind === 'Gateway' ? 'networking.istio.io/v1' : 'v1', uid: `uid-${name}` };
}

const findings = [
  finding('Service', 'shop', 'web', 'port-protocol', 'error'),
  finding('Gateway', 'shop', 'public', 'gateway-port-not-exposed', 'warning'),
  finding('Service', 'team', 'api', 'port-name-duplicate', 'error'),
  finding('Namespace', '', 'legacy', 'namespace-not-injected', 'warning'),
];
const now = new Date('2026-01-02T03:04:05.678Z');

t.test('one PolicyReport per namespace, one ClusterPolicyReport for cluster-scoped kinds', async (t) => {
  const reports = buildReports(findings, 'policyreport', now);
  t.same(reports.map((r) => [r.apiVersion, r.kind, r.metadata.namespace, r.metadata.name]), [
    ['wgpolicyk8s.io/v1alpha2', 'PolicyReport', 'shop', 'mesh-admission'],
    ['wgpolicyk8s.io/v1alpha2', 'PolicyReport', 'team', 'mesh-admission'],
    ['wgpolicyk8s.io/v1alpha2', 'ClusterPolicyReport', undefined, 'mesh-admission'],
  ]);
  for (const report of reports) t.same(report.metadata.labels, { 'app.kubernetes.io/managed-by': 'mesh-admission' });
  const shop = reports[0]!;
  t.same(shop.summary, { pass: 0, fail: 1, warn: 1, error: 0, skip: 0 });
  t.same(shop.results[0], {
    source: 'mesh-admission',
    policy: 'mesh-admission',
    rule: 'port-protocol',
    category: 'Istio',
    result: 'fail',
    severity: 'high',
    scored: true,
    message: 'port-protocol on web',
    timestamp: { seconds: 1767323045, nanos: 0 },
    resources: [{ apiVersion: 'v1', kind: 'Service', name: 'web', namespace: 'shop', uid: 'uid-web' }],
    properties: { field: 'spec', istioCodes: 'IST0118' },
  });
  t.match(shop.results[1], { result: 'warn', severity: 'medium', properties: { istioCodes: 'IST0162,IST0101' } });
  t.same(reports[1]!.results[0]!.properties, { field: 'spec' }, 'a rule without an Istio code has none');
  t.same(reports[2]!.results[0]!.resources, [{ apiVersion: 'v1', kind: 'Namespace', name: 'legacy', uid: 'uid-legacy' }], 'no namespace on a cluster-scoped object');
  t.notOk('source' in shop, 'v1alpha2 has no top-level source');
});

t.test('openreports: Report and ClusterReport with the same results and a source', async (t) => {
  const reports = buildReports(findings, 'openreports', now);
  t.same(reports.map((r) => [r.apiVersion, r.kind]), [['openreports.io/v1alpha1', 'Report'], ['openreports.io/v1alpha1', 'Report'], ['openreports.io/v1alpha1', 'ClusterReport']]);
  t.equal(reports[0]!.source, 'mesh-admission');
  t.same(reports[0]!.results, buildReports(findings, 'policyreport', now)[0]!.results);
});

t.test('no findings, no reports', async (t) => {
  t.same(buildReports([], 'policyreport', now), []);
});
