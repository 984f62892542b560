/**
 * Namespaces the mesh leaves alone, listed once: each consumer derives its own list from these.
 */

/** Kubernetes' own namespaces. */
export const KUBERNETES_SYSTEM_NAMESPACES: readonly string[] = Object.freeze([
  'kube-system',
  'kube-public',
  'kube-node-lease',
]);

/** Namespaces Istio's analyzers never check: Kubernetes' own plus kind's storage namespace. */
export const ANALYZER_SKIPPED_NAMESPACES: readonly string[] = Object.freeze([
  ...KUBERNETES_SYSTEM_NAMESPACES,
  'local-path-storage',
]);
