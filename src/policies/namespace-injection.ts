/**
 * Namespace policy: label new namespaces for Istio sidecar (or ambient) injection, and warn
 * about label combinations Istio resolves in a surprising way.
 *
 * Pure: the input object is never modified; the mutation works on a copy and the
 * caller diffs the two (never hand-built patch paths).
 */

import { ANALYZER_SKIPPED_NAMESPACES } from './system-namespaces.ts';
import { fitMessage } from './messages.ts';
import { isRecord, type KubeObject, type MutationNote, type MutationResult, type Violation } from './types.ts';

export type InjectionMode = 'istio-injection' | 'revision' | 'ambient';

export interface InjectionOptions {
  readonly enabled: boolean;
  readonly mode: InjectionMode;
  /** Istio revision for mode `revision` (e.g. `1-22`); the caller rejects an empty one. */
  readonly revision?: string | undefined;
  /** Configured exclusions plus the webhook's own namespace, supplied by the caller. */
  readonly excludedNamespaces: readonly string[];
}

/** Classic injection label: `enabled` turns on the default revision's sidecar injector. */
export const INJECTION_LABEL = 'istio-injection';
/** Revision label: selects the injector of one Istio control-plane revision. */
export const REVISION_LABEL = 'istio.io/rev';
/** Ambient mode label: pods are captured by ztunnel instead of getting a sidecar. */
export const DATAPLANE_MODE_LABEL = 'istio.io/dataplane-mode';

/**
 * Namespaces never labelled: Kubernetes' own and kind's storage namespace (Istio's analyzer
 * skips the same ones), plus `istio-system`, where injecting the control plane into itself
 * would break it.
 */
export const ALWAYS_EXCLUDED_NAMESPACES: readonly string[] = Object.freeze([
  ...ANALYZER_SKIPPED_NAMESPACES,
  'istio-system',
]);

/**
 * Any of these labels means someone already decided how this namespace joins the mesh
 * (including opting out with `istio-injection=disabled` or `istio.io/dataplane-mode=none`),
 * so the webhook stays out of it.
 */
export const DECISION_LABELS: readonly string[] = [INJECTION_LABEL, REVISION_LABEL, DATAPLANE_MODE_LABEL];

/** Kubernetes names are at most 63 characters; longer junk is cut so warnings stay short. */
const MAX_DISPLAY_LENGTH = 63;

/** Quotes untrusted text for a message, bounded so the warning stays under 256 characters. */
function display(value: unknown): string {
  const text = typeof value === 'string' ? value : String(value);
  const bounded = text.length > MAX_DISPLAY_LENGTH ? `${text.slice(0, MAX_DISPLAY_LENGTH)}…` : text;
  return JSON.stringify(bounded);
}

/** Label values are usually plain tokens; anything else is quoted so the message stays readable. */
function labelValue(value: unknown): string {
  return typeof value === 'string' && /^[A-Za-z0-9._-]{0,63}$/.test(value) ? value : display(value);
}

function describeNamespace(name: string | undefined): string {
  // A namespace created with generateName may reach admission without a name yet.
  return name === undefined ? 'this namespace' : `namespace ${display(name)}`;
}

interface LabelPlan {
  readonly key: string;
  readonly value: string;
  /** The note, without the namespace's name: the webhook puts the object in front of every note. */
  readonly message: () => string;
}

/** The label the configured mode adds, or undefined when the options cannot produce one. */
export function planLabel(options: InjectionOptions): LabelPlan | undefined {
  switch (options.mode) {
    case 'istio-injection':
      return {
        key: INJECTION_LABEL,
        value: 'enabled',
        message: () =>
          `added label ${INJECTION_LABEL}=enabled so Istio injects sidecars into its pods; ` +
          `set ${INJECTION_LABEL}=disabled to opt out`,
      };
    case 'revision': {
      const revision = options.revision;
      // An empty revision would produce a label no injector selects; config validation
      // rejects it, so here it only means "do nothing".
      if (typeof revision !== 'string' || revision === '') return undefined;
      return {
        key: REVISION_LABEL,
        value: revision,
        message: () =>
          `added label ${REVISION_LABEL}=${revision} so Istio revision ${display(revision)} injects ` +
          `sidecars into its pods; set ${INJECTION_LABEL}=disabled to opt out`,
      };
    }
    case 'ambient':
      return {
        key: DATAPLANE_MODE_LABEL,
        value: 'ambient',
        message: () =>
          `added label ${DATAPLANE_MODE_LABEL}=ambient so its pods join the Istio ambient mesh; ` +
          `set ${DATAPLANE_MODE_LABEL}=none to opt out`,
      };
    default:
      // A mode outside the type (unvalidated config) must not break admission.
      return undefined;
  }
}

function isExcluded(name: string | undefined, options: InjectionOptions): boolean {
  if (name === undefined) return false;
  return ALWAYS_EXCLUDED_NAMESPACES.includes(name) || options.excludedNamespaces.includes(name);
}

/**
 * Adds the injection label for `options.mode` to a copy of the namespace.
 *
 * Leaves the namespace as it is when injection is disabled, the namespace is excluded, it
 * already carries any injection decision label, or its shape is not a namespace's (the
 * mutating webhook runs before the API server validates the object, so junk is possible and
 * must never throw).
 */
export function mutateNamespace(namespace: KubeObject, options: InjectionOptions): MutationResult<KubeObject> {
  // New objects only along the path that changes (namespace, metadata, labels); the rest is
  // shared with the input, so the diff skips it. A deep copy cloned and diffed it all.
  const mutated = isRecord(namespace) ? { ...namespace } : namespace;
  const unchanged: MutationResult<KubeObject> = { mutated, notes: [] };

  if (!options.enabled) return unchanged;
  const plan = planLabel(options);
  if (plan === undefined) return unchanged;
  if (!isRecord(mutated)) return unchanged;

  // A missing metadata gets one (only a name-less namespace, e.g. generateName, lacks it);
  // `metadata: null` or any other non-object is junk and left alone.
  const metadata: unknown = mutated.metadata === undefined ? {} : mutated.metadata;
  if (!isRecord(metadata)) return unchanged;

  const name = metadata.name;
  if (name !== undefined && typeof name !== 'string') return unchanged;
  if (isExcluded(name, options)) return unchanged;

  // `labels: null` decodes to "no labels" in Kubernetes, so it is treated like a missing map.
  const existing: unknown = metadata.labels ?? {};
  if (!isRecord(existing)) return unchanged;
  if (DECISION_LABELS.some((key) => Object.hasOwn(existing, key))) return unchanged;

  mutated.metadata = { ...metadata, labels: { ...existing, [plan.key]: plan.value } };
  const note: MutationNote = { field: 'metadata.labels', message: plan.message() };
  return { mutated, notes: [note] };
}

/**
 * Warns about a namespace whose injection labels contradict each other (Istio IST0123), counted
 * as Istio's analyzer counts them: `istio-injection` with any value, and `istio.io/rev` and
 * `istio.io/dataplane-mode` only while `istio-injection` is absent or `enabled` — a namespace
 * with `istio-injection=disabled` has deliberately opted out, whatever else it carries. Istio's
 * own and the system namespaces are not checked. The fix offered removes a label without
 * changing whether pods get a sidecar: the one Istio ignores.
 */
export function validateNamespace(namespace: KubeObject): Violation[] {
  if (!isRecord(namespace)) return [];
  const metadata: unknown = namespace.metadata;
  if (!isRecord(metadata)) return [];
  const labels: unknown = metadata.labels;
  if (!isRecord(labels)) return [];
  const name = typeof metadata.name === 'string' ? metadata.name : undefined;
  if (name !== undefined && ALWAYS_EXCLUDED_NAMESPACES.includes(name)) return [];

  const hasInjection = Object.hasOwn(labels, INJECTION_LABEL);
  const injectionOn = !hasInjection || labels[INJECTION_LABEL] === 'enabled';
  const counted = [
    ...(hasInjection ? [INJECTION_LABEL] : []),
    ...[REVISION_LABEL, DATAPLANE_MODE_LABEL].filter((key) => injectionOn && Object.hasOwn(labels, key)),
  ];
  if (counted.length < 2) return [];

  // Commands need a usable name; without one, fall back to a placeholder the user fills in.
  const target = name === undefined ? '<namespace>' : name.slice(0, MAX_DISPLAY_LENGTH);
  const listed = counted.map((key) => `${key}=${labelValue(labels[key])}`);
  // Pods get their sidecar by the first counted label (istio-injection=enabled selects the
  // classic injector; without it, istio.io/rev selects a revision's), so removing the others
  // changes nothing about injection.
  const [kept, ...ignored] = counted;
  const has = `${describeNamespace(name)} has ${listed.slice(0, -1).join(', ')} and ${listed.at(-1)}`;
  const command = `kubectl label namespace ${target} ${ignored.map((key) => `${key}-`).join(' ')}`;
  const fitted = fitMessage(
    'namespace-injection-conflict',
    `${has}; pods get their sidecar by ${kept}, and ${ignored.join(' and ')} only ` +
      `${ignored.length === 1 ? 'contradicts' : 'contradict'} it (IST0123). Remove ${ignored.length === 1 ? 'it' : 'them'}: ${command}`,
    `${has}; they contradict each other (IST0123); pods get their sidecar by ${kept}: ${command}`,
    `conflicting injection labels (IST0123); pods get their sidecar by ${kept}: ${command}`,
  );

  return [
    {
      rule: 'namespace-injection-conflict',
      severity: 'warning',
      field: 'metadata.labels',
      ...fitted,
      identity: `labels:${counted.join('+')}`,
    },
  ];
}

/**
 * A stored namespace that lacks the injection label the webhook gives new namespaces (Istio
 * IST0102): it was created before the webhook, or while the webhook was down under
 * `failurePolicy: Ignore`, so its pods run without the mesh. The decision is the mutation's
 * own: the namespace is reported exactly when `mutateNamespace` would label it, so exemptions,
 * exclusions, opt-outs and a disabled injection are respected alike.
 */
export function validateNamespaceInjected(namespace: KubeObject, options: InjectionOptions): Violation[] {
  const plan = planLabel(options);
  if (plan === undefined || mutateNamespace(namespace, options).notes.length === 0) return [];
  const name = isRecord(namespace.metadata) && typeof namespace.metadata.name === 'string' ? namespace.metadata.name : undefined;
  const target = name === undefined ? '<namespace>' : name.slice(0, MAX_DISPLAY_LENGTH);
  const command = `kubectl label namespace ${target} ${plan.key}=${plan.value}`;
  const rule = 'namespace-not-injected';
  return [
    {
      rule,
      severity: 'warning',
      field: 'metadata.labels',
      identity: `missing:${plan.key}`,
      ...fitMessage(
        rule,
        `${describeNamespace(name)} has none of ${DECISION_LABELS.join(', ')}, so its pods are not in the mesh (IST0102); ` +
          `the webhook labels new namespaces ${plan.key}=${plan.value}. Label it, then restart its pods: ${command}`,
        `${describeNamespace(name)} is not enabled for injection (IST0102): ${command}`,
        `not enabled for injection (IST0102): ${command}`,
      ),
    },
  ];
}
