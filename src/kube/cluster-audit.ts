/**
 * One audit of the live cluster: every kind the registry validates, read in pages and judged
 * page by page (memory holds one page and the findings, however large the cluster), plus the
 * rules only stored objects can break. The Gateway and VirtualService rules also consult the
 * cluster's Services and Istio networking objects, read once. `audit` prints the result and
 * `serve --report-interval` writes it as reports; both run this.
 */
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { runCheck } from '../check/run-check.ts';
import type { ReportedFinding } from '../check/policy-reports.ts';
import { SharedText } from '../check/shared-text.ts';
import type { SourcedObject } from '../check/load-manifests.ts';
import type { Config } from '../config.ts';
import type { KubeObject } from '../policies/types.ts';
import { SERVICE, VALIDATED_MODULES, type PolicyModule } from '../policies/registry.ts';
import { OfflineWorldBuilder, type TrafficWorld } from '../policies/traffic-world.ts';
import { clusterReadError } from './kubeconfig.ts';
import { listPages, type ListPage, type PageFetcher } from './paginated-list.ts';
import { kindLister, type KindLister } from './kind-pages.ts';
import { listTrafficObjects, readByTrafficRules } from './cluster-world.ts';

export interface ClusterAudit {
  readonly findings: readonly ReportedFinding[];
  /** Objects the rules applied to (those the webhook never sees are not counted). */
  readonly checkedObjects: number;
  /** Objects read from the cluster. */
  readonly readObjects: number;
}

export interface ClusterAuditOptions {
  readonly pageSize: number;
  /** Called after each page is judged, with the totals so far (the command's progress line). */
  readonly onPage?: ((read: number, findings: number) => void) | undefined;
  /** Stops the audit between two list calls (serve shutting down); it then rejects with the signal's reason. */
  readonly signal?: AbortSignal | undefined;
}

/** Rejects with a KubeConfigError ("the cluster could not be read") when a list call fails. */
export async function auditCluster(kubeConfig: KubeConfig, config: Config, options: ClusterAuditOptions): Promise<ClusterAudit> {
  const server = kubeConfig.getCurrentCluster()?.server ?? 'the cluster';
  // Which kinds the cluster serves, asked first; a refusal is raised when its kind's turn comes,
  // so the message names the first kind the audit reads, as it would when asked one by one.
  const listers = new Map<PolicyModule, KindLister | undefined | { readonly refused: unknown }>();
  for (const module of VALIDATED_MODULES) {
    listers.set(module, await listerOrKubeConfigError(kubeConfig, module, server).catch((error: unknown) => ({ refused: error })));
  }
  // The rules that consult the cluster run only on kinds it serves (Istio's). When some do, each
  // Service page judged is also added to their world, as the views those rules read: listing
  // the Services a second time made the audit's peak memory grow twice as fast with the
  // cluster, and keeping the listed Services until the world was built held two copies.
  const needsWorld = VALIDATED_MODULES.some((module) => module.reads.length > 0 && listers.get(module) !== undefined);
  const worldBuilder = needsWorld ? new OfflineWorldBuilder() : undefined;
  let servicesRead = false;
  // Until every Service page is read (were a consulting kind judged first), the world lists them itself.
  const traffic = lazyTrafficWorld(kubeConfig, options.pageSize, () => worldBuilder ?? new OfflineWorldBuilder(), () => servicesRead);
  const findings: ReportedFinding[] = [];
  // Findings are held until the report is written: each repeated text is kept once.
  const texts = new SharedText();
  let checkedObjects = 0;
  let readObjects = 0;
  for (const module of VALIDATED_MODULES) {
    options.signal?.throwIfAborted();
    const kind = module.kind.kind;
    const lister = listers.get(module);
    if (!lister) continue;
    if ('refused' in lister) throw lister.refused;
    for await (const page of pagesOrKubeConfigError(kind, lister.fetchPage, options.pageSize, server)) {
      const items = page.items ?? [];
      if (items.length === 0) continue;
      if (worldBuilder && module.kind === SERVICE && !servicesRead) for (const item of items) worldBuilder.add(readByTrafficRules(item as KubeObject, lister.apiVersion, kind));
      const objects = items.map((item): SourcedObject => ({ object: { apiVersion: lister.apiVersion, kind, ...item } as KubeObject, file: '', line: 0, documentIndex: 0 }));
      const world = module.reads.length > 0 ? await traffic() : undefined;
      const result = runCheck(objects, config, { fix: false, stored: true, ...(world ? { traffic: world } : {}) });
      const uids = new Map(items.map((item) => [`${item.metadata?.namespace ?? ''}/${item.metadata?.name ?? ''}`, item.metadata?.uid]));
      for (const finding of result.findings) {
        findings.push({
          ...finding,
          namespace: texts.share(finding.namespace),
          field: texts.share(finding.field),
          message: texts.share(finding.message),
          apiVersion: lister.apiVersion,
          uid: uids.get(`${finding.namespace}/${finding.name}`),
        });
      }
      checkedObjects += result.checkedObjects;
      readObjects += objects.length;
      options.onPage?.(readObjects, findings.length);
      options.signal?.throwIfAborted();
    }
    if (module.kind === SERVICE) servicesRead = true;
  }
  return { findings, checkedObjects, readObjects };
}

/** How to list the module's kind; undefined when the cluster does not serve it (Istio not installed). */
async function listerOrKubeConfigError(kubeConfig: KubeConfig, module: PolicyModule, server: string) {
  try {
    return await kindLister(kubeConfig, module.kind);
  } catch (error) {
    throw clusterReadError(error, `list ${module.kind.kind}s`, server);
  }
}

/**
 * The cluster as the Gateway and VirtualService rules look things up in it, read on first use:
 * a cluster without Istio objects never pays for listing its Services twice. The Services are
 * already in `builder` once `servicesRead` says so; else they are listed here.
 */
function lazyTrafficWorld(kubeConfig: KubeConfig, pageSize: number, builder: () => OfflineWorldBuilder, servicesRead: () => boolean): () => Promise<TrafficWorld> {
  let world: Promise<TrafficWorld> | undefined;
  return () => {
    // listTrafficObjects already turns a failed read into "the cluster could not be read".
    world ??= listTrafficObjects(kubeConfig, pageSize, servicesRead() ? [] : undefined).then((objects) => {
      const into = builder();
      for (const object of objects) into.add(object);
      return into.world({ complete: true });
    });
    return world;
  };
}

/** The pages of one kind; a failed list call becomes "the cluster could not be read" (exit 2). */
async function* pagesOrKubeConfigError(kind: string, fetchPage: PageFetcher<KubernetesObject>, pageSize: number, server: string): AsyncGenerator<ListPage<KubernetesObject>> {
  try {
    yield* listPages(fetchPage, { pageSize, what: `listing ${kind}s` });
  } catch (error) {
    throw clusterReadError(error, `list ${kind}s`, server);
  }
}
