/**
 * One finding for a problem that several places of an object share. Istio's validation gives
 * one identical message however many servers or routes have the problem, and fixing it is one
 * change made in each place: the finding names the places, and its identity names the problem,
 * not where it is, so grandfathering on UPDATE survives reordering.
 *
 * Pure.
 */
import type { RuleId, Violation } from './types.ts';
import { LazilyWorded } from './messages.ts';

/** Places a message names before it only counts the rest, so it stays one warning long. */
const LISTED_PLACES = 3;

/** `a`, `a and b`, `a, b and c`, or `a, b, c and 4 more`. */
export function listPlaces(paths: readonly string[]): string {
  if (paths.length <= 1) return paths[0] ?? '';
  if (paths.length <= LISTED_PLACES) return `${paths.slice(0, -1).join(', ')} and ${paths.at(-1) ?? ''}`;
  return `${paths.slice(0, LISTED_PLACES).join(', ')} and ${paths.length - LISTED_PLACES} more`;
}

/** What one problem is called and how it is worded, once the places that have it are known. */
export interface Problem {
  readonly rule: RuleId;
  /** Which problem of the rule this is; places with the same key share one finding. */
  readonly key: string;
  /** The field path of this place, e.g. `spec.servers[1].tls.privateKey`. */
  readonly field: string;
  /** The message forms, most helpful first, for the places written as `where`. */
  readonly words: (where: string) => readonly string[];
}

/**
 * The problems grouped by rule and key, in the order they were first found: one error each,
 * its field the first place, its message naming the places.
 */
export function oneFindingPerProblem(problems: readonly Problem[]): Violation[] {
  const grouped = new Map<string, { problem: Problem; fields: string[] }>();
  for (const problem of problems) {
    const id = `${problem.rule}|${problem.key}`;
    const group = grouped.get(id);
    if (group) group.fields.push(problem.field);
    else grouped.set(id, { problem, fields: [problem.field] });
  }
  return [...grouped].map(([identity, { problem, fields }]) =>
    new LazilyWorded(problem.rule, 'error', fields[0] ?? '', identity, () => {
      const full = problem.words(listPlaces(fields));
      if (fields.length <= 1) return full;
      // When the places do not fit, the first one and a count still say where to start.
      const short = problem.words(`${fields[0] ?? ''} and ${fields.length - 1} more`);
      return full.flatMap((form, index) => [form, ...(short[index] === undefined ? [] : [short[index]])]);
    }),
  );
}
