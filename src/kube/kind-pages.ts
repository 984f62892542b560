/**
 * Paged lists of any registered kind across the cluster: core kinds in v1, the others in the
 * newest version the cluster serves (Istio's CRDs may be absent, or serve only older versions).
 */
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import type { KindSpec } from '../policies/registry.ts';
import { servedIstioVersion } from './istio-resources.ts';
import { listPageFetcher } from './list-request.ts';
import type { PageFetcher } from './paginated-list.ts';

export interface KindLister {
  /** The apiVersion the items are read in (list items carry none). */
  readonly apiVersion: string;
  readonly fetchPage: PageFetcher<KubernetesObject>;
}

/** How to list `kind`, or undefined when the cluster does not serve it (no such objects). */
export async function kindLister(kubeConfig: KubeConfig, kind: KindSpec): Promise<KindLister | undefined> {
  if (kind.group === '') return { apiVersion: 'v1', fetchPage: listPageFetcher(kubeConfig, `/api/v1/${kind.resource}`) };
  const version = await servedIstioVersion(kubeConfig, { plural: kind.resource }, kind.group, kind.versions);
  if (version === undefined) return undefined;
  return { apiVersion: `${kind.group}/${version}`, fetchPage: listPageFetcher(kubeConfig, `/apis/${kind.group}/${version}/${kind.resource}`) };
}
