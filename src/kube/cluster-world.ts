/**
 * `check --cluster`: the cluster's Services and the Istio kinds the policies read (Gateways,
 * ServiceEntries, DestinationRules, VirtualServices; paged lists), so the offline Gateway,
 * VirtualService and DestinationRule checks also see what is already deployed. (The webhook
 * keeps the same objects in informer caches instead: src/kube/informers.ts.)
 */
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { ISTIO_NETWORKING_GROUP } from '../istio/api-versions.ts';
import { isRecord, type KubeObject } from '../policies/types.ts';
import { EXPORT_TO_ANNOTATION } from '../policies/traffic-world.ts';
import { clusterReadError } from './kubeconfig.ts';
import { ISTIO_RESOURCES, servedIstioVersion } from './istio-resources.ts';
import { listPageFetcher } from './list-request.ts';
import { DEFAULT_PAGE_SIZE, listPages, type PageFetcher, type PagingOptions } from './paginated-list.ts';

/**
 * The cluster's Services and the Istio objects the policies read, each with apiVersion and kind set.
 * Absent Istio CRDs mean no such objects. Throws KubeConfigError when the API cannot be read
 * (saying which permission is missing when it refuses).
 */
export async function listTrafficObjects(kubeConfig: KubeConfig, pageSize = DEFAULT_PAGE_SIZE, listedServices?: readonly KubeObject[]): Promise<KubeObject[]> {
  const server = kubeConfig.getCurrentCluster()?.server ?? 'the cluster';
  try {
    const services = listedServices ?? listAll(
      listPageFetcher(kubeConfig, '/api/v1/services'),
      { pageSize, what: 'listing Services' },
      'v1',
      'Service',
    );
    const istio = ISTIO_RESOURCES.map(async (resource) => {
      const version = await servedIstioVersion(kubeConfig, resource);
      if (version === undefined) return [];
      return listAll(
        listPageFetcher(kubeConfig, `/apis/${ISTIO_NETWORKING_GROUP}/${version}/${resource.plural}`),
        { pageSize, what: `listing ${resource.plural}` },
        `${ISTIO_NETWORKING_GROUP}/${version}`,
        resource.kind,
      );
    });
    return (await Promise.all([services, ...istio])).flat();
  } catch (error) {
    throw clusterReadError(error, 'list Services and Istio networking objects', server);
  }
}

/**
 * Every object of a paged list, with apiVersion and kind set (list items carry neither), each
 * cut down to what the traffic rules read as its page arrives: its identity, labels, the
 * exportTo annotation and its spec (of a Service, the part the rules read). Whole objects (managedFields, status, kubectl's
 * last-applied-configuration) made `audit` of 20,000 Services run out of heap.
 */
async function listAll(fetchPage: PageFetcher<KubernetesObject>, paging: PagingOptions, apiVersion: string, kind: string): Promise<KubeObject[]> {
  const objects: KubeObject[] = [];
  for await (const page of listPages(fetchPage, paging)) {
    for (const item of page.items ?? []) objects.push(readByTrafficRules(item as KubeObject, apiVersion, kind));
  }
  return objects;
}

/** What the traffic rules read of one listed object (see listAll). */
export function readByTrafficRules(item: KubeObject, apiVersion: string, kind: string): KubeObject {
  const metadata = isRecord(item.metadata) ? item.metadata : {};
  const annotations = isRecord(metadata.annotations) ? metadata.annotations : {};
  const exportTo = annotations[EXPORT_TO_ANNOTATION];
  return {
    apiVersion,
    kind,
    metadata: {
      name: metadata.name,
      namespace: metadata.namespace,
      ...(metadata.labels === undefined ? {} : { labels: metadata.labels }),
      ...(exportTo === undefined ? {} : { annotations: { [EXPORT_TO_ANNOTATION]: exportTo } }),
    },
    spec: kind === 'Service' ? serviceSpecReadByTrafficRules(item.spec) : item.spec,
  } as KubeObject;
}

/** A Service's selector, type and ports: its addresses, families and policies are never read. */
function serviceSpecReadByTrafficRules(spec: unknown): unknown {
  if (!isRecord(spec)) return spec;
  const { selector, type, ports, externalName } = spec;
  return { selector, type, ports, externalName };
}
