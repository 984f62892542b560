/**
 * Admission warnings as the API server takes them: how long one may be, how many an answer
 * carries, and the shaping of text into that room. Policies fit their messages to these
 * limits (policies/messages.ts); the webhook's answers are made of them (admission/).
 */

/** The API server rejects admission warnings longer than this; kubectl shows each on its own line. */
export const WARNING_LIMIT = 256;

/**
 * At most this many warnings per answer; the rest are counted in a last one. The API server
 * keeps only about 4 KiB of warnings per request anyway, and a Service with thousands of bad
 * ports must not turn a small request into megabytes of answer.
 */
export const MAX_WARNINGS = 20;

/** A subject cut for room keeps at least this much of itself (`Service team…shop-frontend`). */
const MIN_SUBJECT_LENGTH = 24;

/**
 * A message and, from most to least helpful, the shorter forms of it. The webhook starts each
 * warning with the object it is about (`Service shop/web: `), whose length only it knows: it
 * takes the first form that still fits after that prefix.
 */
export interface FittedMessage {
  readonly message: string;
  /** Present only when there are shorter forms. */
  readonly shorterMessages?: readonly string[];
}

/**
 * `subject: tag` followed by the most helpful form of `fitted` that fits in one warning. When
 * none does, the shortest form is kept whole and the subject (the object's kind and names,
 * which only absurdly long names make this long) is cut instead: the message's advice is what
 * must survive. Only when even that leaves no room is the end of the line cut.
 */
export function prefixedWarning(subject: string, tag: string, fitted: FittedMessage): string {
  const prefix = `${subject}: ${tag}`;
  // The shorter forms only when the message does not fit: reading them may word them.
  if (prefix.length + fitted.message.length <= WARNING_LIMIT) return `${prefix}${fitted.message}`;
  const forms = [fitted.message, ...(fitted.shorterMessages ?? [])];
  const fitting = forms.find((form) => prefix.length + form.length <= WARNING_LIMIT);
  if (fitting !== undefined) return `${prefix}${fitting}`;
  const shortest = forms.at(-1) ?? '';
  const subjectRoom = WARNING_LIMIT - `: ${tag}${shortest}`.length;
  if (subjectRoom >= MIN_SUBJECT_LENGTH) return `${cutMiddle(subject, subjectRoom)}: ${tag}${shortest}`;
  return cut(`${prefix}${shortest}`, WARNING_LIMIT);
}

/**
 * The warnings of the first MAX_WARNINGS - 1 items and a last one counting the rest, when there
 * are too many. Only the items shown are formatted: a huge object can have 100,000 findings,
 * and fitting each message to the warning limit would cost more than judging it.
 */
export function limitWarnings<T>(items: readonly T[], format: (item: T) => string, subject: string, reserved = 0): string[] {
  const limit = MAX_WARNINGS - reserved;
  if (items.length <= limit) return items.map(format);
  const shown = items.slice(0, limit - 1).map(format);
  const more = `… and ${items.length - shown.length} more warnings (run \`mesh-admission check\` on the manifest to see them all)`;
  return [...shown, truncate(`${subject}: ${more}`)];
}

/** At most `max` characters of `text`, its end replaced by an ellipsis when cut. */
export function truncate(text: string, max = WARNING_LIMIT): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** Cut to less than `max`, marked with an ellipsis. */
export function cut(text: string, max: number): string {
  return text.length < max ? text : `${text.slice(0, max - 4)}...`;
}

/**
 * At most `max` characters of `text`, its middle replaced by an ellipsis: a subject's start
 * names the kind and namespace, its end the object.
 */
function cutMiddle(text: string, max: number): string {
  const head = Math.ceil((max - 1) / 2);
  return `${text.slice(0, head)}…${text.slice(text.length - (max - 1 - head))}`;
}
