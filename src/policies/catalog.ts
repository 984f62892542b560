/**
 * Which policy applies to which kind of object, looked up in the registry (registry.ts) and
 * shared by the webhook, the offline `check` and `audit`, so all reach the same verdict for
 * the same object.
 */
import type { KubeObject, MutationResult, Violation } from './types.ts';
import { isOutsideWebhookScope } from './webhook-scope.ts';
import { policyModuleFor, type KindKey, type Operation, type PolicyConfig, type PolicyContext, type PolicyInput, type PolicyModule } from './registry.ts';

export { kindKey, type KindKey, type PolicyContext } from './registry.ts';

export interface PolicySubject {
  readonly object: KubeObject;
  /** Namespace the object lives in (namespaced kinds), when known. */
  readonly namespace: string | undefined;
}

export type MutationOperation = Operation;

/** The API group of an `apiVersion` (`v1` → core, `networking.istio.io/v1` → networking.istio.io). */
export function groupOf(apiVersion: unknown): string {
  if (typeof apiVersion !== 'string') return '';
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

/** Left alone as the webhook configurations' selectors leave it (webhook-scope.ts). */
function isExempt(key: KindKey, subject: PolicySubject, config: PolicyConfig): boolean {
  const name = subject.object.metadata?.name;
  // The namespaceSelector matches a Namespace by its own name.
  const scopeNamespace = key === '/Namespace' ? (typeof name === 'string' ? name : undefined) : subject.namespace;
  return isOutsideWebhookScope(subject.object, scopeNamespace, config);
}

/** The module and the input for it, or undefined when no policy applies (kind, exemption, skip). */
function applicable(key: KindKey, subject: PolicySubject, config: PolicyConfig, input: Omit<PolicyInput, 'object' | 'namespace' | 'config'>): [PolicyModule, PolicyInput] | undefined {
  const module = policyModuleFor(key);
  if (!module) return undefined;
  if (isExempt(key, subject, config)) return undefined;
  const full: PolicyInput = { ...input, object: subject.object, namespace: subject.namespace, config };
  if (module.skips?.(full)) return undefined;
  return [module, full];
}

export interface ValidateOptions {
  readonly context?: PolicyContext;
  /** The object is read back from the cluster (`audit`): the stored-only rules run too. */
  readonly stored?: boolean;
}

/** Validation rules for an object, or undefined when no policy applies to it (kind, exemption). */
export function validateObject(key: KindKey, subject: PolicySubject, config: PolicyConfig, options: ValidateOptions = {}): Violation[] | undefined {
  const found = applicable(key, subject, config, { context: options.context ?? {}, operation: 'CREATE' });
  if (!found) return undefined;
  const [module, input] = found;
  if (!module.validate) return undefined;
  const violations = module.validate(input);
  return options.stored && module.validateStored ? [...violations, ...module.validateStored(input)] : violations;
}

/**
 * Why the object is beyond what the webhook judges (object-limits.ts), when a policy would
 * judge it; undefined otherwise. Exempt and skipped objects are never refused.
 */
export function objectOverLimit(key: KindKey, subject: PolicySubject, config: PolicyConfig): string | undefined {
  const found = applicable(key, subject, config, { context: {}, operation: 'CREATE' });
  return found?.[0].overLimit?.(found[1]);
}

/** The mutation for an object, or undefined when none applies. */
export function mutateObject(
  key: KindKey,
  subject: PolicySubject,
  config: PolicyConfig,
  operation: MutationOperation,
  oldObject?: KubeObject,
): MutationResult<KubeObject> | undefined {
  const found = applicable(key, subject, config, { context: {}, operation, oldObject });
  if (!found) return undefined;
  const [module, input] = found;
  if (!module.mutate || !module.mutates.includes(operation)) return undefined;
  return module.mutate(input);
}
