/** Shared vocabulary of the policies: pure data, plus the one type guard every policy reads it with. */

export type { RuleId, Severity } from './registry.ts';
import type { RuleId, Severity } from './registry.ts';

export interface Violation {
  readonly rule: RuleId;
  readonly severity: Severity;
  /** Kubernetes-style field path, e.g. `spec.ports[2].name`. */
  readonly field: string;
  /** Complete, self-contained message: what is wrong and how to fix it. */
  readonly message: string;
  /** Shorter forms of the message, for warnings where a prefix leaves less room. */
  readonly shorterMessages?: readonly string[];
  /**
   * Identity of the offending thing independent of its position, used to tell on UPDATE
   * whether the same violation already existed in the old object (grandfathering).
   */
  readonly identity: string;
}

/** A change a mutation made, reported to the user as an admission warning. */
export interface MutationNote {
  readonly field: string;
  readonly message: string;
  /** Shorter forms of the message, for warnings where a prefix leaves less room. */
  readonly shorterMessages?: readonly string[];
}

export interface MutationResult<T> {
  /**
   * A mutated copy; the input is never modified. Unchanged subtrees may be shared with the
   * input (neither side is ever modified), so diffing the two skips them. Equal in content
   * when nothing changed.
   */
  readonly mutated: T;
  readonly notes: readonly MutationNote[];
}

/** Minimal Kubernetes object shape; everything is optional because input is untrusted. */
export interface KubeObject {
  apiVersion?: unknown;
  kind?: unknown;
  metadata?: {
    name?: unknown;
    namespace?: unknown;
    labels?: unknown;
    annotations?: unknown;
    [key: string]: unknown;
  };
  spec?: unknown;
  [key: string]: unknown;
}

/** A plain JSON object: not null, not an array. Untrusted input is read through this guard. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The strings of an untrusted list; anything else in it, or a value that is no list, is ignored. */
export function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}
