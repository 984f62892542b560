/**
 * `mesh-admission audit`: the webhook's rules over every kind the registry validates, as the
 * live cluster stores them, plus the rules only stored objects can break (a namespace that
 * missed its injection label), printed like `check` and optionally written as policy reports.
 * The reading and judging is src/kube/cluster-audit.ts, which `serve --report-interval` runs too.
 */
import { parseArgs } from 'node:util';
import { hasErrors, type CheckResult } from '../check/run-check.ts';
import { buildReports, REPORT_APIS, REPORT_FORMATS, type ReportFormat } from '../check/policy-reports.ts';
import { jsonReportChunks, textReportChunks } from '../check/format.ts';
import { loadKubeConfig } from '../kube/kubeconfig.ts';
import { CLUSTER_READER_ROLE } from '../kube/api-refusal.ts';
import { OPT_OUT_LABEL } from '../policies/webhook-scope.ts';
import { DEFAULT_PAGE_SIZE, isValidPageSize } from '../kube/paginated-list.ts';
import { auditCluster, type ClusterAudit } from '../kube/cluster-audit.ts';
import { REPORT_WRITER_ROLE, REPORT_WRITER_VERBS, writeReports } from '../kube/report-writer.ts';
import { VALIDATED_MODULES } from '../policies/registry.ts';
import { loadConfig } from './load-config.ts';
import { progressLine } from './progress-line.ts';
import { UsageError, type CommandIO } from './io.ts';

export const AUDIT_USAGE = `Usage: mesh-admission audit [--kubeconfig FILE] [--context NAME] [-o text|json] [--config FILE] [--webhook-namespace NS]
                           [--page-size N] [--write-reports [--report-format policyreport|openreports]]

Applies the webhook's rules to the objects already in the cluster, e.g. before turning
enforcement on, or after an outage to find what slipped through: every kind the webhook
validates (${VALIDATED_MODULES.map((module) => `${module.kind.kind}s`).join(', ')}; Istio's kinds when their
CRDs are installed), and Namespaces lacking the injection label the webhook would have
added (namespace-not-injected). Objects are listed and checked one page at a time; on a
terminal, stderr shows how many have been read and the findings so far. What the webhook
never sees is skipped: Kubernetes' own namespaces, the webhook's namespace, the config's
exemptNamespaces and objects labelled ${OPT_OUT_LABEL}=true.

      --kubeconfig FILE     the kubeconfig (default: KUBECONFIG, ~/.kube/config, or the
                            in-cluster service account)
      --context NAME        kubeconfig context to use (default: the current one)
  -o, --output FORMAT       text (default) or json, as \`check\`
      --config FILE         the webhook's config file (exemptions, hint tables, injection)
      --webhook-namespace NS
                            the namespace the webhook runs in (the chart's release namespace;
                            default MESH_ADMISSION_NAMESPACE, else mesh-admission)
      --page-size N         objects per list call (default ${DEFAULT_PAGE_SIZE})
      --write-reports       also write the findings to the cluster as policy reports: one
                            per namespace, one cluster report for Namespaces; replaces the
                            reports an earlier audit wrote (label
                            app.kubernetes.io/managed-by=mesh-admission), deletes stale ones
      --report-format F     policyreport (default): wgpolicyk8s.io/v1alpha2 PolicyReport and
                            ClusterPolicyReport; openreports: openreports.io/v1alpha1 Report
                            and ClusterReport

Reading needs list on namespaces and services in all namespaces: the chart's ClusterRole
${CLUSTER_READER_ROLE} grants it. --write-reports also needs ${REPORT_WRITER_VERBS.join(', ')} on the
reports: the chart's ClusterRole ${REPORT_WRITER_ROLE} grants that, for both formats.

Exit status: 0 no errors, 1 error-level violations, 2 the cluster could not be read.
`;


export async function auditCommand(argv: readonly string[], io: CommandIO): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      kubeconfig: { type: 'string' },
      context: { type: 'string' },
      'webhook-namespace': { type: 'string' },
      output: { type: 'string', short: 'o', default: 'text' },
      config: { type: 'string' },
      'page-size': { type: 'string', default: String(DEFAULT_PAGE_SIZE) },
      'write-reports': { type: 'boolean', default: false },
      'report-format': { type: 'string', default: 'policyreport' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    io.stdout(AUDIT_USAGE);
    return 0;
  }
  if (values.output !== 'text' && values.output !== 'json') throw new UsageError(`unknown output format "${values.output}"; use text or json`);
  const pageSize = Number(values['page-size']);
  if (!/^\d+$/.test(values['page-size']) || !isValidPageSize(pageSize)) throw new UsageError(`--page-size must be a positive integer, not "${values['page-size']}"`);
  const reportFormat = values['report-format'] as ReportFormat;
  if (!REPORT_FORMATS.includes(reportFormat)) throw new UsageError(`unknown report format "${values['report-format']}"; use ${REPORT_FORMATS.join(' or ')}`);
  const config = await loadConfig({ config: values.config, namespace: values['webhook-namespace'] }, io.env);
  const kubeConfig = loadKubeConfig({ context: values.context, kubeconfig: values.kubeconfig, env: io.env });
  const progress = io.stderrIsTTY ? progressLine(io.stderr) : undefined;
  let audit: ClusterAudit;
  try {
    audit = await auditCluster(kubeConfig, config, {
      pageSize,
      onPage: (read, findings) => progress?.show(`audit: ${read} objects read, ${findings} ${findings === 1 ? 'finding' : 'findings'} so far`),
    });
  } finally {
    progress?.clear();
  }
  const { findings, checkedObjects } = audit;

  if (values['write-reports']) {
    const reports = buildReports(findings, reportFormat, new Date());
    const written = await writeReports(kubeConfig, reportFormat, reports);
    const { group, version } = REPORT_APIS[reportFormat];
    io.stderr(`audit: ${group}/${version} reports: ${written.created} created, ${written.updated} updated, ${written.deleted} deleted\n`);
  }

  // Without --fix nothing is rewritten: the report needs only the findings and the count.
  const result: CheckResult = { findings, objects: [], fixes: [], checkedObjects };
  // Written piece by piece: stdout on a pipe or file is written synchronously, so no more
  // than one piece of a large cluster's report is ever held.
  for (const chunk of values.output === 'json' ? jsonReportChunks(result) : textReportChunks(result)) io.stdout(chunk);
  return hasErrors(result) ? 1 : 0;
}
