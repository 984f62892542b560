/**
 * The two webhooks as pure functions of an AdmissionRequest. The HTTP layer only decodes,
 * calls these and encodes; which policy applies to which kind lives in policies/catalog.ts.
 */
import type { Config } from '../config.ts';
import { isRecord, type KubeObject, type MutationResult } from '../policies/types.ts';
import { kindKey, mutateObject, objectOverLimit, validateObject, type PolicyContext, type PolicySubject } from '../policies/catalog.ts';
import { judge, type JudgedViolation } from './decision.ts';
import { limitWarnings, prefixedWarning, truncate } from '../warnings.ts';
import { boundedPatch } from './bounded-patch.ts';
import type { AdmissionRequest } from './review.ts';
import { allowed, denialStatus, denied, patched, type AdmissionAnswer } from './responses.ts';

export type DecisionLabel = 'allowed' | 'denied' | 'warned' | 'mutated' | 'skipped';

export interface Outcome {
  readonly response: AdmissionAnswer;
  readonly decision: DecisionLabel;
  readonly judged: readonly JudgedViolation[];
}

const SKIPPED: Outcome = { response: allowed(), decision: 'skipped', judged: [] };
const ALLOWED: Outcome = { response: allowed(), decision: 'allowed', judged: [] };

/** `context` carries what cluster-aware policies need (e.g. the traffic world); opaque here. */
export function handleValidate(request: AdmissionRequest, config: Config, context: PolicyContext = {}): Outcome {
  if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return SKIPPED;
  const subject = subjectOf(request);
  if (!subject) return SKIPPED;
  const key = kindKey(request.kind.group, request.kind.kind);
  const overLimit = overLimitOutcome(request, subject, key, config);
  if (overLimit) return overLimit;
  const violations = validateObject(key, subject, config, { context });
  if (!violations) return SKIPPED;

  // Only errors can be grandfathered: the old object is judged only when there is one.
  const old = request.operation === 'UPDATE' && violations.some((v) => v.severity === 'error') ? asObject(request.oldObject) : undefined;
  const previous = old ? validateObject(key, { object: old, namespace: subject.namespace }, config, { context }) : undefined;
  const judgement = judge({
    subject: describe(request, subject),
    warningSubject: describe(request, subject, DNS_LABEL_LENGTH),
    violations,
    previous,
    enforcement: config.enforcement,
  });
  const response = judgement.status ? denied(judgement.status, judgement.warnings) : allowed(judgement.warnings);
  const decision: DecisionLabel = !judgement.allowed ? 'denied' : judgement.warnings.length > 0 ? 'warned' : 'allowed';
  return { response, decision, judged: judgement.judged };
}

/**
 * Objects nested deeper than this are not mutated. Mutation deep-copies the object
 * (structuredClone) and diffs the copy (fast-json-patch), and both recurse: near 3,000 levels
 * they overflow the stack, which would be a 500. No Kubernetes object comes close (a Service is
 * under 10 levels; the API server prunes built-in kinds to their schema), so such an object is
 * allowed unchanged with a warning; validation still judges it.
 */
export const MAX_MUTATION_DEPTH = 1000;

export function handleMutate(request: AdmissionRequest, config: Config): Outcome {
  if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return SKIPPED;
  const subject = subjectOf(request);
  if (!subject) return SKIPPED;
  const key = kindKey(request.kind.group, request.kind.kind);
  const overLimit = overLimitOutcome(request, subject, key, config);
  if (overLimit) return overLimit;
  if (nestedDeeperThan(subject.object, MAX_MUTATION_DEPTH)) {
    const warning = truncate(`${describe(request, subject)} was not mutated: it is nested more than ${MAX_MUTATION_DEPTH} levels deep`);
    return { response: allowed([warning]), decision: 'warned', judged: [] };
  }
  const result = mutateObject(key, subject, config, request.operation, asObject(request.oldObject));
  return result ? patchOutcome(subject.object, result, describe(request, subject, DNS_LABEL_LENGTH)) : SKIPPED;
}

/**
 * An object beyond what the webhook judges is refused by both webhooks (allowed with a
 * warning under `enforcement: warn`, which never blocks), before any rule runs on it.
 */
function overLimitOutcome(request: AdmissionRequest, subject: PolicySubject, key: string, config: Config): Outcome | undefined {
  const reason = objectOverLimit(key, subject, config);
  if (reason === undefined) return undefined;
  const message = `${describe(request, subject)} was not admitted: ${reason}`;
  if (config.enforcement === 'warn') {
    return { response: allowed([truncate(message)]), decision: 'warned', judged: [] };
  }
  return { response: denied(denialStatus(message)), decision: 'denied', judged: [] };
}

/**
 * The patch is the diff between the original and the mutated copy, never hand-built paths,
 * and never bigger than one replace of the field that holds the changes (bounded-patch.ts).
 * Each warning starts with the object it is about: `kubectl apply -f dir/` prints the warnings
 * of many objects, and a field path alone cannot be matched to one of them.
 */
function patchOutcome(original: KubeObject, result: MutationResult<KubeObject>, subject: string): Outcome {
  const patch = boundedPatch(original, result.mutated);
  const warnings = () => limitWarnings(result.notes, (note) => prefixedWarning(subject, '', note), subject);
  if (patch.length === 0) {
    // A note without a change says why a mutation could not be made (e.g. an unreadable
    // proxy.istio.io/config annotation): the user still gets it as a warning.
    if (result.notes.length === 0) return ALLOWED;
    return { response: allowed(warnings()), decision: 'warned', judged: [] };
  }
  return { response: patched(patch, warnings()), decision: 'mutated', judged: [] };
}

/** Reads object only when it is a JSON object; anything else is not ours to judge. */
function subjectOf(request: AdmissionRequest): PolicySubject | undefined {
  const object = asObject(request.object);
  if (!object) return undefined;
  const metadataNamespace = asObject(object.metadata)?.['namespace'];
  const namespace = request.namespace || (typeof metadataNamespace === 'string' && metadataNamespace !== '' ? metadataNamespace : undefined);
  return { object, namespace };
}

function describe(request: AdmissionRequest, subject: PolicySubject, max = MAX_NAME_IN_TEXT): string {
  const metadataName = asObject(subject.object.metadata)?.['name'];
  const name = bounded(typeof metadataName === 'string' && metadataName !== '' ? metadataName : request.name || '(unnamed)', max);
  const kind = bounded(request.kind.kind, max);
  return subject.namespace ? `${kind} ${bounded(subject.namespace, max)}/${name}` : `${kind} ${name}`;
}

/**
 * How much of a name starts each warning. Service and Namespace names are DNS labels (63
 * characters); a longer name would take the room the message needs.
 */
const DNS_LABEL_LENGTH = 63;

/**
 * Kubernetes names are at most 253 characters, but the mutating webhook sees objects before
 * the API server validates them: a 1 MB name must not make a 1 MB message.
 */
export const MAX_NAME_IN_TEXT = 253;

export function bounded(text: string, max = MAX_NAME_IN_TEXT): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

/**
 * Whether objects and arrays in `value` nest more than `limit` levels. Any input depth is safe
 * to measure: the recursion stops at `limit` levels (MAX_MUTATION_DEPTH, far below what
 * overflows the stack). It runs on every mutation request, so it allocates nothing per node:
 * an explicit stack fed by Object.values made it 2 to 6 times slower on large objects.
 */
function nestedDeeperThan(value: unknown, limit: number): boolean {
  return value !== null && typeof value === 'object' && deeperThan(value, 1, limit);
}

function deeperThan(node: object, depth: number, limit: number): boolean {
  if (depth > limit) return true;
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) {
      const child: unknown = node[i];
      if (child !== null && typeof child === 'object' && deeperThan(child, depth + 1, limit)) return true;
    }
    return false;
  }
  // Parsed JSON has no enumerable inherited properties: for…in sees exactly Object.values' keys.
  for (const key in node) {
    const child: unknown = (node as Record<string, unknown>)[key];
    if (child !== null && typeof child === 'object' && deeperThan(child, depth + 1, limit)) return true;
  }
  return false;
}

function asObject(value: unknown): KubeObject | undefined {
  return isRecord(value) ? (value as KubeObject) : undefined;
}
