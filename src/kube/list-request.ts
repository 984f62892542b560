/**
 * One page of a list, read straight from the API server (`api-request.ts`: the kubeconfig's
 * credentials and cached agent, the answer parsed once into plain objects).
 */
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { apiRequest } from './api-request.ts';
import type { ListPage, PageFetcher } from './paginated-list.ts';

/** The pages of `path` (e.g. /api/v1/services) on the kubeconfig's current cluster. */
export function listPageFetcher(kubeConfig: KubeConfig, path: string): PageFetcher<KubernetesObject> {
  return (limit, continueToken) =>
    apiRequest<ListPage<KubernetesObject>>(kubeConfig, { operation: 'list', path, query: { limit: String(limit), continue: continueToken } });
}
