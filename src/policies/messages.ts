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
 * A form of a message, or how to word it once it is needed. A message's shorter forms are read
 * only when the full one does not fit beside a warning's prefix, which is rare: wording them
 * anyway was most of what a denial of a few ports cost to build, and most of its garbage.
 */
export type MessageForm = string | (() => string);

function worded(form: MessageForm): string {
  return typeof form === 'string' ? form : form();
}

/** The room a message has in one warning once prefixed with `[rule] ` (no prefix without a rule). */
function messageBudget(rule: RuleId | undefined): number {
  return WARNING_LIMIT - (rule === undefined ? 0 : rule.length + 3);
}

/**
 * The first of `forms` that fits the budget (each worded only if the ones before did not fit),
 * and the forms after it, not yet worded. When none fits, the last is cut as a last resort
 * (only absurdly long input gets there).
 */
function firstFitting(budget: number, forms: readonly MessageForm[]): { message: string; rest: readonly MessageForm[] } {
  let last = '';
  for (let index = 0; index < forms.length; index++) {
    last = worded(forms[index] as MessageForm);
    if (last.length <= budget) return { message: last, rest: forms.slice(index + 1) };
  }
  return { message: cut(last, budget), rest: [] };
}

/** The rest of the forms, worded, that are shorter than `message`; undefined when none is. */
function shorterForms(message: string, rest: readonly MessageForm[]): readonly string[] | undefined {
  const shorter = rest.map(worded).filter((form) => form.length < message.length);
  return shorter.length === 0 ? undefined : shorter;
}

/**
 * The first variant that fits in one admission warning once prefixed with `[rule] ` (no prefix
 * when `rule` is undefined, as for mutation notes), and the shorter variants after it. Variants
 * go from most to least helpful; the last is cut as a last resort (only absurdly long input
 * gets there).
 */
export function fitMessage(rule: RuleId | undefined, ...variants: readonly string[]): FittedMessage {
  const { message, rest } = firstFitting(messageBudget(rule), variants);
  const shorterMessages = shorterForms(message, rest);
  return shorterMessages === undefined ? { message } : { message, shorterMessages };
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
  #forms: (() => readonly MessageForm[]) | undefined;
  #message: string | undefined;
  /** The forms after the message, until the shorter messages are first read. */
  #rest: readonly MessageForm[] | undefined;
  #shorterMessages: readonly string[] | undefined;

  /** `forms` gives the forms fitMessage chooses from, most helpful first. */
  constructor(rule: RuleId, severity: Severity, field: string, identity: string, forms: () => readonly MessageForm[]) {
    this.rule = rule;
    this.severity = severity;
    this.field = field;
    this.identity = identity;
    this.#forms = forms;
  }

  get message(): string {
    if (this.#message === undefined) {
      const { message, rest } = firstFitting(messageBudget(this.rule), (this.#forms as () => readonly MessageForm[])());
      this.#message = message;
      this.#rest = rest;
      // The words are kept, the closure (and what it holds of the object) is not.
      this.#forms = undefined;
    }
    return this.#message;
  }

  get shorterMessages(): readonly string[] | undefined {
    const message = this.message;
    if (this.#rest !== undefined) {
      this.#shorterMessages = shorterForms(message, this.#rest);
      this.#rest = undefined;
    }
    return this.#shorterMessages;
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
