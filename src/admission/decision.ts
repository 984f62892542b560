/**
 * Turns policy results into an admission decision: enforcement mode, grandfathering of
 * violations that already existed before an UPDATE, and the texts users read (denial
 * message, status causes, warnings). Pure: no HTTP, no I/O.
 */
import type { RuleId, Violation } from '../policies/types.ts';
import { limitWarnings, prefixedWarning, truncate } from '../warnings.ts';
import type { Enforcement } from '../config.ts';
import type { AdmissionStatus } from './review.ts';
import { denialStatus } from './responses.ts';

/** Problems spelled out in a denial message, and causes listed in its details, at most. */
export const MAX_LISTED_PROBLEMS = 20;
export const MAX_CAUSES = 100;

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
  /** The object, as the denial message names it. */
  readonly subject: string;
  /**
   * The object as each warning starts with it (`Service shop/web`): `kubectl apply -f dir/`
   * prints the warnings of many objects, and a field path alone cannot be matched to one.
   * Shorter than `subject` where names are absurdly long: it takes room from the message.
   */
  readonly warningSubject?: string;
  readonly violations: readonly Violation[];
  /** Violations of oldObject on UPDATE; undefined on CREATE. */
  readonly previous?: readonly Violation[] | undefined;
  readonly enforcement: Enforcement;
}

export function judge({ subject, warningSubject = subject, violations, previous, enforcement }: JudgeInput): Judgement {
  const previousIdentities = new Set(previous?.map((v) => v.identity));
  const judged = violations.map((violation): JudgedViolation => {
    const preexisting = previousIdentities.size > 0 && previousIdentities.has(violation.identity);
    const enforced = violation.severity === 'error' && enforcement === 'deny' && !preexisting;
    return { violation, enforced, preexisting };
  });
  const denials = judged.filter((j) => j.enforced).map((j) => j.violation);
  const warned = judged.filter((j) => !j.enforced);
  const grandfathered = warned.filter((j) => j.preexisting && j.violation.severity === 'error').length;
  // Said once, after the warnings: a note inside each one would push it past the length limit.
  const warnings = limitWarnings(warned, (j) => prefixedWarning(warningSubject, `[${j.violation.rule}] `, j.violation), warningSubject, grandfathered > 0 ? 1 : 0);
  if (grandfathered > 0) warnings.push(truncate(`${warningSubject}: ${grandfatheringNote(grandfathered, warned.length)}`));
  if (denials.length === 0) return { allowed: true, judged, warnings };
  return { allowed: false, judged, warnings, status: denialOf(subject, denials) };
}

/**
 * How many violations of each rule were enforced and how many only warned: what the metrics
 * count and the log names. Counted once per answer, so a Gateway with 100,000 findings costs
 * one metric update per rule, not one per finding.
 */
export function tallyRules(judged: readonly JudgedViolation[]): Map<RuleId, { enforced: number; warned: number }> {
  const tally = new Map<RuleId, { enforced: number; warned: number }>();
  for (const { violation, enforced } of judged) {
    let counts = tally.get(violation.rule);
    if (counts === undefined) tally.set(violation.rule, (counts = { enforced: 0, warned: 0 }));
    if (enforced) counts.enforced += 1;
    else counts.warned += 1;
  }
  return tally;
}

function grandfatheringNote(grandfathered: number, warned: number): string {
  const which = grandfathered === warned ? (warned === 1 ? 'this problem' : 'these problems') : `${grandfathered} of these problems`;
  return `${which} already existed before this update, so ${grandfathered === 1 ? 'it does' : 'they do'} not block it; fix ${grandfathered === 1 ? 'it' : 'them'} when you can`;
}

function denialOf(subject: string, denials: readonly Violation[]): AdmissionStatus {
  const lines = denials.slice(0, MAX_LISTED_PROBLEMS).map((v) => `[${v.rule}] ${v.message}`);
  const unlisted = denials.length - lines.length;
  if (unlisted > 0) lines.push(`… and ${unlisted} more (run \`mesh-admission check\` on the manifest to list them all)`);
  const message =
    denials.length === 1
      ? `${subject} is not ready for the Istio mesh: ${lines[0]}`
      : `${subject} is not ready for the Istio mesh (${denials.length} problems):\n- ${lines.join('\n- ')}`;
  return denialStatus(message, denials.slice(0, MAX_CAUSES).map((v) => ({ reason: v.rule, message: v.message, field: v.field })));
}
