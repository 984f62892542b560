/**
 * The webhook's mutations as MutatingAdmissionPolicies the API server applies itself
 * (admissionregistration.k8s.io/v1, Kubernetes 1.36 or newer), printed by `mesh-admission
 * policies --mutations` after the validating policies: the Service port renames
 * (port-renames.ts), and the namespace injection label — a new namespace gets the label of the
 * configured injection mode unless it is excluded or already carries a decision about the mesh.
 */
import type { Config } from '../config.ts';
import { ALWAYS_EXCLUDED_NAMESPACES, DECISION_LABELS, planLabel } from '../policies/namespace-injection.ts';
import { injectionOptions } from '../policies/registry.ts';
import { exemptNamespaces } from '../policies/webhook-scope.ts';
import { mutatingPolicy } from './policy-objects.ts';
import { celList, celString } from './port-classification.ts';
import { portRenamePolicies } from './port-renames.ts';

type PolicyConfig = Pick<Config, 'injection' | 'exemptNamespaces' | 'namespace' | 'serviceName' | 'mutation'>;

/** The Service port renames, then the namespace label (when the config adds one), each with its binding. */
export function mutatingPolicies(config: PolicyConfig): Record<string, unknown>[] {
  return [...portRenamePolicies(config), ...namespaceLabelPolicies(config)];
}

/** The policy and its binding, or nothing when the config adds no label (injection disabled). */
export function namespaceLabelPolicies(config: PolicyConfig): Record<string, unknown>[] {
  const options = injectionOptions(config);
  const label = options.enabled ? planLabel(options) : undefined;
  if (label === undefined) return [];
  const name = `${config.serviceName}-namespace-injection`;
  const excluded = [...new Set([...ALWAYS_EXCLUDED_NAMESPACES, ...exemptNamespaces(config), ...options.excludedNamespaces])];
  const labels = 'object.metadata.labels';
  return mutatingPolicy(name, {
    resource: 'namespaces',
    operations: ['CREATE'],
    matchConditions: [
      { name: 'not-excluded', expression: `!has(object.metadata.name) || !(object.metadata.name in ${celList(excluded)})` },
      { name: 'no-mesh-decision-yet', expression: `!has(${labels}) || !${celList(DECISION_LABELS)}.exists(key, key in ${labels})` },
    ],
    mutations: [
      {
        patchType: 'ApplyConfiguration',
        applyConfiguration: { expression: `Object{metadata: Object.metadata{labels: {${celString(label.key)}: ${celString(label.value)}}}}` },
      },
    ],
  });
}
