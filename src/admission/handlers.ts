/**
 * The two webhooks as pure functions of an AdmissionRequest. The HTTP layer only decodes,
 * calls these and encodes; which policy applies to which kind lives in policies/catalog.ts.
 */
import jsonpatch from 'fast-json-patch';
import type { Config } from '../config.ts';
import type { KubeObject, MutationResult } from '../policies/types.ts';
import { kindKey, mutateObject, validateObject, type PolicySubject } from '../policies/catalog.ts';
import { judge, truncate, type JudgedViolation } from './decision.ts';
import type { AdmissionRequest, AdmissionResponse } from './review.ts';

export type DecisionLabel = 'allowed' | 'denied' | 'warned' | 'mutated' | 'skipped';

export interface Outcome {
  readonly response: Omit<AdmissionResponse, 'uid'>;
  readonly decision: DecisionLabel;
  readonly judged: readonly JudgedViolation[];
}

const SKIPPED: Outcome = { response: { allowed: true }, decision: 'skipped', judged: [] };
const ALLOWED: Outcome = { response: { allowed: true }, decision: 'allowed', judged: [] };

export function handleValidate(request: AdmissionRequest, config: Config): Outcome {
  if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return SKIPPED;
  const subject = subjectOf(request);
  if (!subject) return SKIPPED;
  const key = kindKey(request.kind.group, request.kind.kind);
  const violations = validateObject(key, subject, config);
  if (!violations) return SKIPPED;

  const old = request.operation === 'UPDATE' ? asObject(request.oldObject) : undefined;
  const previous = old ? validateObject(key, { object: old, namespace: subject.namespace }, config) : undefined;
  const judgement = judge({ subject: describe(request, subject), violations, previous, enforcement: config.enforcement });
  const response = {
    allowed: judgement.allowed,
    ...(judgement.status ? { status: judgement.status } : {}),
    ...(judgement.warnings.length > 0 ? { warnings: judgement.warnings } : {}),
  };
  const decision: DecisionLabel = !judgement.allowed ? 'denied' : judgement.warnings.length > 0 ? 'warned' : 'allowed';
  return { response, decision, judged: judgement.judged };
}

export function handleMutate(request: AdmissionRequest, config: Config): Outcome {
  if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return SKIPPED;
  const subject = subjectOf(request);
  if (!subject) return SKIPPED;
  const key = kindKey(request.kind.group, request.kind.kind);
  const result = mutateObject(key, subject, config, request.operation, asObject(request.oldObject));
  return result ? patchOutcome(subject.object, result) : SKIPPED;
}

/** The patch is the diff between the original and the mutated copy: never hand-built paths. */
function patchOutcome(original: KubeObject, result: MutationResult<KubeObject>): Outcome {
  const patch = jsonpatch.compare(original, result.mutated);
  if (patch.length === 0) return ALLOWED;
  return {
    response: {
      allowed: true,
      patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
      patchType: 'JSONPatch',
      warnings: result.notes.map((note) => truncate(note.message)),
    },
    decision: 'mutated',
    judged: [],
  };
}

/** Reads object only when it is a JSON object; anything else is not ours to judge. */
function subjectOf(request: AdmissionRequest): PolicySubject | undefined {
  const object = asObject(request.object);
  if (!object) return undefined;
  const metadataNamespace = asObject(object.metadata)?.['namespace'];
  const namespace = request.namespace || (typeof metadataNamespace === 'string' && metadataNamespace !== '' ? metadataNamespace : undefined);
  return { object, namespace };
}

function describe(request: AdmissionRequest, subject: PolicySubject): string {
  const metadataName = asObject(subject.object.metadata)?.['name'];
  const name = typeof metadataName === 'string' && metadataName !== '' ? metadataName : request.name || '(unnamed)';
  return subject.namespace ? `${request.kind.kind} ${subject.namespace}/${name}` : `${request.kind.kind} ${name}`;
}

function asObject(value: unknown): KubeObject | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as KubeObject) : undefined;
}
