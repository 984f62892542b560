/**
 * How many values a JSON text holds, counted before it is parsed. What a body costs once parsed
 * depends on its values, not its bytes: 7 MiB of `[{},{},…]` is 2.4 million objects, some
 * 190 MB of heap, more than the pod's memory limit, while 7 MiB of annotation text is one
 * string of 7 MiB. So a body with more values than any real AdmissionReview holds is refused
 * before JSON.parse allocates them.
 *
 * Counts the `{`, `[` and `,` outside strings (each opens a value or separates one), and jumps
 * over string contents with indexOf, so long strings cost next to nothing. Stops as soon as
 * `stopAbove` is passed: the largest input is never scanned to its end. Invalid JSON is
 * counted too; the parser rejects it afterwards.
 */
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_OBJECT = 0x7b;
const OPEN_ARRAY = 0x5b;

export function countJsonValues(text: string, stopAbove: number): number {
  let count = 0;
  const length = text.length;
  for (let i = 0; i < length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = closingQuote(text, i);
      if (i < 0) return count;
    } else if (c === COMMA || c === OPEN_OBJECT || c === OPEN_ARRAY) {
      count += 1;
      if (count > stopAbove) return count;
    }
  }
  return count;
}

/** Index of the quote closing the string opened at `open`, or -1 when it is never closed. */
function closingQuote(text: string, open: number): number {
  let at = text.indexOf('"', open + 1);
  while (at > 0) {
    let backslashes = 0;
    while (text.charCodeAt(at - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return at;
    at = text.indexOf('"', at + 1);
  }
  return -1;
}
