/**
 * Which policy applies to which kind of object, shared by the webhook and the offline
 * `check` so both always reach the same verdict for the same object.
 */
import type { Config } from '../config.ts';
import type { KubeObject, MutationResult, Violation } from './types.ts';
import { isServiceSkipped, validateServicePorts } from './service-ports.ts';
import { mutateServicePorts } from './service-port-mutation.ts';
import { mutateNamespace, validateNamespace } from './namespace-injection.ts';
import { mutatePodProxyConfig } from './pod-proxy-config.ts';
import { validateGateway } from './gateway.ts';
import { validateVirtualService } from './virtual-service.ts';
import { exceededLimit } from './object-limits.ts';
import { isOutsideWebhookScope } from './webhook-scope.ts';
import { DEFAULT_NAMESPACE, ISTIO_NETWORKING_GROUP, type TrafficWorld } from './traffic-world.ts';

/** `group/Kind`, with the empty group for the core API (`/Service`). */
export type KindKey = string;

export interface PolicySubject {
  readonly object: KubeObject;
  /** Namespace the object lives in (namespaced kinds), when known. */
  readonly namespace: string | undefined;
}

/**
 * What some policies need beyond the object and the configuration. Opaque to the HTTP layer,
 * which only passes it through.
 */
export interface PolicyContext {
  /**
   * The cluster as the Gateway and VirtualService checks see it. Without it only their
   * structural rules run (the webhook with traffic checks off).
   */
  readonly traffic?: TrafficWorld | undefined;
}

type PolicyConfig = Pick<Config, 'exemptNamespaces' | 'mutation' | 'injection' | 'namespace'> &
  Partial<Pick<Config, 'holdApplicationUntilProxyStarts'>>;

export function kindKey(group: string | undefined, kind: string): KindKey {
  return `${group ?? ''}/${kind}`;
}

/** The API group of an `apiVersion` (`v1` → core, `networking.istio.io/v1` → networking.istio.io). */
export function groupOf(apiVersion: unknown): string {
  if (typeof apiVersion !== 'string') return '';
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

/** Left alone as the webhook configurations' selectors leave it (webhook-scope.ts). */
function isExempt(key: KindKey, subject: PolicySubject, config: PolicyConfig): boolean {
  const name = subject.object.metadata?.name;
  const scopeNamespace = key === '/Namespace' ? (typeof name === 'string' ? name : undefined) : subject.namespace;
  return isOutsideWebhookScope(subject.object, scopeNamespace, config);
}

/** Validation rules for an object, or undefined when no policy applies to it (kind, exemption). */
export function validateObject(
  key: KindKey,
  subject: PolicySubject,
  config: PolicyConfig,
  context: PolicyContext = {},
): Violation[] | undefined {
  if (isExempt(key, subject, config)) return undefined;
  switch (key) {
    case '/Service':
      if (isServiceSkipped(subject.object, subject.namespace, config.exemptNamespaces)) return undefined;
      return validateServicePorts(subject.object, config.mutation);
    case '/Namespace':
      return validateNamespace(subject.object);
    case `${ISTIO_NETWORKING_GROUP}/Gateway`:
      return validateGateway(subject.object, context.traffic);
    case `${ISTIO_NETWORKING_GROUP}/VirtualService`:
      // An object without a namespace lands where kubectl puts it by default.
      return validateVirtualService(subject.object, subject.namespace ?? DEFAULT_NAMESPACE, context.traffic);
    default:
      return undefined;
  }
}

/**
 * Why the object is beyond what the webhook judges (object-limits.ts), when a policy would
 * judge it; undefined otherwise. Exempt and skipped objects are never refused.
 */
export function objectOverLimit(key: KindKey, subject: PolicySubject, config: PolicyConfig): string | undefined {
  if (isExempt(key, subject, config)) return undefined;
  switch (key) {
    case '/Service':
      if (isServiceSkipped(subject.object, subject.namespace, config.exemptNamespaces)) return undefined;
      return exceededLimit('Service', subject.object);
    case '/Namespace':
      return exceededLimit('Namespace', subject.object);
    default:
      return undefined;
  }
}

export type MutationOperation = 'CREATE' | 'UPDATE';

/** The mutation for an object, or undefined when none applies. */
export function mutateObject(
  key: KindKey,
  subject: PolicySubject,
  config: PolicyConfig,
  operation: MutationOperation,
  oldObject?: KubeObject,
): MutationResult<KubeObject> | undefined {
  if (isExempt(key, subject, config)) return undefined;
  switch (key) {
    case '/Service':
      if (isServiceSkipped(subject.object, subject.namespace, config.exemptNamespaces)) return undefined;
      return mutateServicePorts(subject.object, config.mutation, operation === 'UPDATE' ? oldObject : undefined);
    case '/Namespace':
      // Injection labels are a decision made when a namespace is created; later edits are the owner's.
      if (operation !== 'CREATE') return undefined;
      return mutateNamespace(subject.object, {
        ...config.injection,
        excludedNamespaces: [...config.injection.excludedNamespaces, ...config.exemptNamespaces, config.namespace],
      });
    case '/Pod':
      // Istio reads the annotation when it injects the sidecar, which happens on CREATE. Only
      // Pods of injected namespaces get here: the webhook configuration's namespaceSelector
      // decides that, so nothing here looks the namespace up.
      if (operation !== 'CREATE' || config.holdApplicationUntilProxyStarts !== true) return undefined;
      return mutatePodProxyConfig(subject.object);
    default:
      return undefined;
  }
}
