/**
 * Fitting policy messages into admission warnings, whose length Kubernetes limits (the limits
 * and the warnings' shape are in warnings.ts).
 */
import type { RuleId, Severity, Violation } from './types.ts';
import { WARNING_LIMIT, cut, type FittedMessage } from '../warnings.ts';

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
