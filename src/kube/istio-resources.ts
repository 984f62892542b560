/**
 * The cluster objects the Gateway and VirtualService checks read, and how to reach them:
 * Services (core v1), Gateways and ServiceEntries (networking.istio.io). Istio's CRDs may be
 * absent, or serve only older versions.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { listPageFetcher } from './list-request.ts';
import { ISTIO_NETWORKING_API_VERSIONS, ISTIO_NETWORKING_GROUP } from '../istio/api-versions.ts';
import { CLUSTER_READS } from '../policies/registry.ts';

/** An Istio kind some policy reads from the cluster. */
export interface IstioResource {
  readonly kind: string;
  readonly plural: string;
  /** The kind in the plural, for logs and messages. */
  readonly pluralKind: string;
}

/** The Istio kinds the policies read (the registry's `reads`): what the informers cache. */
export const ISTIO_RESOURCES: readonly IstioResource[] = CLUSTER_READS.filter((kind) => kind.group === ISTIO_NETWORKING_GROUP).map((kind) => ({
  kind: kind.kind,
  plural: kind.resource,
  pluralKind: /[^aeiou]y$/.test(kind.kind) ? `${kind.kind.slice(0, -1)}ies` : `${kind.kind}s`,
}));

/** Newest first: v1 since Istio 1.22, v1beta1 and v1alpha3 before (all the same schema). */
export const ISTIO_VERSIONS: readonly string[] = ISTIO_NETWORKING_API_VERSIONS;

/** Bounds every list call: a black-holed API server must not leave a sync pending forever. */
export const LIST_TIMEOUT_MS = 30_000;

/** The HTTP status of a client-node error, when it has one (ApiException.code, watch errors' statusCode). */
export function httpStatus(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { code, statusCode } = error as { code?: unknown; statusCode?: unknown };
  if (typeof code === 'number') return code;
  if (typeof statusCode === 'number') return statusCode;
  return undefined;
}

/** A short, single-line description of a client error for logs and warnings. */
export function describeError(error: unknown): string {
  const status = httpStatus(error);
  if (status !== undefined) return `HTTP ${status}`;
  if (typeof error !== 'object' || error === null) return String(error);
  const { code, cause, message } = error as { code?: unknown; cause?: { code?: unknown; message?: unknown }; message?: unknown };
  const detail = typeof cause?.code === 'string' ? cause.code
    : typeof cause?.message === 'string' ? cause.message.split('\n')[0]
    : typeof code === 'string' ? code : undefined;
  const text = typeof message === 'string' ? message.split('\n')[0] ?? '' : '';
  return (detail ? `${text ? `${text}: ` : ''}${detail}` : text || 'unknown error').slice(0, 100);
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`${what} timed out after ${ms} ms`), { code: 'ETIMEDOUT' })), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The newest version in which the cluster serves the resource, or undefined when it serves
 * none (Istio's CRDs are not installed): "no such objects", not an error.
 */
export async function servedIstioVersion(kubeConfig: KubeConfig, resource: Pick<IstioResource, 'plural'>, group = ISTIO_NETWORKING_GROUP, versions = ISTIO_VERSIONS): Promise<string | undefined> {
  for (const version of versions) {
    try {
      await withTimeout(listPageFetcher(kubeConfig, `/apis/${group}/${version}/${resource.plural}`)(1, undefined), LIST_TIMEOUT_MS, `listing ${resource.plural}`);
      return version;
    } catch (error) {
      if (httpStatus(error) !== 404) throw error;
    }
  }
  return undefined;
}
