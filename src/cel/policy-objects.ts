/** What every admission policy object `mesh-admission policies` prints has in common. */
import { OPT_OUT_LABEL } from '../policies/webhook-scope.ts';

export const ADMISSION_POLICY_API_VERSION = 'admissionregistration.k8s.io/v1';

/** Marks the objects as this tool's, as its other generated objects are. */
export const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'mesh-admission' } as const;

/**
 * Objects labelled `mesh-admission.io/ignore=true` are left alone, as the webhook leaves them.
 * A new object each call: a YAML document holding one object twice would print an alias.
 */
export function optOutSelector(): Record<string, unknown> {
  return { matchExpressions: [{ key: OPT_OUT_LABEL, operator: 'NotIn', values: ['true'] }] };
}

/** What a MutatingAdmissionPolicy of this tool's decides itself; the rest is the same for each. */
export interface MutatingPolicyParts {
  readonly resource: string;
  readonly operations: readonly string[];
  readonly matchConditions: readonly { name: string; expression: string }[];
  readonly variables?: readonly { name: string; expression: string }[];
  readonly mutations: readonly Record<string, unknown>[];
  /** The binding's namespaceSelector; none: every namespace the match conditions let through. */
  readonly namespaceSelector?: Record<string, unknown>;
}

/**
 * A MutatingAdmissionPolicy on a core resource and its binding. An expression that cannot be
 * evaluated refuses the write, as the webhook's failurePolicy does; one pass is enough, since
 * no other mutation undoes what these add.
 */
export function mutatingPolicy(name: string, parts: MutatingPolicyParts): Record<string, unknown>[] {
  return [
    {
      apiVersion: ADMISSION_POLICY_API_VERSION,
      kind: 'MutatingAdmissionPolicy',
      metadata: { name, labels: MANAGED_BY },
      spec: {
        failurePolicy: 'Fail',
        reinvocationPolicy: 'Never',
        matchConstraints: { resourceRules: [{ apiGroups: [''], apiVersions: ['v1'], operations: [...parts.operations], resources: [parts.resource] }] },
        matchConditions: parts.matchConditions,
        ...(parts.variables ? { variables: parts.variables } : {}),
        mutations: parts.mutations,
      },
    },
    {
      apiVersion: ADMISSION_POLICY_API_VERSION,
      kind: 'MutatingAdmissionPolicyBinding',
      metadata: { name, labels: MANAGED_BY },
      spec: {
        policyName: name,
        matchResources: { ...(parts.namespaceSelector ? { namespaceSelector: parts.namespaceSelector } : {}), objectSelector: optOutSelector() },
      },
    },
  ];
}

/** A namespaceSelector that leaves out `namespaces`. */
export function namespacesOtherThan(namespaces: readonly string[]): Record<string, unknown> {
  return { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: [...namespaces] }] };
}
