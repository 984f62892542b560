/**
 * Pod policy: ask Istio to start a pod's application containers only once its sidecar is ready
 * (`holdApplicationUntilProxyStarts: true` in the pod's `proxy.istio.io/config` annotation), so
 * an application never starts without network: without it, calls made at start-up fail until
 * Envoy has its configuration.
 *
 * Which pods get here is decided by the webhook configuration, not by this policy: its pod
 * webhooks select namespaces Istio injects (`istio-injection=enabled`, or `istio.io/rev`
 * without `istio-injection`), exactly as Istio's own injector webhooks do.
 *
 * Pure: the input object is never modified; new objects only along the path that changes
 * (pod, metadata, annotations), the rest is shared, and the caller diffs the two.
 */
import { isMap, parseDocument } from 'yaml';
import { fitMessage } from './messages.ts';
import { isRecord, type KubeObject, type MutationNote, type MutationResult } from './types.ts';

/** Istio's per-pod ProxyConfig override: a YAML (or JSON) ProxyConfig mapping. */
export const PROXY_CONFIG_ANNOTATION = 'proxy.istio.io/config';
export const HOLD_KEY = 'holdApplicationUntilProxyStarts';
/** Istio reads ProxyConfig with protojson, which also accepts the proto field name. */
const HOLD_KEY_PROTO = 'hold_application_until_proxy_starts';
/** Pod label (or, without the label, annotation) that turns Istio's injection on or off per pod. */
const SIDECAR_INJECT = 'sidecar.istio.io/inject';
/** The values of SIDECAR_INJECT that Istio reads as "inject"; any other non-empty value opts out. */
const INJECT_VALUES: readonly string[] = ['y', 'yes', 'true', 'on'];

const FIELD = `metadata.annotations[${PROXY_CONFIG_ANNOTATION}]`;

type PlainRecord = Record<string, unknown>;

/**
 * Whether Istio would leave this pod without a sidecar whatever its namespace says: the
 * `sidecar.istio.io/inject` label (or annotation) opts out, or the pod uses the host network.
 * The annotation would be noise there.
 */
function optedOut(metadata: PlainRecord, spec: unknown): boolean {
  if (isRecord(spec) && spec.hostNetwork === true) return true;
  const labels = isRecord(metadata.labels) ? metadata.labels : {};
  const annotations = isRecord(metadata.annotations) ? metadata.annotations : {};
  // As in Istio's injector: the label wins over the annotation.
  const selector = Object.hasOwn(labels, SIDECAR_INJECT) ? labels[SIDECAR_INJECT] : annotations[SIDECAR_INJECT];
  return typeof selector === 'string' && selector !== '' && !INJECT_VALUES.includes(selector.toLowerCase());
}

type Merge = { readonly value: string } | { readonly unchanged: true } | { readonly problem: string };

/**
 * The annotation with the hold key added, `unchanged` when it already has the key (whatever
 * its value: an explicit `false` is the pod owner's decision), or the problem that stops it.
 * JSON stays JSON; YAML keeps its comments and layout.
 */
function merge(text: unknown): Merge {
  if (text === undefined || (typeof text === 'string' && text.trim() === '')) return { value: `${HOLD_KEY}: true` };
  if (typeof text !== 'string') return { problem: 'not a string' };

  if (text.trimStart().startsWith('{')) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined; // a YAML flow mapping ({a: 1}) is not JSON: read it as YAML below
    }
    if (isRecord(json)) {
      if (Object.hasOwn(json, HOLD_KEY) || Object.hasOwn(json, HOLD_KEY_PROTO)) return { unchanged: true };
      // Keep a pretty-printed annotation readable.
      return { value: JSON.stringify({ ...json, [HOLD_KEY]: true }, null, text.includes('\n') ? 2 : undefined) };
    }
  }

  const document = parseDocument(text);
  const error = document.errors[0];
  if (error !== undefined) return { problem: `invalid YAML: ${error.code}` };
  const contents = document.contents;
  // A comment-only document has no contents: the key becomes its only entry.
  if (contents !== null && !isMap(contents)) return { problem: 'not a mapping' };
  if (document.has(HOLD_KEY) || document.has(HOLD_KEY_PROTO)) return { unchanged: true };
  try {
    document.set(HOLD_KEY, true);
    const value = document.toString();
    return { value: text.endsWith('\n') ? value : value.replace(/\n$/, '') };
  } catch (cause) {
    // e.g. an alias to an anchor that does not exist: parses, but cannot be written back.
    return { problem: `invalid YAML: ${(cause as Error).message.split(/[:(]/)[0]?.trim().slice(0, 40)}` };
  }
}

/**
 * Adds `holdApplicationUntilProxyStarts: true` to a copy of the pod's `proxy.istio.io/config`
 * annotation, keeping every other key. Leaves the pod as it is when the annotation already sets
 * the key (either value, silently: the owner decided), when the pod opts out of injection or
 * uses the host network, and when its shape is not a pod's (the mutating webhook runs before
 * the API server validates the object: junk must never throw). An annotation that is not a
 * YAML or JSON mapping is left alone too, with a note saying why nothing was added.
 */
export function mutatePodProxyConfig(pod: KubeObject): MutationResult<KubeObject> {
  const mutated = isRecord(pod) ? { ...pod } : pod;
  const unchanged: MutationResult<KubeObject> = { mutated, notes: [] };
  if (!isRecord(mutated)) return unchanged;

  const metadata: unknown = mutated.metadata === undefined ? {} : mutated.metadata;
  if (!isRecord(metadata)) return unchanged;
  if (optedOut(metadata, mutated.spec)) return unchanged;
  // `annotations: null` decodes to "no annotations" in Kubernetes.
  const annotations: unknown = metadata.annotations ?? {};
  if (!isRecord(annotations)) return unchanged;

  const result = merge(Object.hasOwn(annotations, PROXY_CONFIG_ANNOTATION) ? annotations[PROXY_CONFIG_ANNOTATION] : undefined);
  if ('unchanged' in result) return unchanged;
  if ('problem' in result) {
    const fitted = fitMessage(
      undefined,
      `annotation ${PROXY_CONFIG_ANNOTATION} is not a YAML or JSON mapping (${result.problem}), so ${HOLD_KEY}: true ` +
        `could not be merged into it and the pod was left unchanged; fix the annotation so Istio can read it`,
      `annotation ${PROXY_CONFIG_ANNOTATION} is not a YAML or JSON mapping, so ${HOLD_KEY}: true could not be merged into it`,
    );
    return { mutated, notes: [{ field: FIELD, ...fitted }] };
  }

  mutated.metadata = { ...metadata, annotations: { ...annotations, [PROXY_CONFIG_ANNOTATION]: result.value } };
  const note: MutationNote = {
    field: FIELD,
    message:
      `set ${HOLD_KEY}: true in annotation ${PROXY_CONFIG_ANNOTATION}: the app containers start once the Istio ` +
      `sidecar is ready, so they have network from the start; set it to false there to opt out`,
  };
  return { mutated, notes: [note] };
}
