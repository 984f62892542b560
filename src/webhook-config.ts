/**
 * The ValidatingWebhookConfiguration and MutatingWebhookConfiguration that register a
 * webhook served at a URL (local development, the e2e suite). The Helm chart renders the
 * same shape for in-cluster installs.
 */
import { ISTIO_NETWORKING_API_VERSIONS } from './istio/api-versions.ts';
import { KUBERNETES_SYSTEM_NAMESPACES } from './policies/system-namespaces.ts';
import { OPT_OUT_LABEL } from './policies/webhook-scope.ts';

export { OPT_OUT_LABEL };

export const VALIDATING_WEBHOOK_NAME = 'validate.mesh-admission.io';
export const MUTATING_WEBHOOK_NAME = 'mutate.mesh-admission.io';
/**
 * The Pod webhooks of `holdApplicationUntilProxyStarts`, one per way a namespace asks Istio for
 * injection (a webhook has a single namespaceSelector). The same selectors as Istio's own
 * injector webhooks, so a namespace matches at most one of them.
 */
export const POD_WEBHOOKS = [
  { name: 'pods.mutate.mesh-admission.io', namespaceExpressions: [{ key: 'istio-injection', operator: 'In', values: ['enabled'] }] },
  {
    name: 'revision-pods.mutate.mesh-admission.io',
    namespaceExpressions: [
      { key: 'istio-injection', operator: 'DoesNotExist' },
      { key: 'istio.io/rev', operator: 'Exists' },
    ],
  },
];
/** Pods labelled sidecar.istio.io/inject=false get no sidecar, so they are not sent either. */
export const POD_OPT_OUT = { key: 'sidecar.istio.io/inject', operator: 'NotIn', values: ['false'] };
/** Kubernetes' own namespaces, never sent to the webhook. */
export const SYSTEM_NAMESPACES = [...KUBERNETES_SYSTEM_NAMESPACES];

export type FailurePolicy = 'Fail' | 'Ignore';

/** A resource the configurations register, and the `kind` its admission reviews carry. */
interface RegisteredResource {
  readonly resource: string;
  readonly kind: string;
}
const SERVICES: RegisteredResource = { resource: 'services', kind: 'Service' };
const NAMESPACES: RegisteredResource = { resource: 'namespaces', kind: 'Namespace' };
const GATEWAYS: RegisteredResource = { resource: 'gateways', kind: 'Gateway' };
const VIRTUAL_SERVICES: RegisteredResource = { resource: 'virtualservices', kind: 'VirtualService' };
const PODS: RegisteredResource = { resource: 'pods', kind: 'Pod' };

/** Every kind any option of the configurations can send to the webhook. */
export const REGISTERED_KINDS: readonly string[] = [SERVICES, NAMESPACES, GATEWAYS, VIRTUAL_SERVICES, PODS].map((r) => r.kind);

export interface WebhookConfigOptions {
  /** Base URL of the webhook server, e.g. https://127.0.0.1:8443. */
  readonly url: string;
  /** PEM of the CA that signed the serving certificate. */
  readonly caPem: string;
  /** Name of both configuration objects. */
  readonly name: string;
  readonly failurePolicy: FailurePolicy;
  readonly timeoutSeconds: number;
  /** Namespaces never sent to the webhook, besides the system ones. */
  readonly excludedNamespaces: readonly string[];
  /** Also validate Istio Gateways and VirtualServices (serve with trafficChecks). */
  readonly trafficChecks?: boolean;
  /** Also send Pods of injected namespaces to the mutating webhook (serve with holdApplicationUntilProxyStarts). */
  readonly holdApplicationUntilProxyStarts?: boolean;
}

/** Every version Istio has served its networking API in; the schemas are the same. */
export const ISTIO_API_VERSIONS = [...ISTIO_NETWORKING_API_VERSIONS];

export function webhookConfigurations(options: WebhookConfigOptions): [object, object] {
  const base = options.url.replace(/\/(validate|mutate)\/?$/, '').replace(/\/$/, '');
  const caBundle = Buffer.from(options.caPem).toString('base64');
  const common = {
    admissionReviewVersions: ['v1', 'v1beta1'],
    sideEffects: 'None',
    failurePolicy: options.failurePolicy,
    timeoutSeconds: options.timeoutSeconds,
    matchPolicy: 'Equivalent',
    namespaceSelector: {
      matchExpressions: [
        { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: [...SYSTEM_NAMESPACES, ...options.excludedNamespaces] },
      ],
    },
    objectSelector: { matchExpressions: [{ key: OPT_OUT_LABEL, operator: 'NotIn', values: ['true'] }] },
  };
  const rule = (resources: RegisteredResource[], operations: string[]) => ({
    apiGroups: [''],
    apiVersions: ['v1'],
    resources: resources.map((r) => r.resource),
    operations,
    scope: '*',
  });
  const validating = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: options.name },
    webhooks: [
      {
        name: VALIDATING_WEBHOOK_NAME,
        clientConfig: { url: `${base}/validate`, caBundle },
        rules: [
          rule([SERVICES], ['CREATE', 'UPDATE']),
          rule([NAMESPACES], ['CREATE', 'UPDATE']),
          ...(options.trafficChecks
            ? [{ ...rule([GATEWAYS, VIRTUAL_SERVICES], ['CREATE', 'UPDATE']), apiGroups: ['networking.istio.io'], apiVersions: ISTIO_API_VERSIONS }]
            : []),
        ],
        ...common,
      },
    ],
  };
  const mutating = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: options.name },
    webhooks: [
      {
        name: MUTATING_WEBHOOK_NAME,
        clientConfig: { url: `${base}/mutate`, caBundle },
        rules: [rule([SERVICES], ['CREATE', 'UPDATE']), rule([NAMESPACES], ['CREATE'])],
        // A later mutating webhook may add ports; run again so they get prefixes too.
        reinvocationPolicy: 'IfNeeded',
        ...common,
      },
      ...(options.holdApplicationUntilProxyStarts
        ? POD_WEBHOOKS.map((hook) => ({
            name: hook.name,
            clientConfig: { url: `${base}/mutate`, caBundle },
            rules: [{ ...rule([PODS], ['CREATE']), scope: 'Namespaced' }],
            // The change is idempotent; run again if a later webhook rewrites the annotation.
            reinvocationPolicy: 'IfNeeded',
            ...common,
            // Losing the annotation is harmless; blocking every Pod of the mesh while the
            // webhook is down is not. So these entries never fail closed.
            failurePolicy: 'Ignore',
            namespaceSelector: { matchExpressions: [...common.namespaceSelector.matchExpressions, ...hook.namespaceExpressions] },
            objectSelector: { matchExpressions: [...common.objectSelector.matchExpressions, POD_OPT_OUT] },
          }))
        : []),
    ],
  };
  return [validating, mutating];
}
