// Stand-ins for Istio's networking CRDs (Gateway, VirtualService, ServiceEntry, DestinationRule): every version
// Istio serves, schemaless (any field kept), so real objects of these kinds can be stored
// without installing Istio. Used by the e2e suites and the scale benchmark.

export const ISTIO_CRD_KINDS = [
  { kind: 'Gateway', plural: 'gateways' },
  { kind: 'VirtualService', plural: 'virtualservices' },
  { kind: 'ServiceEntry', plural: 'serviceentries' },
  { kind: 'DestinationRule', plural: 'destinationrules' },
] as const;

/** One CRD for `kind`, serving v1 (stored), v1beta1 and v1alpha3. */
export function istioCrd(kind: string, plural: string): Record<string, unknown> {
  const version = (name: string, storage: boolean) => ({
    name,
    served: true,
    storage,
    schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
  });
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.networking.istio.io` },
    spec: {
      group: 'networking.istio.io',
      scope: 'Namespaced',
      names: { kind, listKind: `${kind}List`, plural, singular: kind.toLowerCase() },
      versions: [version('v1', true), version('v1beta1', false), version('v1alpha3', false)],
    },
  };
}

/** The CRDs as one JSON List, for `kubectl apply -f -`. */
export function istioCrdsManifest(): string {
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items: ISTIO_CRD_KINDS.map(({ kind, plural }) => istioCrd(kind, plural)) });
}

/** The CRDs' names, for `kubectl wait --for=condition=Established`. */
export const ISTIO_CRD_NAMES: readonly string[] = ISTIO_CRD_KINDS.map(({ plural }) => `crd/${plural}.networking.istio.io`);
