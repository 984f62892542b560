/**
 * Audit findings as policy reports, the objects Kyverno, Kubewarden and Policy Reporter read:
 * one report per namespace for the namespaced kinds and one cluster report for the
 * cluster-scoped ones, in either of two formats (the wgpolicyk8s.io v1alpha2 PolicyReport and
 * its successor, OpenReports' openreports.io v1alpha1 Report; the same fields). Pure: writing
 * them is src/kube/report-writer.ts.
 */
import { REGISTERED_RULES } from '../policies/registry.ts';
import type { Finding } from './run-check.ts';

export type ReportFormat = 'policyreport' | 'openreports';
export const REPORT_FORMATS: readonly ReportFormat[] = ['policyreport', 'openreports'];

/** The API each format is written to: group, version and the kinds and resources of both scopes. */
export const REPORT_APIS: Readonly<Record<ReportFormat, { group: string; version: string; namespaced: ReportKind; cluster: ReportKind }>> = {
  policyreport: {
    group: 'wgpolicyk8s.io',
    version: 'v1alpha2',
    namespaced: { kind: 'PolicyReport', plural: 'policyreports' },
    cluster: { kind: 'ClusterPolicyReport', plural: 'clusterpolicyreports' },
  },
  openreports: {
    group: 'openreports.io',
    version: 'v1alpha1',
    namespaced: { kind: 'Report', plural: 'reports' },
    cluster: { kind: 'ClusterReport', plural: 'clusterreports' },
  },
};

export interface ReportKind {
  readonly kind: string;
  readonly plural: string;
}

/** Every report this project writes carries this label, so it replaces its own and no one else's. */
export const REPORT_OWNER_LABEL = 'app.kubernetes.io/managed-by';
export const REPORT_OWNER = 'mesh-admission';
/** One report per namespace (and one cluster report), so a fixed name. */
export const REPORT_NAME = 'mesh-admission';

/** A finding with what a report names the object by. */
export interface ReportedFinding extends Finding {
  readonly apiVersion: string;
  readonly uid: string | undefined;
}

export interface PolicyReportObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { name: string; namespace?: string; labels: Record<string, string> };
  readonly summary: { pass: number; fail: number; warn: number; error: number; skip: number };
  readonly results: readonly ReportResult[];
  readonly source?: string;
}

export interface ReportResult {
  readonly source: string;
  readonly policy: string;
  readonly rule: string;
  readonly category: string;
  readonly result: 'fail' | 'warn';
  readonly severity: 'high' | 'medium';
  readonly scored: boolean;
  readonly message: string;
  readonly timestamp: { seconds: number; nanos: number };
  readonly resources: readonly { apiVersion: string; kind: string; name: string; namespace?: string; uid?: string }[];
  readonly properties: Readonly<Record<string, string>>;
}

const ISTIO_CODES = new Map(REGISTERED_RULES.map((rule) => [rule.id, rule.istioCodes.join(',')]));

/**
 * The reports of `findings` (read at `now`): each namespace with findings gets one report, the
 * cluster-scoped objects' findings one cluster report. An error-level finding is a `fail`
 * (the webhook denies such objects), a warning a `warn`.
 */
export function buildReports(findings: readonly ReportedFinding[], format: ReportFormat, now: Date): PolicyReportObject[] {
  const api = REPORT_APIS[format];
  const byNamespace = new Map<string, ReportResult[]>();
  const seconds = Math.floor(now.getTime() / 1000);
  for (const finding of findings) {
    const results = byNamespace.get(finding.namespace) ?? [];
    results.push(resultOf(finding, seconds));
    byNamespace.set(finding.namespace, results);
  }
  return [...byNamespace].map(([namespace, results]) => {
    const scope = namespace === '' ? api.cluster : api.namespaced;
    const fail = results.filter((r) => r.result === 'fail').length;
    return {
      apiVersion: `${api.group}/${api.version}`,
      kind: scope.kind,
      metadata: { name: REPORT_NAME, ...(namespace === '' ? {} : { namespace }), labels: { [REPORT_OWNER_LABEL]: REPORT_OWNER } },
      ...(format === 'openreports' ? { source: REPORT_OWNER } : {}),
      summary: { pass: 0, fail, warn: results.length - fail, error: 0, skip: 0 },
      results,
    };
  });
}

function resultOf(finding: ReportedFinding, seconds: number): ReportResult {
  const error = finding.severity === 'error';
  const istio = ISTIO_CODES.get(finding.rule);
  return {
    source: REPORT_OWNER,
    policy: REPORT_OWNER,
    rule: finding.rule,
    category: 'Istio',
    result: error ? 'fail' : 'warn',
    severity: error ? 'high' : 'medium',
    scored: true,
    message: finding.message,
    timestamp: { seconds, nanos: 0 },
    resources: [
      {
        apiVersion: finding.apiVersion,
        kind: finding.kind,
        name: finding.name,
        ...(finding.namespace === '' ? {} : { namespace: finding.namespace }),
        ...(finding.uid === undefined ? {} : { uid: finding.uid }),
      },
    ],
    properties: { field: finding.field, ...(istio ? { istioCodes: istio } : {}) },
  };
}
