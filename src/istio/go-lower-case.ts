/**
 * Lower-casing exactly as Istio's Go code does it (`strings.ToLower`), which Istio applies to
 * protocol words before comparing them.
 *
 * Go maps each code point on its own through Unicode's simple (one-to-one) lower-case mapping.
 * JavaScript's `toLowerCase` uses the full mapping and context, which differ in two ways:
 * - `İ` (U+0130) becomes `i` followed by a combining dot (U+0307) in JavaScript, plain `i` in Go
 *   — so in Go `REDİS` is the word `redis`;
 * - a final `Σ` becomes `ς` in JavaScript, always `σ` in Go.
 * Mapping one code point at a time removes the context rule; U+0130 is the only code point
 * whose full mapping is longer than its simple one, so it is handled by hand. (Where the two
 * Unicode versions differ, both results are non-ASCII and equal no protocol word.)
 */
const NON_ASCII = /[^\0-\u007f]/u;
/** The one code point whose Go lower case is ASCII although it is not (`i`); see above. */
export const CAPITAL_I_WITH_DOT = '\u0130';

export function goToLower(text: string): string {
  if (!NON_ASCII.test(text)) return text.toLowerCase();
  let lower = '';
  for (const char of text) lower += char === CAPITAL_I_WITH_DOT ? 'i' : char.toLowerCase();
  return lower;
}
