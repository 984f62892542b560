/**
 * Turns policy results into an admission decision: enforcement mode, grandfathering of
 * violations that already existed before an UPDATE, and the texts users read (denial
 * message, status causes, warnings). Pure: no HTTP, no I/O.
 */
import type { Violation } from '../policies/types.ts';
import type { Enforcement } from '../config.ts';
import type { AdmissionStatus } from './review.ts';

/** Kubernetes drops warnings longer than this; kubectl shows each on its own line. */
export const MAX_WARNING_LENGTH = 256;

/**
 * A denial is answered as 403 Forbidden: kubectl then prints the whole message after
 * `admission webhook "…" denied the request:`. With 422 Invalid kubectl would print only the
 * causes and drop the webhook's name and the explanation.
 */
export const DENIAL_CODE = 403;
export const DENIAL_REASON = 'Forbidden';

export interface JudgedViolation {
  readonly violation: Violation;
  /** True when this violation is why the request is denied. */
  readonly enforced: boolean;
  /** True when the same violation was already present in oldObject (UPDATE). */
  readonly preexisting: boolean;
}

export interface Judgement {
  readonly allowed: boolean;
  readonly judged: readonly JudgedViolation[];
  readonly warnings: readonly string[];
  readonly status?: AdmissionStatus;
}

export interface JudgeInput {
  readonly subject: string;
  readonly violations: readonly Violation[];
  /** Violations of oldObject on UPDATE; undefined on CREATE. */
  readonly previous?: readonly Violation[] | undefined;
  readonly enforcement: Enforcement;
}

export function judge({ subject, violations, previous, enforcement }: JudgeInput): Judgement {
  const previousIdentities = new Set(previous?.map((v) => v.identity));
  const judged = violations.map((violation): JudgedViolation => {
    const preexisting = previousIdentities.has(violation.identity);
    const enforced = violation.severity === 'error' && enforcement === 'deny' && !preexisting;
    return { violation, enforced, preexisting };
  });
  const denials = judged.filter((j) => j.enforced).map((j) => j.violation);
  const warnings = judged.filter((j) => !j.enforced).map(warningFor);
  if (denials.length === 0) return { allowed: true, judged, warnings };
  return { allowed: false, judged, warnings, status: denialStatus(subject, denials) };
}

function warningFor({ violation, preexisting }: JudgedViolation): string {
  // The note goes first: a long message may be cut at the warning limit.
  const note = preexisting ? ' already present before this update, not blocking:' : '';
  return truncate(`[${violation.rule}]${note} ${violation.message}`);
}

function denialStatus(subject: string, denials: readonly Violation[]): AdmissionStatus {
  const lines = denials.map((v) => `[${v.rule}] ${v.message}`);
  const message =
    lines.length === 1
      ? `${subject} is not ready for the Istio mesh: ${lines[0]}`
      : `${subject} is not ready for the Istio mesh (${lines.length} problems):\n- ${lines.join('\n- ')}`;
  return {
    code: DENIAL_CODE,
    reason: DENIAL_REASON,
    message,
    details: { causes: denials.map((v) => ({ reason: v.rule, message: v.message, field: v.field })) },
  };
}

export function truncate(text: string, max = MAX_WARNING_LENGTH): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
