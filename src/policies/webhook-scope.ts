/**
 * The objects the webhook leaves alone whatever they hold: what its configurations'
 * namespaceSelector and objectSelector keep the API server from sending (src/webhook-config.ts,
 * the chart's webhooks), decided once here so that the webhook itself, `check` and `audit` agree
 * on it: an object audit reports is one the webhook would judge on its next write.
 */
import type { Config } from '../config.ts';
import { KUBERNETES_SYSTEM_NAMESPACES } from './system-namespaces.ts';
import { isRecord, type KubeObject } from './types.ts';

/** Objects carrying this label with value "true" are never sent to the webhook. */
export const OPT_OUT_LABEL = 'mesh-admission.io/ignore';

type ScopeConfig = Pick<Config, 'exemptNamespaces' | 'namespace'>;

/**
 * Namespaces whose objects (and the Namespace objects themselves) the webhook never judges:
 * Kubernetes' own, the webhook's own (it must never block its own recovery), and the
 * configured exemptions.
 */
export function exemptNamespaces(config: ScopeConfig): readonly string[] {
  return [...new Set([...KUBERNETES_SYSTEM_NAMESPACES, config.namespace, ...config.exemptNamespaces])];
}

/**
 * Whether the webhook leaves `object` alone. `scopeNamespace` is the namespace it lives in (the
 * admission request's, or the object's own) or, for a Namespace, its own name: the
 * namespaceSelector matches a Namespace by its `kubernetes.io/metadata.name` label.
 */
export function isOutsideWebhookScope(object: KubeObject, scopeNamespace: string | undefined, config: ScopeConfig): boolean {
  if (scopeNamespace !== undefined && exemptNamespaces(config).includes(scopeNamespace)) return true;
  const labels = isRecord(object.metadata) && isRecord(object.metadata.labels) ? object.metadata.labels : {};
  return labels[OPT_OUT_LABEL] === 'true';
}
