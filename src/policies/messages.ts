/** Fitting policy messages into admission warnings, which Kubernetes limits in length. */
import type { RuleId } from './types.ts';

/** The API server rejects admission warnings longer than this. */
export const WARNING_LIMIT = 256;

/**
 * The first variant that still fits in one admission warning once the webhook prefixes it
 * with `[rule] ` (no prefix when `rule` is undefined, as for mutation notes). Variants go from
 * most to least helpful; the last is cut as a last resort (only absurdly long input gets there).
 */
export function fitWarning(rule: RuleId | undefined, ...variants: readonly string[]): string {
  const budget = WARNING_LIMIT - (rule === undefined ? 0 : rule.length + 3);
  const fitting = variants.find((variant) => variant.length <= budget);
  if (fitting !== undefined) return fitting;
  const last = variants.at(-1) ?? '';
  return `${last.slice(0, budget - 4)}...`;
}
