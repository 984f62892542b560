/**
 * `mesh-admission audit`: the webhook's rules over the live cluster's Namespaces and Services.
 * Each kind is read in pages and judged page by page, so memory holds one page and the
 * findings, however large the cluster.
 */
import { parseArgs } from 'node:util';
import type { KubernetesObject } from '@kubernetes/client-node';
import { hasErrors, runCheck, type CheckResult, type Finding } from '../check/run-check.ts';
import { formatJson, formatText } from '../check/format.ts';
import type { SourcedObject } from '../check/load-manifests.ts';
import type { KubeObject } from '../policies/types.ts';
import { clusterReadError, loadKubeConfig } from '../kube/kubeconfig.ts';
import { CLUSTER_READER_ROLE } from '../kube/api-refusal.ts';
import { listPageFetcher } from '../kube/list-request.ts';
import { OPT_OUT_LABEL } from '../policies/webhook-scope.ts';
import { DEFAULT_PAGE_SIZE, isValidPageSize, listPages, type ListPage, type PageFetcher } from '../kube/paginated-list.ts';
import { loadConfig } from './load-config.ts';
import { progressLine } from './progress-line.ts';
import { UsageError, type CommandIO } from './io.ts';

export const AUDIT_USAGE = `Usage: mesh-admission audit [--kubeconfig FILE] [--context NAME] [-o text|json] [--config FILE] [--webhook-namespace NS] [--page-size N]

Applies the webhook's rules to the Services and Namespaces already in the cluster, e.g. before
turning enforcement on. Objects are listed and checked one page at a time; on a terminal,
stderr shows how many have been read and the findings so far. What the webhook never sees is
skipped: Kubernetes' own namespaces, the webhook's namespace, the config's exemptNamespaces and
objects labelled ${OPT_OUT_LABEL}=true.

      --kubeconfig FILE     the kubeconfig (default: KUBECONFIG, ~/.kube/config, or the
                            in-cluster service account)
      --context NAME        kubeconfig context to use (default: the current one)
  -o, --output FORMAT       text (default) or json, as \`check\`
      --config FILE         the webhook's config file (exemptions, hint tables)
      --webhook-namespace NS
                            the namespace the webhook runs in (the chart's release namespace;
                            default MESH_ADMISSION_NAMESPACE, else mesh-admission)
      --page-size N         objects per list call (default ${DEFAULT_PAGE_SIZE})

Reading needs list on namespaces and services in all namespaces: the chart's ClusterRole
${CLUSTER_READER_ROLE} grants it.

Exit status: 0 no errors, 1 error-level violations, 2 the cluster could not be read.
`;

interface AuditedKind {
  readonly kind: 'Namespace' | 'Service';
  readonly fetchPage: PageFetcher<KubernetesObject>;
}

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
  const config = await loadConfig({ config: values.config, namespace: values['webhook-namespace'] }, io.env);
  const kubeConfig = loadKubeConfig({ context: values.context, kubeconfig: values.kubeconfig, env: io.env });
  const server = kubeConfig.getCurrentCluster()?.server ?? 'the cluster';
  const kinds: readonly AuditedKind[] = [
    { kind: 'Namespace', fetchPage: listPageFetcher(kubeConfig, '/api/v1/namespaces') },
    { kind: 'Service', fetchPage: listPageFetcher(kubeConfig, '/api/v1/services') },
  ];

  const findings: Finding[] = [];
  let checkedObjects = 0;
  let read = 0;
  const progress = io.stderrIsTTY ? progressLine(io.stderr) : undefined;
  try {
    for (const { kind, fetchPage } of kinds) {
      for await (const page of pagesOrKubeConfigError(kind, fetchPage, pageSize, server)) {
        const objects = (page.items ?? []).map((item): SourcedObject => ({ object: { apiVersion: 'v1', kind, ...item } as KubeObject, file: '', line: 0, documentIndex: 0 }));
        const result = runCheck(objects, config, { fix: false });
        findings.push(...result.findings);
        checkedObjects += result.checkedObjects;
        read += objects.length;
        progress?.show(`audit: ${read} objects read, ${findings.length} ${findings.length === 1 ? 'finding' : 'findings'} so far`);
      }
    }
  } finally {
    progress?.clear();
  }

  // Without --fix nothing is rewritten: the report needs only the findings and the count.
  const result: CheckResult = { findings, objects: [], fixes: [], checkedObjects };
  io.stdout(values.output === 'json' ? formatJson(result) : formatText(result));
  return hasErrors(result) ? 1 : 0;
}

/** The pages of one kind; a failed list call becomes "the cluster could not be read" (exit 2). */
async function* pagesOrKubeConfigError(kind: string, fetchPage: PageFetcher<KubernetesObject>, pageSize: number, server: string): AsyncGenerator<ListPage<KubernetesObject>> {
  try {
    yield* listPages(fetchPage, { pageSize, what: `listing ${kind}s` });
  } catch (error) {
    throw clusterReadError(error, `list ${kind}s`, server);
  }
}
