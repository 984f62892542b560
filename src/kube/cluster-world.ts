/**
 * `check --cluster`: the cluster's Services and the Istio kinds the policies read (Gateways,
 * ServiceEntries, DestinationRules, VirtualServices; paged lists), so the offline Gateway,
 * VirtualService and DestinationRule checks also see what is already deployed. (The webhook
 * keeps the same objects in informer caches instead: src/kube/informers.ts.)
 */
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { ISTIO_NETWORKING_GROUP } from '../istio/api-versions.ts';
import type { KubeObject } from '../policies/types.ts';
import { clusterReadError } from './kubeconfig.ts';
import { ISTIO_RESOURCES, servedIstioVersion } from './istio-resources.ts';
import { listPageFetcher } from './list-request.ts';
import { DEFAULT_PAGE_SIZE, listPages, type PageFetcher, type PagingOptions } from './paginated-list.ts';

/**
 * The cluster's Services and the Istio objects the policies read, each with apiVersion and kind set.
 * Absent Istio CRDs mean no such objects. Throws KubeConfigError when the API cannot be read
 * (saying which permission is missing when it refuses).
 */
export async function listTrafficObjects(kubeConfig: KubeConfig, pageSize = DEFAULT_PAGE_SIZE): Promise<KubeObject[]> {
  const server = kubeConfig.getCurrentCluster()?.server ?? 'the cluster';
  try {
    const services = listAll(
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

/** Every object of a paged list, with apiVersion and kind set (list items carry neither). */
async function listAll(fetchPage: PageFetcher<KubernetesObject>, paging: PagingOptions, apiVersion: string, kind: string): Promise<KubeObject[]> {
  const objects: KubeObject[] = [];
  for await (const page of listPages(fetchPage, paging)) {
    for (const item of page.items ?? []) objects.push({ ...item, apiVersion, kind } as KubeObject);
  }
  return objects;
}
