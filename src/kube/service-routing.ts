/**
 * Whether the webhook's Service routes to this replica yet.
 *
 * The API server calls the webhook through its Service. A replica that starts serving is not
 * reachable that way until the endpoints controller lists it as a ready endpoint of the
 * Service, a few seconds after its readiness probe passes. Installing the webhooks before
 * that would make writes fail (failurePolicy Fail) with "no endpoints available" although a
 * replica serves; so a replica installs them only once an EndpointSlice of the Service lists
 * one of its pod IPs as ready.
 */
import type { KubeConfig, V1EndpointSlice } from '@kubernetes/client-node';
import { apiRequest } from './api-request.ts';

/** The label the endpoint controllers put on every EndpointSlice of a Service. */
const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/**
 * Whether one of `slices` lists one of `podIps` as a ready endpoint. An endpoint without a
 * ready condition counts as ready: the API defines the unknown state so.
 */
export function routesTo(slices: readonly V1EndpointSlice[], podIps: readonly string[]): boolean {
  const ours = new Set(podIps);
  return slices.some((slice) =>
    (slice.endpoints ?? []).some((endpoint) => endpoint.conditions?.ready !== false && endpoint.addresses.some((address) => ours.has(address))),
  );
}

/** A check that answers true once the Service routes to the pod; true stays true. */
export function serviceRoutingCheck(kubeConfig: KubeConfig, namespace: string, serviceName: string, podIps: readonly string[]): () => Promise<boolean> {
  const path = `/apis/discovery.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/endpointslices`;
  let routed = false;
  return async () => {
    if (routed) return true;
    // One page: a Service has a handful of slices (each holds up to 100 endpoints).
    const list = await apiRequest<{ items?: V1EndpointSlice[] }>(kubeConfig, { operation: 'list', path, query: { labelSelector: `${SERVICE_NAME_LABEL}=${serviceName}` } });
    routed = routesTo(list.items ?? [], podIps);
    return routed;
  };
}
