/**
 * The offline check: the webhook's policies over manifests, as findings a developer can
 * act on in CI. `fix` applies the same mutations the webhook would on CREATE.
 */
import type { Config } from '../config.ts';
import { groupOf, kindKey, mutateObject, validateObject, type PolicySubject } from '../policies/catalog.ts';
import type { KubeObject, MutationNote, Severity } from '../policies/types.ts';
import { worldFromObjects, type TrafficWorld } from '../policies/traffic-world.ts';
import type { SourcedObject } from './load-manifests.ts';

export interface Finding {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly rule: string;
  readonly severity: Severity;
  readonly field: string;
  readonly message: string;
  readonly file: string;
  readonly line: number;
}

export interface FixNote extends MutationNote {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly file: string;
  readonly line: number;
}

export interface CheckResult {
  readonly findings: readonly Finding[];
  /** The objects after mutation (same order as input); equal to the input without `fix`. */
  readonly objects: readonly SourcedObject[];
  readonly fixes: readonly FixNote[];
  readonly checkedObjects: number;
}

type CheckConfig = Pick<Config, 'exemptNamespaces' | 'mutation' | 'injection' | 'namespace'>;

export interface CheckOptions {
  readonly fix: boolean;
  /**
   * What the Gateway and VirtualService checks look things up in. Default: a world of all the
   * input objects (every file given is one world); `check --cluster` adds the live cluster.
   */
  readonly traffic?: TrafficWorld;
  /**
   * Severity of a finding the webhook's own mutation clears on admission (a port it renames):
   * `check` makes it a warning unless --strict, as `kubectl apply` admits such an object.
   * Default error, what the validating rule alone says.
   */
  readonly webhookFixedSeverity?: Severity;
  /** The objects were read back from the cluster (`audit`): the stored-only rules run too. */
  readonly stored?: boolean;
}

export function runCheck(input: readonly SourcedObject[], config: CheckConfig, options: CheckOptions): CheckResult {
  const context = { traffic: options.traffic ?? worldFromObjects(input.map((sourced) => sourced.object)) };
  const findings: Finding[] = [];
  const fixes: FixNote[] = [];
  let checkedObjects = 0;
  // Pods get the hold annotation only in injected namespaces, which only the cluster (the
  // webhook's namespaceSelector) knows: offline, --fix leaves Pods alone.
  const fixConfig = { ...config, holdApplicationUntilProxyStarts: false };
  const objects = input.map((sourced): SourcedObject => {
    const key = kindKey(groupOf(sourced.object.apiVersion), String(sourced.object.kind));
    let subject = subjectOf(sourced.object);
    const where = identify(sourced, subject);
    const mutation = mutateObject(key, subject, fixConfig, 'CREATE');
    if (options.fix && mutation && mutation.notes.length > 0) {
      fixes.push(...mutation.notes.map((note) => ({ ...where, ...note })));
      subject = { ...subject, object: mutation.mutated };
    }
    // Without --fix, what the webhook would write into each field it changes on admission.
    const webhookSets = new Map(options.fix || !mutation ? [] : mutation.notes.map((note) => [note.field, valueAt(mutation.mutated, note.field)]));
    const violations = validateObject(key, subject, config, { context, stored: options.stored === true });
    if (violations) checkedObjects += 1;
    for (const v of violations ?? []) {
      const value = webhookSets.get(v.field);
      findings.push(
        value === undefined
          ? { ...where, rule: v.rule, severity: v.severity, field: v.field, message: v.message }
          : {
              ...where,
              rule: v.rule,
              severity: options.webhookFixedSeverity ?? v.severity,
              field: v.field,
              message: `${v.message} The webhook renames it to ${JSON.stringify(value)} on admission; \`check --fix\` writes that name into the manifest.`,
            },
      );
    }
    return subject.object === sourced.object ? sourced : { ...sourced, object: subject.object };
  });
  return { findings, objects, fixes, checkedObjects };
}

/** The value at a field path such as `spec.ports[0].name`. */
function valueAt(object: unknown, field: string): unknown {
  let node = object;
  for (const part of field.split(/\.|\[(\d+)\]/).filter((p) => p !== undefined && p !== '')) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

function subjectOf(object: KubeObject): PolicySubject {
  const namespace = object.metadata?.namespace;
  return { object, namespace: typeof namespace === 'string' && namespace !== '' ? namespace : undefined };
}

function identify(sourced: SourcedObject, subject: PolicySubject) {
  const name = sourced.object.metadata?.name;
  return {
    kind: String(sourced.object.kind),
    namespace: subject.namespace ?? '',
    name: typeof name === 'string' ? name : '',
    file: sourced.file,
    line: sourced.line,
  };
}

export function hasErrors(result: CheckResult): boolean {
  return result.findings.some((f) => f.severity === 'error');
}
