/**
 * The webhooks a configuration is to hold once a replica serves them.
 *
 * The chart creates both webhook configurations with no webhooks at all, and writes the
 * webhooks they are to hold into the `mesh-admission.io/webhooks` annotation. A configuration
 * without webhooks makes the API server call nothing, so while no replica serves (the image
 * cannot be pulled, the pods crash or stay pending) no Service or Namespace write depends on
 * the webhook. A replica that serves, and that the webhook's Service routes to, copies the
 * planned webhooks into the configuration (with its caBundle): from then on enforcement is on,
 * with the configured failurePolicy. The configurations stay Helm's objects, so `helm
 * uninstall` deletes them whatever the pods did.
 *
 * Pure functions only; the registrar (`ca-bundle.ts`) reads and patches.
 */
import { isRecord } from '../policies/types.ts';

/** Annotation of a webhook configuration: the JSON list of webhooks it is to hold. */
export const PLANNED_WEBHOOKS_ANNOTATION = 'mesh-admission.io/webhooks';

/** One planned webhook: the API's webhook object, without caBundle. */
export type PlannedWebhook = Readonly<Record<string, unknown>> & { readonly name: string };

interface AnnotatedConfiguration {
  readonly metadata?: { readonly annotations?: Readonly<Record<string, string>> | null } | undefined;
  readonly webhooks?: readonly object[] | null | undefined;
}

/**
 * The planned webhooks of `config`, or undefined when it carries no plan (it lists its
 * webhooks itself, e.g. one printed by `webhook-config`). Throws when the annotation is not a
 * list of named webhooks: installing part of a broken plan would enforce the wrong thing.
 */
export function plannedWebhooks(config: AnnotatedConfiguration): PlannedWebhook[] | undefined {
  const text = config.metadata?.annotations?.[PLANNED_WEBHOOKS_ANNOTATION];
  if (text === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`annotation ${PLANNED_WEBHOOKS_ANNOTATION} is not JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(parsed)) throw new Error(`annotation ${PLANNED_WEBHOOKS_ANNOTATION} must be a JSON list of webhooks`);
  const names = new Set<string>();
  return parsed.map((webhook: unknown, index) => {
    if (!isRecord(webhook) || typeof webhook['name'] !== 'string' || webhook['name'] === '') {
      throw new Error(`annotation ${PLANNED_WEBHOOKS_ANNOTATION}: webhook ${index} has no name`);
    }
    if (names.has(webhook['name'])) throw new Error(`annotation ${PLANNED_WEBHOOKS_ANNOTATION}: webhook "${webhook['name']}" is listed twice`);
    names.add(webhook['name']);
    return webhook as PlannedWebhook;
  });
}

/**
 * Whether every field `planned` sets has the same value in `live`. The API server fills in
 * defaults (scope, matchPolicy, reinvocationPolicy, empty selectors ...) and the caBundle is
 * added on install: fields `live` has beyond the plan are not differences. Lists must match
 * element by element, since an extra rule or selector term changes what is sent.
 */
export function includesFields(live: unknown, planned: unknown): boolean {
  if (Array.isArray(planned)) {
    return Array.isArray(live) && live.length === planned.length && planned.every((item, index) => includesFields(live[index], item));
  }
  if (isRecord(planned)) {
    return isRecord(live) && Object.entries(planned).every(([key, value]) => includesFields(live[key], value));
  }
  return live === planned;
}

/** Whether `config` holds exactly the planned webhooks, in order, each as planned. */
export function holdsPlannedWebhooks(config: AnnotatedConfiguration, planned: readonly PlannedWebhook[]): boolean {
  return includesFields(config.webhooks ?? [], planned);
}

/** The planned webhooks as they are installed: each with `caBundle` (base64) in its clientConfig. */
export function installableWebhooks(planned: readonly PlannedWebhook[], caBundle: string): object[] {
  return planned.map((webhook) => {
    const clientConfig = isRecord(webhook['clientConfig']) ? webhook['clientConfig'] : {};
    return { ...webhook, clientConfig: { ...clientConfig, caBundle } };
  });
}
