/**
 * The comparison behind the differential test: Istio's findings and `check`'s, both reduced
 * to (rule, object) counts per scenario, and the differences between them sorted into
 * deliberate (listed in deliberate-differences.txt with a reason) and unexpected.
 *
 * Counts are of distinct problems: Istio repeats an identical message for every route that
 * has the problem (two routes to one missing host), `check` gives it once, so identical Istio
 * messages about one object count once.
 */
import { ruleForIstioFinding, type IstioFinding } from './rule-mapping.ts';

/** One `check -o json` violation, reduced to what is compared. */
export interface CheckFinding {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly rule: string;
}

export interface Difference {
  readonly scenario: string;
  readonly rule: string;
  /** `Kind namespace/name`, or `Kind name` for an object without a namespace. */
  readonly object: string;
  readonly istio: number;
  readonly check: number;
  /** The messages Istio gave for it, to tell what it saw. */
  readonly istioMessages: readonly string[];
}

/** Which side reports the finding more often: the side a deliberate difference names. */
export type Side = 'istio' | 'check';

export function sideOf(difference: Difference): Side {
  return difference.istio > difference.check ? 'istio' : 'check';
}

export interface ScenarioComparison {
  /** (rule, object) pairs that either side reported. */
  readonly compared: number;
  readonly differences: readonly Difference[];
}

export function objectLabel(kind: string, namespace: string, name: string): string {
  return namespace === '' ? `${kind} ${name}` : `${kind} ${namespace}/${name}`;
}

export function compareScenario(scenario: string, istio: readonly IstioFinding[], check: readonly CheckFinding[]): ScenarioComparison {
  const counts = new Map<string, { rule: string; object: string; istio: number; check: number; istioMessages: string[] }>();
  const entry = (rule: string, object: string) => {
    const key = `${rule}\u0000${object}`;
    let found = counts.get(key);
    if (!found) {
      found = { rule, object, istio: 0, check: 0, istioMessages: [] };
      counts.set(key, found);
    }
    return found;
  };
  for (const finding of istio) {
    const rule = ruleForIstioFinding(finding);
    if (rule === undefined) continue;
    const counted = entry(rule, objectLabel(finding.kind, finding.namespace, finding.name));
    const message = `${finding.code} ${finding.message}`;
    if (counted.istioMessages.includes(message)) continue;
    counted.istio += 1;
    counted.istioMessages.push(message);
  }
  for (const finding of check) entry(finding.rule, objectLabel(finding.kind, finding.namespace, finding.name)).check += 1;
  const differences = [...counts.values()]
    .filter((counted) => counted.istio !== counted.check)
    .map((counted) => ({ scenario, ...counted }))
    .sort((a, b) => a.rule.localeCompare(b.rule) || a.object.localeCompare(b.object));
  return { compared: counts.size, differences };
}

/** One line of deliberate-differences.txt: `scenario | rule | object | side | reason`. */
export interface DeliberateDifference {
  readonly line: number;
  /** A scenario id, or `*` for every scenario. */
  readonly scenario: string;
  readonly rule: string;
  /** An object label, or `*` for every object. */
  readonly object: string;
  readonly side: Side;
  readonly reason: string;
}

export function parseDeliberateDifferences(text: string): DeliberateDifference[] {
  const entries: DeliberateDifference[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const fields = line.split('|').map((field) => field.trim());
    const [scenario, rule, object, side, reason] = fields;
    if (fields.length !== 5 || !scenario || !rule || !object || !reason || (side !== 'istio' && side !== 'check')) {
      throw new Error(`deliberate-differences.txt:${index + 1}: want "scenario | rule | object | istio|check | reason", got: ${raw}`);
    }
    entries.push({ line: index + 1, scenario, rule, object, side, reason });
  });
  return entries;
}

export function matches(entry: DeliberateDifference, difference: Difference): boolean {
  return (entry.scenario === '*' || entry.scenario === difference.scenario) &&
    entry.rule === difference.rule &&
    (entry.object === '*' || entry.object === difference.object) &&
    entry.side === sideOf(difference);
}

export interface Verdict {
  readonly deliberate: readonly { readonly difference: Difference; readonly entry: DeliberateDifference }[];
  readonly unexpected: readonly Difference[];
  /** Entries that matched no difference: either fixed or written wrong; both need the file edited. */
  readonly unused: readonly DeliberateDifference[];
}

export function judge(differences: readonly Difference[], entries: readonly DeliberateDifference[]): Verdict {
  const deliberate: { difference: Difference; entry: DeliberateDifference }[] = [];
  const unexpected: Difference[] = [];
  const used = new Set<DeliberateDifference>();
  for (const difference of differences) {
    const entry = entries.find((candidate) => matches(candidate, difference));
    if (entry) {
      used.add(entry);
      deliberate.push({ difference, entry });
    } else {
      unexpected.push(difference);
    }
  }
  return { deliberate, unexpected, unused: entries.filter((entry) => !used.has(entry)) };
}

export function describeDifference(difference: Difference): string {
  const istio = difference.istioMessages.length > 0 ? `; Istio: ${difference.istioMessages.join(' / ')}` : '';
  return `${difference.scenario} | ${difference.rule} | ${difference.object} | ${sideOf(difference)} ` +
    `(Istio ${difference.istio}, check ${difference.check})${istio}`;
}
