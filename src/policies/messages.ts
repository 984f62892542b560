/** Fitting policy messages into admission warnings, which Kubernetes limits in length. */
import type { RuleId, Severity, Violation } from './types.ts';

/** The API server rejects admission warnings longer than this. */
export const WARNING_LIMIT = 256;

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
 * The first variant that fits in one admission warning once prefixed with `[rule] ` (no prefix
 * when `rule` is undefined, as for mutation notes), and the shorter variants after it. Variants
 * go from most to least helpful; the last is cut as a last resort (only absurdly long input
 * gets there).
 */
export function fitMessage(rule: RuleId | undefined, ...variants: readonly string[]): FittedMessage {
  const budget = WARNING_LIMIT - (rule === undefined ? 0 : rule.length + 3);
  const fitting = variants.findIndex((variant) => variant.length <= budget);
  if (fitting === -1) return { message: cut(variants.at(-1) ?? '', budget) };
  const message = variants[fitting] as string;
  const shorterMessages = variants.slice(fitting + 1).filter((variant) => variant.length < message.length);
  return shorterMessages.length === 0 ? { message } : { message, shorterMessages };
}

/** A subject cut for room keeps at least this much of itself (`Service team…shop-frontend`). */
const MIN_SUBJECT_LENGTH = 24;

/**
 * A violation whose message is worded and fitted only when first read. A 7 MiB object can
 * have 100,000 findings, and the webhook's answer spells out at most a few dozen of them
 * (decision.ts): wording every one cost most of the time judging such an object took, and
 * its garbage the rest. `check` and the unit tests read every message and see no difference.
 */
export class LazilyWorded implements Violation {
  readonly rule: RuleId;
  readonly severity: Severity;
  readonly field: string;
  readonly identity: string;
  #variants: (() => readonly string[]) | undefined;
  #fitted: FittedMessage | undefined;

  /** `variants` gives the forms fitMessage chooses from, most helpful first. */
  constructor(rule: RuleId, severity: Severity, field: string, identity: string, variants: () => readonly string[]) {
    this.rule = rule;
    this.severity = severity;
    this.field = field;
    this.identity = identity;
    this.#variants = variants;
  }

  get message(): string {
    return this.#fit().message;
  }

  get shorterMessages(): readonly string[] | undefined {
    return this.#fit().shorterMessages;
  }

  #fit(): FittedMessage {
    if (this.#fitted === undefined) {
      this.#fitted = fitMessage(this.rule, ...(this.#variants as () => readonly string[])());
      // The words are kept, the closure (and what it holds of the object) is not.
      this.#variants = undefined;
    }
    return this.#fitted;
  }

  /** JSON (`check --output json`, logs) sees the message like any other field. */
  toJSON(): Violation {
    const { rule, severity, field, identity, message, shorterMessages } = this;
    return shorterMessages === undefined ? { rule, severity, field, message, identity } : { rule, severity, field, message, shorterMessages, identity };
  }
}

/**
 * `subject: tag` followed by the most helpful form of `fitted` that fits in one warning. When
 * none does, the shortest form is kept whole and the subject (the object's kind and names,
 * which only absurdly long names make this long) is cut instead: the message's advice is what
 * must survive. Only when even that leaves no room is the end of the line cut.
 */
export function prefixedWarning(subject: string, tag: string, fitted: FittedMessage): string {
  const forms = [fitted.message, ...(fitted.shorterMessages ?? [])];
  const prefix = `${subject}: ${tag}`;
  const fitting = forms.find((form) => prefix.length + form.length <= WARNING_LIMIT);
  if (fitting !== undefined) return `${prefix}${fitting}`;
  const shortest = forms.at(-1) ?? '';
  const subjectRoom = WARNING_LIMIT - `: ${tag}${shortest}`.length;
  if (subjectRoom >= MIN_SUBJECT_LENGTH) return `${cutMiddle(subject, subjectRoom)}: ${tag}${shortest}`;
  return cut(`${prefix}${shortest}`, WARNING_LIMIT);
}

/**
 * At most `max` characters of `text`, its middle replaced by an ellipsis: a subject's start
 * names the kind and namespace, its end the object.
 */
function cutMiddle(text: string, max: number): string {
  const head = Math.ceil((max - 1) / 2);
  return `${text.slice(0, head)}…${text.slice(text.length - (max - 1 - head))}`;
}

/** Cut to less than `max`, marked with an ellipsis. */
function cut(text: string, max: number): string {
  return text.length < max ? text : `${text.slice(0, max - 4)}...`;
}
