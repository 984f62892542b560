/**
 * Writes the audit's policy reports to the cluster and replaces what an earlier audit wrote:
 * reports carrying the owner label are updated in place, or deleted when their namespace has
 * no findings any more. Reports without the label (Kyverno's, anyone's) are never touched.
 */
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { REPORT_APIS, REPORT_OWNER, REPORT_OWNER_LABEL, type PolicyReportObject, type ReportFormat } from '../check/policy-reports.ts';
import { describeError, httpStatus } from './istio-resources.ts';
import { KubeConfigError } from './kubeconfig.ts';

export interface ReportWriteResult {
  readonly created: number;
  readonly updated: number;
  readonly deleted: number;
}

interface StoredReport {
  readonly metadata?: { name?: string; namespace?: string; resourceVersion?: string };
}

export async function writeReports(kubeConfig: KubeConfig, format: ReportFormat, reports: readonly PolicyReportObject[]): Promise<ReportWriteResult> {
  const api = kubeConfig.makeApiClient(CustomObjectsApi);
  const { group, version, namespaced, cluster } = REPORT_APIS[format];
  const labelSelector = `${REPORT_OWNER_LABEL}=${REPORT_OWNER}`;
  const what = `${group}/${version} ${namespaced.kind} and ${cluster.kind}`;
  const key = (namespace: string | undefined, name: string | undefined) => `${namespace ?? ''}/${name ?? ''}`;
  const result = { created: 0, updated: 0, deleted: 0 };
  try {
    const stored = new Map<string, StoredReport>();
    for (const plural of [namespaced.plural, cluster.plural]) {
      const list = (await retryTooManyRequests(() => api.listClusterCustomObject({ group, version, plural, labelSelector }))) as { items?: StoredReport[] };
      for (const item of list.items ?? []) stored.set(key(item.metadata?.namespace, item.metadata?.name), item);
    }
    for (const report of reports) {
      const { name, namespace } = report.metadata;
      const plural = namespace === undefined ? cluster.plural : namespaced.plural;
      const existing = stored.get(key(namespace, name));
      stored.delete(key(namespace, name));
      if (existing === undefined) {
        await retryTooManyRequests(() => namespace === undefined
          ? api.createClusterCustomObject({ group, version, plural, body: report })
          : api.createNamespacedCustomObject({ group, version, namespace, plural, body: report }));
        result.created += 1;
      } else {
        // The stored version makes a concurrent writer's change a conflict, not a silent loss.
        const body = { ...report, metadata: { ...report.metadata, resourceVersion: existing.metadata?.resourceVersion } };
        await retryTooManyRequests(() => namespace === undefined
          ? api.replaceClusterCustomObject({ group, version, plural, name, body })
          : api.replaceNamespacedCustomObject({ group, version, namespace, plural, name, body }));
        result.updated += 1;
      }
    }
    for (const stale of stored.values()) {
      const name = stale.metadata?.name ?? '';
      const namespace = stale.metadata?.namespace;
      await retryTooManyRequests(() => namespace === undefined
        ? api.deleteClusterCustomObject({ group, version, plural: cluster.plural, name })
        : api.deleteNamespacedCustomObject({ group, version, namespace, plural: namespaced.plural, name }));
      result.deleted += 1;
    }
  } catch (error) {
    const hint = httpStatus(error) === 404 ? ': the cluster does not serve them; install their CRDs first' : '';
    throw new KubeConfigError(`cannot write ${what} reports to ${kubeConfig.getCurrentCluster()?.server ?? 'the cluster'}: ${describeError(error)}${hint}`);
  }
  return result;
}

/**
 * The API server answers 429 while a new CRD's storage is still initializing, asking the
 * client to retry (kubectl does); client-node does not, so the reads and writes retry a few times.
 */
async function retryTooManyRequests<T>(write: () => Promise<T>, attempts = 10, delayMs = 500): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (error) {
      if (httpStatus(error) !== 429 || attempt >= attempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}
