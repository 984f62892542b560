/**
 * `check --cluster`: one list of the cluster's Services, Gateways and ServiceEntries, so the
 * offline Gateway and VirtualService checks also see what is already deployed. (The webhook
 * keeps the same objects in informer caches instead: src/kube/informers.ts.)
 */
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { ISTIO_NETWORKING_GROUP } from '../policies/traffic-world.ts';
import type { KubeObject } from '../policies/types.ts';
import { KubeConfigError } from './kubeconfig.ts';
import { describeError, ISTIO_RESOURCES, LIST_TIMEOUT_MS, servedIstioVersion, withTimeout } from './istio-resources.ts';

/**
 * The cluster's Services, Gateways and ServiceEntries, each with apiVersion and kind set.
 * Absent Istio CRDs mean no such objects. Throws KubeConfigError when the API cannot be read.
 */
export async function listTrafficObjects(kubeConfig: KubeConfig): Promise<KubeObject[]> {
  const server = kubeConfig.getCurrentCluster()?.server ?? 'the cluster';
  try {
    const core = kubeConfig.makeApiClient(CoreV1Api);
    const custom = kubeConfig.makeApiClient(CustomObjectsApi);
    const services = withTimeout(core.listServiceForAllNamespaces(), LIST_TIMEOUT_MS, 'listing Services').then((list) =>
      list.items.map((item) => ({ ...item, apiVersion: 'v1', kind: 'Service' }) as KubeObject),
    );
    const istio = ISTIO_RESOURCES.map(async (resource) => {
      const version = await servedIstioVersion(kubeConfig, resource);
      if (version === undefined) return [];
      const list = (await withTimeout(
        custom.listClusterCustomObject({ group: ISTIO_NETWORKING_GROUP, version, plural: resource.plural }),
        LIST_TIMEOUT_MS,
        `listing ${resource.plural}`,
      )) as { items?: unknown };
      const items = Array.isArray(list.items) ? (list.items as KubeObject[]) : [];
      return items.map((item) => ({ ...item, apiVersion: `${ISTIO_NETWORKING_GROUP}/${version}`, kind: resource.kind }) as KubeObject);
    });
    return (await Promise.all([services, ...istio])).flat();
  } catch (error) {
    throw new KubeConfigError(`cannot list Services, Gateways and ServiceEntries from ${server}: ${describeError(error)}`);
  }
}
