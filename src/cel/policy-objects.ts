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
