/**
 * The ValidatingWebhookConfiguration and MutatingWebhookConfiguration that register a
 * webhook served at a URL (local development, the e2e suite). The Helm chart renders the
 * same shape for in-cluster installs.
 */
import { POD, POLICY_MODULES, type Operation, type PolicyModule } from './policies/registry.ts';
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

export { REGISTERED_KINDS } from './policies/registry.ts';

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
  const enabled = (module: PolicyModule) =>
    module.enabledBy === undefined || (module.enabledBy === 'trafficChecks' ? options.trafficChecks === true : options.holdApplicationUntilProxyStarts === true);
  const modules = POLICY_MODULES.filter(enabled);
  // The Pod entries are webhooks of their own, with the namespace selectors of injection.
  const shared = modules.filter((module) => module !== podModule);
  const validating = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: options.name },
    webhooks: [
      {
        name: VALIDATING_WEBHOOK_NAME,
        clientConfig: { url: `${base}/validate`, caBundle },
        rules: webhookRules(shared, (module) => module.validates),
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
        rules: webhookRules(shared, (module) => module.mutates),
        // A later mutating webhook may add ports; run again so they get prefixes too.
        reinvocationPolicy: 'IfNeeded',
        ...common,
      },
      ...(modules.includes(podModule)
        ? POD_WEBHOOKS.map((hook) => ({
            name: hook.name,
            clientConfig: { url: `${base}/mutate`, caBundle },
            rules: webhookRules([podModule], (module) => module.mutates, 'Namespaced'),
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

const podModule = POLICY_MODULES.find((module) => module.kind === POD) as PolicyModule;

/** A rule of a webhook configuration: what the API server sends. */
export interface WebhookRule {
  readonly apiGroups: string[];
  readonly apiVersions: string[];
  readonly resources: string[];
  readonly operations: Operation[];
  readonly scope: '*' | 'Namespaced' | 'Cluster';
}

/**
 * The rules sending the modules' kinds for the operations `operationsOf` gives: one rule per
 * API group, versions and operations (kinds of one group share a rule), in registry order.
 */
export function webhookRules(
  modules: readonly PolicyModule[],
  operationsOf: (module: PolicyModule) => readonly Operation[],
  scope: WebhookRule['scope'] = '*',
): WebhookRule[] {
  const rules = new Map<string, WebhookRule>();
  for (const module of modules) {
    const operations = operationsOf(module);
    if (operations.length === 0) continue;
    const { group, versions, resource } = module.kind;
    const key = JSON.stringify([group, versions, operations]);
    const rule = rules.get(key) ?? { apiGroups: [group], apiVersions: [...versions], resources: [], operations: [...operations], scope };
    rule.resources.push(resource);
    rules.set(key, rule);
  }
  return [...rules.values()];
}
