/**
 * The versions Istio serves its networking API (networking.istio.io) in, newest first:
 * v1 since Istio 1.22, v1beta1 and v1alpha3 before (all the same schema). Dependency-free,
 * so the webhook configuration can import it without the Kubernetes client.
 */
export const ISTIO_NETWORKING_API_VERSIONS: readonly string[] = ['v1', 'v1beta1', 'v1alpha3'];

/** The API group of Istio's networking kinds (Gateway, VirtualService, ServiceEntry, …). */
export const ISTIO_NETWORKING_GROUP = 'networking.istio.io';
