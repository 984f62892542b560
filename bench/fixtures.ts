/**
 * Realistic AdmissionReview bodies for the benchmarks: objects as the API server sends them
 * after `kubectl apply` (client-side apply), i.e. with defaults filled in, managedFields, and
 * the `kubectl.kubernetes.io/last-applied-configuration` annotation holding the applied
 * manifest as compact JSON (a few KB).
 */

export type RequestKind = 'validate-good-service' | 'validate-bad-service' | 'mutate-service' | 'mutate-namespace';

export const REQUEST_KINDS: readonly RequestKind[] = ['validate-good-service', 'validate-bad-service', 'mutate-service', 'mutate-namespace'];

export interface BenchRequest {
  readonly kind: RequestKind;
  readonly path: '/validate' | '/mutate';
  readonly body: string;
}

export interface PortSpec {
  readonly name?: string;
  readonly port: number;
  readonly targetPort?: number | string;
  readonly appProtocol?: string;
}

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

const TEAM_LABELS: Readonly<Record<string, string>> = {
  'app.kubernetes.io/name': 'checkout',
  'app.kubernetes.io/instance': 'checkout-prod-eu-west-1',
  'app.kubernetes.io/version': '4.18.2',
  'app.kubernetes.io/component': 'api',
  'app.kubernetes.io/part-of': 'storefront',
  'app.kubernetes.io/managed-by': 'kubectl',
  'helm.sh/chart': 'checkout-4.18.2',
  team: 'payments',
  'cost-center': 'cc-4711',
  environment: 'production',
};

const SERVICE_ANNOTATIONS: Readonly<Record<string, string>> = {
  'prometheus.io/scrape': 'true',
  'prometheus.io/port': '9102',
  'prometheus.io/path': '/metrics',
  'service.beta.kubernetes.io/aws-load-balancer-internal': 'true',
  'service.beta.kubernetes.io/aws-load-balancer-backend-protocol': 'tcp',
  'service.beta.kubernetes.io/aws-load-balancer-connection-idle-timeout': '3600',
  'external-dns.alpha.kubernetes.io/hostname': 'checkout.payments.internal.example.com',
  'owner.example.com/contact': 'payments-oncall@example.com; #payments-oncall; https://runbooks.example.com/payments/checkout',
  'owner.example.com/description':
    'Checkout API of the storefront: takes a cart, prices it, reserves stock, authorises the payment and emits the ' +
    'order-created event. Talks gRPC to pricing, inventory and payments; HTTP/JSON to the web and mobile front ends. ' +
    'SLO 99.95% / p99 300 ms. Owned by the payments team; see the runbook before paging.',
  // A routing config kept in an annotation, as API gateways (Ambassador, Kong…) read it.
  'getambassador.io/config': [
    '---',
    'apiVersion: getambassador.io/v3alpha1',
    'kind: Mapping',
    'name: checkout-api',
    'prefix: /api/checkout/',
    'service: checkout.payments:80',
    'timeout_ms: 3000',
    'retry_policy: {retry_on: 5xx, num_retries: 2}',
    'cors: {origins: ["https://shop.example.com", "https://m.shop.example.com"], methods: [GET, POST, PUT], headers: [Content-Type, Authorization]}',
    '---',
    'apiVersion: getambassador.io/v3alpha1',
    'kind: Mapping',
    'name: checkout-grpc',
    'grpc: true',
    'prefix: /checkout.v1.CheckoutService/',
    'rewrite: /checkout.v1.CheckoutService/',
    'service: checkout.payments:9090',
    'timeout_ms: 5000',
    '',
  ].join('\n'),
};

/** Ports Istio classifies (validate: allowed, mutate: empty patch). */
export const GOOD_PORTS: readonly PortSpec[] = [
  { name: 'http-web', port: 80, targetPort: 8080 },
  { name: 'https', port: 443, targetPort: 8443 },
  { name: 'grpc-api', port: 9090, targetPort: 9090 },
  { name: 'http-metrics', port: 9102, targetPort: 9102 },
  { name: 'tcp-debug', port: 5005, targetPort: 5005 },
  { name: 'http2-internal', port: 8081, targetPort: 8081 },
];

/** The same ports as a developer names them before meeting Istio: denied / renamed. */
export const BAD_PORTS: readonly PortSpec[] = [
  { name: 'web', port: 80, targetPort: 8080 },
  { name: 'https', port: 443, targetPort: 8443 },
  { name: 'api', port: 9090, targetPort: 9090 },
  { name: 'metrics', port: 9102, targetPort: 9102 },
  { name: 'debug', port: 5005, targetPort: 5005 },
  { name: 'http2-internal', port: 8081, targetPort: 8081 },
];

/** Ports that mutation can all fix (every unclassifiable name has a hint): created fine through the webhook. */
export const FIXABLE_PORTS: readonly PortSpec[] = [
  { name: 'web', port: 80, targetPort: 8080 },
  { name: 'https', port: 443, targetPort: 8443 },
  { name: 'api', port: 9090, targetPort: 9090 },
  { name: 'metrics', port: 9102, targetPort: 9102 },
  { name: 'kafka', port: 9092, targetPort: 9092 },
  { name: 'http2-internal', port: 8081, targetPort: 8081 },
];

function sortedKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((key) => [key, sortedKeys((value as Record<string, unknown>)[key])]),
  );
}

/** What kubectl writes: the applied manifest as compact JSON with sorted keys, plus a newline. */
function lastApplied(manifest: unknown): string {
  return `${JSON.stringify(sortedKeys(manifest))}\n`;
}

function fieldsV1For(labels: Record<string, string>, annotations: Record<string, string>, extra: Record<string, unknown>): unknown {
  const keys = (prefix: string, record: Record<string, string>) => Object.fromEntries(Object.keys(record).map((key) => [`${prefix}:${key}`, {}]));
  return {
    'f:metadata': {
      'f:annotations': { '.': {}, ...keys('f', annotations), [`f:${LAST_APPLIED}`]: {} },
      'f:labels': { '.': {}, ...keys('f', labels) },
    },
    ...extra,
  };
}

export interface ServiceOptions {
  readonly name?: string;
  readonly namespace?: string;
  readonly ports: readonly PortSpec[];
  /** Fields the API server sets after mutating admission (uid, clusterIP…): the validating webhook sees them. */
  readonly persisted?: boolean;
}

/** A Service as the API server hands it to admission after `kubectl apply`. */
export function serviceObject({ name = 'checkout', namespace = 'payments', ports, persisted = false }: ServiceOptions): Record<string, unknown> {
  const labels: Record<string, string> = { ...TEAM_LABELS, 'app.kubernetes.io/name': name };
  const annotations = { ...SERVICE_ANNOTATIONS };
  const manifestPorts = ports.map((p) => ({
    ...(p.name !== undefined ? { name: p.name } : {}),
    port: p.port,
    ...(p.appProtocol !== undefined ? { appProtocol: p.appProtocol } : {}),
    targetPort: p.targetPort ?? p.port,
  }));
  const manifest = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace, labels, annotations },
    spec: { type: 'ClusterIP', selector: { 'app.kubernetes.io/name': name, 'app.kubernetes.io/instance': labels['app.kubernetes.io/instance'] }, ports: manifestPorts },
  };
  const portFields = Object.fromEntries(
    ports.map((p) => [
      `k:{"port":${p.port},"protocol":"TCP"}`,
      { '.': {}, ...(p.name !== undefined ? { 'f:name': {} } : {}), 'f:port': {}, 'f:protocol': {}, 'f:targetPort': {} },
    ]),
  );
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name,
      namespace,
      ...(persisted ? { uid: '5b0e5c1e-8f5e-4a53-9d0c-2f1c1e0b7a11', resourceVersion: '', creationTimestamp: '2025-11-26T04:21:47Z' } : { creationTimestamp: null }),
      labels,
      annotations: { ...annotations, [LAST_APPLIED]: lastApplied(manifest) },
      managedFields: [
        {
          manager: 'kubectl-client-side-apply',
          operation: 'Update',
          apiVersion: 'v1',
          time: '2025-11-26T04:21:47Z',
          fieldsType: 'FieldsV1',
          fieldsV1: fieldsV1For(labels, annotations, {
            'f:spec': {
              'f:internalTrafficPolicy': {},
              'f:ports': { '.': {}, ...portFields },
              'f:selector': {},
              'f:sessionAffinity': {},
              'f:type': {},
            },
          }),
        },
      ],
    },
    spec: {
      ports: manifestPorts.map((p) => ({ ...p, protocol: 'TCP' })),
      selector: manifest.spec.selector,
      ...(persisted ? { clusterIP: '10.0.0.117', clusterIPs: ['10.0.0.117'], ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack' } : {}),
      type: 'ClusterIP',
      sessionAffinity: 'None',
      internalTrafficPolicy: 'Cluster',
    },
    status: { loadBalancer: {} },
  };
}

/** A Namespace with `labelCount` labels (at least the team labels), as kubectl applies it. */
export function namespaceObject(name = 'team-payments', labelCount = 0): Record<string, unknown> {
  const labels: Record<string, string> = { 'kubernetes.io/metadata.name': name, team: 'payments', environment: 'production', 'cost-center': 'cc-4711' };
  for (let i = Object.keys(labels).length; i < labelCount; i++) labels[`example.com/label-${i}`] = `value-${i}`;
  const annotations = {
    'owner.example.com/contact': 'payments-oncall@example.com; #payments-oncall',
    'scheduler.alpha.kubernetes.io/node-selector': 'pool=payments',
  };
  const manifestLabels = Object.fromEntries(Object.entries(labels).filter(([key]) => key !== 'kubernetes.io/metadata.name'));
  const manifest = { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: manifestLabels, annotations } };
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name,
      creationTimestamp: null,
      labels,
      annotations: { ...annotations, [LAST_APPLIED]: lastApplied(manifest) },
      managedFields: [
        {
          manager: 'kubectl-client-side-apply',
          operation: 'Update',
          apiVersion: 'v1',
          time: '2025-11-26T04:21:47Z',
          fieldsType: 'FieldsV1',
          fieldsV1: fieldsV1For(manifestLabels, annotations, {}),
        },
      ],
    },
    spec: { finalizers: ['kubernetes'] },
    status: { phase: 'Active' },
  };
}

let sequence = 0;

/** The AdmissionReview envelope the API server sends (admission.k8s.io/v1, CREATE by kubectl). */
export function admissionReview(object: Record<string, unknown>, uid = `bench-${(sequence += 1)}`): Record<string, unknown> {
  const kind = object['kind'] as string;
  const metadata = object['metadata'] as { name: string; namespace?: string };
  const resource = { group: '', version: 'v1', resource: `${kind.toLowerCase()}s` };
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: '', version: 'v1', kind },
      resource,
      requestKind: { group: '', version: 'v1', kind },
      requestResource: resource,
      name: metadata.name,
      ...(metadata.namespace !== undefined ? { namespace: metadata.namespace } : {}),
      operation: 'CREATE',
      userInfo: {
        username: 'alice@example.com',
        uid: 'oidc:7c1f2a44-3c51-4c1e-b0c5-6f9d0e1a2b3c',
        groups: ['system:authenticated', 'oidc:payments-developers', 'oidc:storefront'],
        extra: { 'authentication.kubernetes.io/credential-id': ['JTI=3f0d8c0e-2a8f-4f7a-9a51-1d1e0c6b5a77'] },
      },
      object,
      oldObject: null,
      dryRun: false,
      options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1', fieldManager: 'kubectl-client-side-apply', fieldValidation: 'Strict' },
    },
  };
}

/** The four request kinds of the load benchmark, each with a fixed body (the uid repeats: the webhook only echoes it). */
export function loadRequests(): BenchRequest[] {
  return [
    { kind: 'validate-good-service', path: '/validate', body: JSON.stringify(admissionReview(serviceObject({ ports: GOOD_PORTS, persisted: true }), 'c0ffee00-0000-4000-8000-000000000001')) },
    { kind: 'validate-bad-service', path: '/validate', body: JSON.stringify(admissionReview(serviceObject({ ports: BAD_PORTS, persisted: true }), 'c0ffee00-0000-4000-8000-000000000002')) },
    { kind: 'mutate-service', path: '/mutate', body: JSON.stringify(admissionReview(serviceObject({ ports: BAD_PORTS }), 'c0ffee00-0000-4000-8000-000000000003')) },
    { kind: 'mutate-namespace', path: '/mutate', body: JSON.stringify(admissionReview(namespaceObject(), 'c0ffee00-0000-4000-8000-000000000004')) },
  ];
}

/**
 * `count` ports, every other one named so that Istio cannot classify it but a hint can
 * (`web-<i>`: renamed to `http-web-<i>` by mutation, denied by validation).
 */
export function manyPorts(count: number): PortSpec[] {
  return Array.from({ length: count }, (_, i) => (i % 2 === 0 ? { name: `web-${i}`, port: 10_000 + i } : { name: `grpc-${i}`, port: 10_000 + i }));
}

export function lastAppliedSize(object: Record<string, unknown>): number {
  const annotations = (object['metadata'] as { annotations: Record<string, string> }).annotations;
  return Buffer.byteLength(annotations[LAST_APPLIED] ?? '');
}

/**
 * A Service as a Helm release creates it (no last-applied annotation, a managedFields entry of
 * the `helm` manager), with `ports`: an AdmissionReview of 1–2 KB, the size most Services have.
 */
export function helmServiceObject(ports: readonly PortSpec[], { name = 'checkout', namespace = 'payments' } = {}): Record<string, unknown> {
  const labels: Record<string, string> = {
    'app.kubernetes.io/name': name,
    'app.kubernetes.io/instance': `${name}-prod`,
    'app.kubernetes.io/managed-by': 'Helm',
  };
  const annotations = { 'meta.helm.sh/release-name': `${name}-prod`, 'meta.helm.sh/release-namespace': namespace };
  const specPorts = ports.map((p) => ({ ...(p.name !== undefined ? { name: p.name } : {}), port: p.port, protocol: 'TCP', targetPort: p.targetPort ?? p.port }));
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name,
      namespace,
      creationTimestamp: null,
      labels,
      annotations,
      managedFields: [
        {
          manager: 'helm',
          operation: 'Update',
          apiVersion: 'v1',
          time: '2025-11-26T04:21:47Z',
          fieldsType: 'FieldsV1',
          fieldsV1: {
            'f:metadata': { 'f:annotations': { '.': {} }, 'f:labels': { '.': {} } },
            'f:spec': { 'f:ports': {}, 'f:selector': {}, 'f:type': {} },
          },
        },
      ],
    },
    spec: { ports: specPorts, selector: { 'app.kubernetes.io/name': name, 'app.kubernetes.io/instance': `${name}-prod` }, type: 'ClusterIP' },
    status: { loadBalancer: {} },
  };
}

/** The two cases of the HTTP/2 comparison: one body each, posted to both /validate and /mutate. */
export type H2Case = 'ready' | 'rename';

export const H2_CASES: Readonly<Record<H2Case, { readonly title: string; readonly body: string }>> = {
  ready: {
    title: 'Service already ready for the mesh (allowed, no patch)',
    body: JSON.stringify(admissionReview(helmServiceObject(GOOD_PORTS), 'c0ffee00-0000-4000-8000-000000000011')),
  },
  rename: {
    title: 'Service with ports to rename (every answer a denial or a patch)',
    body: JSON.stringify(admissionReview(helmServiceObject(BAD_PORTS), 'c0ffee00-0000-4000-8000-000000000012')),
  },
};
