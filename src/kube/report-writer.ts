/**
 * Writes the audit's policy reports to the cluster and replaces what an earlier audit wrote:
 * reports carrying the owner label are updated in place, or deleted when their namespace has
 * no findings any more. Reports without the label (Kyverno's, anyone's) are never touched.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { REPORT_APIS, REPORT_OWNER, REPORT_OWNER_LABEL, type PolicyReportObject, type ReportFormat } from '../check/policy-reports.ts';
import { describeError, httpStatus } from './istio-resources.ts';
import { KubeConfigError } from './kubeconfig.ts';
import { apiRefusal } from './api-refusal.ts';

/**
 * What `writeReports` calls on the report resources (list them cluster-wide, create, replace,
 * delete): the chart's ClusterRoles grant exactly these (test/chart.test.ts checks it).
 */
export const REPORT_WRITER_VERBS: readonly string[] = ['list', 'create', 'update', 'delete'];

/** The name of the chart's ClusterRole for `audit --write-reports`, for the default release (`<fullname>-report-writer`). */
export const REPORT_WRITER_ROLE = 'mesh-admission-report-writer';

/** The RBAC rule that lets a user or the webhook write the reports of `format`. */
export function reportWriterRule(format: ReportFormat): { apiGroups: string[]; resources: string[]; verbs: string[] } {
  const { group, namespaced, cluster } = REPORT_APIS[format];
  return { apiGroups: [group], resources: [namespaced.plural, cluster.plural], verbs: [...REPORT_WRITER_VERBS] };
}

export interface ReportWriteResult {
  readonly created: number;
  readonly updated: number;
  readonly deleted: number;
}

interface StoredReport {
  readonly metadata?: { name?: string; namespace?: string; resourceVersion?: string };
}

/** `signal` stops the writing between two API calls (serve shutting down); it then rejects with the signal's reason. */
export async function writeReports(kubeConfig: KubeConfig, format: ReportFormat, reports: readonly PolicyReportObject[], signal?: AbortSignal): Promise<ReportWriteResult> {
  // Loaded when reports are written, not with `audit`: the generated API client is the whole
  // client library, most of what a cluster command costs in memory (src/kube/client-modules.ts).
  const { CustomObjectsApi } = await import('@kubernetes/client-node');
  const api = kubeConfig.makeApiClient(CustomObjectsApi);
  const { group, version, namespaced, cluster } = REPORT_APIS[format];
  const labelSelector = `${REPORT_OWNER_LABEL}=${REPORT_OWNER}`;
  const what = `${group}/${version} ${namespaced.kind} and ${cluster.kind}`;
  const key = (namespace: string | undefined, name: string | undefined) => `${namespace ?? ''}/${name ?? ''}`;
  const result = { created: 0, updated: 0, deleted: 0 };
  // A 404 while listing means the resource is not served; later, that a report went meanwhile.
  let listing = true;
  try {
    const stored = new Map<string, StoredReport>();
    for (const plural of [namespaced.plural, cluster.plural]) {
      const list = (await retryTooManyRequests(() => api.listClusterCustomObject({ group, version, plural, labelSelector }), signal)) as { items?: StoredReport[] };
      for (const item of list.items ?? []) stored.set(key(item.metadata?.namespace, item.metadata?.name), item);
    }
    listing = false;
    for (const report of reports) {
      const { name, namespace } = report.metadata;
      const plural = namespace === undefined ? cluster.plural : namespaced.plural;
      const existing = stored.get(key(namespace, name));
      stored.delete(key(namespace, name));
      if (existing === undefined) {
        await retryTooManyRequests(() => namespace === undefined
          ? api.createClusterCustomObject({ group, version, plural, body: report })
          : api.createNamespacedCustomObject({ group, version, namespace, plural, body: report }), signal);
        result.created += 1;
      } else {
        // The stored version makes a concurrent writer's change a conflict, not a silent loss.
        const body = { ...report, metadata: { ...report.metadata, resourceVersion: existing.metadata?.resourceVersion } };
        await retryTooManyRequests(() => namespace === undefined
          ? api.replaceClusterCustomObject({ group, version, plural, name, body })
          : api.replaceNamespacedCustomObject({ group, version, namespace, plural, name, body }), signal);
        result.updated += 1;
      }
    }
    for (const stale of stored.values()) {
      const name = stale.metadata?.name ?? '';
      const namespace = stale.metadata?.namespace;
      try {
        await retryTooManyRequests(() => namespace === undefined
          ? api.deleteClusterCustomObject({ group, version, plural: cluster.plural, name })
          : api.deleteNamespacedCustomObject({ group, version, namespace, plural: namespaced.plural, name }), signal);
        result.deleted += 1;
      } catch (error) {
        // Already deleted by another writer (a second webhook replica): what this run wanted.
        if (httpStatus(error) !== 404) throw error;
      }
    }
  } catch (error) {
    if (signal?.aborted && error === signal.reason) throw error;
    const status = httpStatus(error);
    const refusal = status === 403 ? apiRefusal(error) : undefined;
    const refused = refusal?.verb === undefined ? '' : ` (refused to ${refusal.verb} ${refusal.resource ?? 'them'}${refusal.user === undefined ? '' : ` for User "${refusal.user}"`})`;
    const hint = status === 404 && listing
      ? ': the cluster does not serve them; install their CRDs first'
      : status === 404 || status === 409
        ? ': another writer (another webhook replica?) changed a report meanwhile; the next run writes it again'
        : status === 403
        ? `${refused}; writing them needs ${REPORT_WRITER_VERBS.join(', ')} on ${namespaced.plural} and ${cluster.plural} (API group ${group}) in all namespaces: the Helm chart's ClusterRole ${REPORT_WRITER_ROLE} (<release fullname>-report-writer) grants them, and its reports.interval grants them to the webhook`
        : '';
    throw new KubeConfigError(`cannot write ${what} reports to ${kubeConfig.getCurrentCluster()?.server ?? 'the cluster'}: ${describeError(error)}${hint}`);
  }
  return result;
}

/**
 * The API server answers 429 while a new CRD's storage is still initializing, asking the
 * client to retry (kubectl does); client-node does not, so the reads and writes retry a few times.
 */
async function retryTooManyRequests<T>(write: () => Promise<T>, signal: AbortSignal | undefined, attempts = 10, delayMs = 500): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    try {
      return await write();
    } catch (error) {
      if (httpStatus(error) !== 429 || attempt >= attempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}
