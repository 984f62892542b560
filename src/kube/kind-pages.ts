/**
 * Paged lists of any registered kind across the cluster: core kinds through their typed
 * client-node calls, the others through the custom-objects API in the newest version the
 * cluster serves (Istio's CRDs may be absent, or serve only older versions).
 */
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import type { KindSpec } from '../policies/registry.ts';
import { servedIstioVersion } from './istio-resources.ts';
import type { ListPage, PageFetcher } from './paginated-list.ts';

export interface KindLister {
  /** The apiVersion the items are read in (list items carry none). */
  readonly apiVersion: string;
  readonly fetchPage: PageFetcher<KubernetesObject>;
}

/** Core kinds, by resource: the cluster-wide list call of each. */
const CORE_LISTS: Readonly<Record<string, (api: CoreV1Api) => PageFetcher<KubernetesObject>>> = {
  namespaces: (api) => (limit, continueToken) => api.listNamespace({ limit, _continue: continueToken }),
  services: (api) => (limit, continueToken) => api.listServiceForAllNamespaces({ limit, _continue: continueToken }),
  pods: (api) => (limit, continueToken) => api.listPodForAllNamespaces({ limit, _continue: continueToken }),
};

/** How to list `kind`, or undefined when the cluster does not serve it (no such objects). */
export async function kindLister(kubeConfig: KubeConfig, kind: KindSpec): Promise<KindLister | undefined> {
  if (kind.group === '') {
    const list = CORE_LISTS[kind.resource];
    if (!list) throw new Error(`no list call for the core resource ${kind.resource}`);
    return { apiVersion: 'v1', fetchPage: list(kubeConfig.makeApiClient(CoreV1Api)) };
  }
  const version = await servedIstioVersion(kubeConfig, { plural: kind.resource }, kind.group, kind.versions);
  if (version === undefined) return undefined;
  const api = kubeConfig.makeApiClient(CustomObjectsApi);
  return {
    apiVersion: `${kind.group}/${version}`,
    fetchPage: (limit, continueToken) =>
      api.listClusterCustomObject({ group: kind.group, version, plural: kind.resource, limit, _continue: continueToken }) as Promise<ListPage<KubernetesObject>>,
  };
}
