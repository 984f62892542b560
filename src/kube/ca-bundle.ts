/**
 * Publishes the webhook's CA as the `caBundle` of its own two webhook configurations
 * (`serve --register-validating NAME --register-mutating NAME`).
 *
 * The API server trusts only the `caBundle` of a webhook configuration when it calls the
 * webhook, so a new CA must be in that bundle BEFORE any replica serves a certificate it
 * signed, and the old CA must stay in it while any replica may still serve a certificate the
 * old CA signed. Replacing the bundle in one step with only the new CA is the outage of
 * open-policy-agent/cert-controller issue #50. Hence:
 *  - with the Secret store (`certificate-secret.ts`) the bundle is the store's trust bundle
 *    (signing CA + staged next CA + retired CAs until they expire), and the store promotes a
 *    new CA only after it has seen that CA published here;
 *  - with plain files (a cert dir the webhook or someone else fills), a CA that leaves
 *    `ca.crt` stays published for an overlap period (`overlapBundle`).
 *
 * Several replicas publish concurrently. Each patch is a JSON patch that first `test`s the
 * resourceVersion it read (so it cannot overwrite a change it did not see) and records the
 * store's generation in an annotation, so a replica that read an older Secret cannot put an
 * older bundle back (`isOlderGeneration`).
 *
 * The pure parts (bundle computation, patch building, generation order) are exported for the
 * unit tests; the API calls go through the small `WebhookConfigurationApi` interface.
 */
import { X509Certificate } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import type { KubeConfig } from '@kubernetes/client-node';
import { apiRequest, JSON_PATCH_MEDIA_TYPE } from './api-request.ts';
import type { Logger } from '../observability/logger.ts';
import { CERTIFICATE_FILE_NAMES, certificatePaths, parseCertificates, readOptionalFile } from '../tls/certificate-files.ts';
import { holdsPlannedWebhooks, installableWebhooks, plannedWebhooks, type PlannedWebhook } from './webhook-installation.ts';

/** Set on each webhook configuration: `<secret uid>/<counter>` of the bundle last published. */
export const CA_GENERATION_ANNOTATION = 'mesh-admission.io/ca-generation';

/** How long a CA that left `ca.crt` stays in the published bundle (plain-file mode). */
export const DEFAULT_OVERLAP_MS = 60 * 60 * 1000;

/** Re-exported for callers that already import the CA-bundle API. */
export type { Logger } from '../observability/logger.ts';

// ---------------------------------------------------------------------------------------------
// Pure parts

/** One CA certificate of a bundle. */
export interface BundleCertificate {
  readonly pem: string;
  readonly fingerprint: string;
  readonly notAfter: Date;
}

/** The certificates of a PEM text, each with its own PEM block; throws naming `label` when none. */
export function bundleCertificates(pem: string, label: string): BundleCertificate[] {
  return parseCertificates(pem, label).map((cert: X509Certificate) => ({
    pem: cert.toString(),
    fingerprint: cert.fingerprint256,
    notAfter: cert.validToDate,
  }));
}

/**
 * The caBundle PEM: every distinct certificate of `certificates` that has not expired, in the
 * order given. Expired CAs are dropped: they can no longer verify anything.
 */
export function joinBundle(certificates: readonly BundleCertificate[], now: Date): string {
  const seen = new Set<string>();
  let text = '';
  for (const cert of certificates) {
    if (cert.notAfter.getTime() <= now.getTime() || seen.has(cert.fingerprint)) continue;
    seen.add(cert.fingerprint);
    text += cert.pem.endsWith('\n') ? cert.pem : `${cert.pem}\n`;
  }
  return text;
}

/** The sorted fingerprints of a PEM bundle (empty for empty or unparsable text). */
export function bundleFingerprints(pem: string): string[] {
  try {
    return [...new Set(bundleCertificates(pem, 'caBundle').map((c) => c.fingerprint))].sort();
  } catch {
    return [];
  }
}

/** Whether two PEM bundles hold the same set of certificates (order and whitespace aside). */
export function sameBundle(a: string, b: string): boolean {
  const left = bundleFingerprints(a);
  const right = bundleFingerprints(b);
  return left.length === right.length && left.every((fingerprint, index) => fingerprint === right[index]);
}

/** Whether every certificate of `inner` is in `outer`. */
export function bundleContains(outer: string, inner: string): boolean {
  const have = new Set(bundleFingerprints(outer));
  const want = bundleFingerprints(inner);
  return want.length > 0 && want.every((fingerprint) => have.has(fingerprint));
}

/** A CA that left the source bundle and stays published until `until`. */
export interface RetainedCa extends BundleCertificate {
  readonly until: Date;
}

export interface OverlapResult {
  readonly bundle: string;
  readonly retained: readonly RetainedCa[];
}

/**
 * The bundle to publish in plain-file mode: the CAs of the current `ca.crt`, plus those that
 * were in the previous `ca.crt` (or already retained) for `overlapMs` after they left it, so a
 * replica still serving a certificate of the old CA keeps working during the change-over.
 */
export function overlapBundle(
  previous: readonly BundleCertificate[],
  current: readonly BundleCertificate[],
  retained: readonly RetainedCa[],
  now: Date,
  overlapMs: number,
): OverlapResult {
  const currentPrints = new Set(current.map((c) => c.fingerprint));
  const kept = new Map<string, RetainedCa>();
  for (const ca of retained) {
    if (!currentPrints.has(ca.fingerprint) && ca.until.getTime() > now.getTime()) kept.set(ca.fingerprint, ca);
  }
  for (const ca of previous) {
    if (currentPrints.has(ca.fingerprint) || kept.has(ca.fingerprint)) continue;
    const until = new Date(Math.min(now.getTime() + overlapMs, ca.notAfter.getTime()));
    if (until.getTime() > now.getTime()) kept.set(ca.fingerprint, { ...ca, until });
  }
  const keptList = [...kept.values()];
  return { bundle: joinBundle([...current, ...keptList], now), retained: keptList };
}

/** `<secret uid>/<counter>`: which Secret state a published bundle came from. */
export interface Generation {
  readonly uid: string;
  readonly counter: number;
}

function formatGeneration(generation: Generation): string {
  return `${generation.uid}/${generation.counter}`;
}

export function parseGeneration(text: string | undefined): Generation | undefined {
  const match = text === undefined ? null : /^(.+)\/(\d+)$/.exec(text);
  if (!match) return undefined;
  return { uid: match[1] as string, counter: Number(match[2]) };
}

/**
 * True when `ours` comes from an older state of the SAME Secret than `published`: publishing
 * it would put back a bundle another replica already replaced. A different Secret (deleted
 * and re-created: another uid) or an unannotated configuration never counts as newer.
 */
export function isOlderGeneration(ours: Generation | undefined, published: Generation | undefined): boolean {
  return ours !== undefined && published !== undefined && ours.uid === published.uid && ours.counter < published.counter;
}

/** The parts of a (Validating|Mutating)WebhookConfiguration this module reads. */
export interface WebhookConfigurationLike {
  readonly metadata?: { readonly name?: string; readonly uid?: string; readonly resourceVersion?: string; readonly annotations?: Readonly<Record<string, string>> | null };
  readonly webhooks?: readonly { readonly name: string; readonly clientConfig?: { readonly caBundle?: string | null } }[] | null;
}

export interface JsonPatchOperation {
  readonly op: 'test' | 'add' | 'replace';
  readonly path: string;
  readonly value: unknown;
}

function pointerToken(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** The PEM text of a base64 caBundle ('' when absent or not base64 text). */
export function decodeCaBundle(caBundle: string | null | undefined): string {
  return caBundle ? Buffer.from(caBundle, 'base64').toString('utf8') : '';
}

/**
 * The opening of every patch: a test of the resourceVersion read (so a patch fails rather
 * than overwrite a change it did not see) and the generation annotation, when given.
 */
function versionAndGenerationOps(config: WebhookConfigurationLike, generation: Generation | undefined): JsonPatchOperation[] {
  const ops: JsonPatchOperation[] = [];
  if (config.metadata?.resourceVersion) ops.push({ op: 'test', path: '/metadata/resourceVersion', value: config.metadata.resourceVersion });
  if (generation !== undefined) {
    const text = formatGeneration(generation);
    if (config.metadata?.annotations) {
      ops.push({ op: 'add', path: `/metadata/annotations/${pointerToken(CA_GENERATION_ANNOTATION)}`, value: text });
    } else {
      ops.push({ op: 'add', path: '/metadata/annotations', value: { [CA_GENERATION_ANNOTATION]: text } });
    }
  }
  return ops;
}

/**
 * The JSON patch that installs the planned webhooks (`webhook-installation.ts`) into `config`,
 * each trusting `bundlePem`: the configuration then holds exactly the plan.
 */
export function installPatch(config: WebhookConfigurationLike, planned: readonly PlannedWebhook[], bundlePem: string, generation?: Generation): JsonPatchOperation[] {
  const caBundle = Buffer.from(bundlePem, 'utf8').toString('base64');
  // `add` replaces the list, or creates it where the API server dropped an empty one.
  return [...versionAndGenerationOps(config, generation), { op: 'add', path: '/webhooks', value: installableWebhooks(planned, caBundle) }];
}

/**
 * The JSON patch that sets the caBundle of every webhook of `config` to `bundlePem` (and the
 * generation annotation), or undefined when every webhook already trusts exactly that set.
 * It tests the resourceVersion and each webhook's name first, so it fails rather than patch
 * an object that changed since it was read.
 */
export function caBundlePatch(config: WebhookConfigurationLike, bundlePem: string, generation?: Generation): JsonPatchOperation[] | undefined {
  const webhooks = config.webhooks ?? [];
  const annotations = config.metadata?.annotations ?? undefined;
  const generationText = generation === undefined ? undefined : formatGeneration(generation);
  const stale = webhooks.filter((webhook) => !sameBundle(decodeCaBundle(webhook.clientConfig?.caBundle), bundlePem));
  const annotationStale = generationText !== undefined && annotations?.[CA_GENERATION_ANNOTATION] !== generationText;
  if (stale.length === 0 && !annotationStale) return undefined;

  const ops = versionAndGenerationOps(config, generation);
  const caBundle = Buffer.from(bundlePem, 'utf8').toString('base64');
  webhooks.forEach((webhook, index) => {
    if (!stale.includes(webhook)) return;
    ops.push({ op: 'test', path: `/webhooks/${index}/name`, value: webhook.name });
    // `add` replaces an existing member and creates a missing one (RFC 6902 4.1).
    if (webhook.clientConfig) ops.push({ op: 'add', path: `/webhooks/${index}/clientConfig/caBundle`, value: caBundle });
    else ops.push({ op: 'add', path: `/webhooks/${index}/clientConfig`, value: { caBundle } });
  });
  return ops;
}

// ---------------------------------------------------------------------------------------------
// API access

export type WebhookKind = 'validating' | 'mutating';

export interface WebhookConfigurationApi {
  /** The configuration, or undefined when it does not exist. */
  read(kind: WebhookKind, name: string): Promise<WebhookConfigurationLike | undefined>;
  /** Applies a JSON patch; rejects with an error whose `code` is the HTTP status. */
  patch(kind: WebhookKind, name: string, ops: readonly JsonPatchOperation[]): Promise<void>;
}

/** The HTTP status of an API request error (ApiRequestError, or any error with a numeric `code`). */
export function statusCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** The field manager named in managedFields for every write this program makes. */
export const FIELD_MANAGER = 'mesh-admission';

const WEBHOOK_CONFIGURATIONS: Readonly<Record<WebhookKind, string>> = {
  validating: '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations',
  mutating: '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations',
};

export function webhookConfigurationApi(kubeConfig: KubeConfig): WebhookConfigurationApi {
  const path = (kind: WebhookKind, name: string): string => `${WEBHOOK_CONFIGURATIONS[kind]}/${encodeURIComponent(name)}`;
  return {
    async read(kind, name) {
      try {
        return await apiRequest<WebhookConfigurationLike>(kubeConfig, { operation: 'read', path: path(kind, name) });
      } catch (error) {
        if (statusCode(error) === 404) return undefined;
        throw error;
      }
    },
    async patch(kind, name, ops) {
      await apiRequest(kubeConfig, { operation: 'patch', path: path(kind, name), query: { fieldManager: FIELD_MANAGER }, body: ops, contentType: JSON_PATCH_MEDIA_TYPE });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The registrar

export interface RegistrationTargets {
  readonly validating?: string | undefined;
  readonly mutating?: string | undefined;
}

export interface PublishOutcome {
  readonly kind: WebhookKind;
  readonly name: string;
  /**
   * patched: caBundle written; installed: the planned webhooks written (with the caBundle);
   * unchanged: already right; missing: no such object; stale: a newer generation is
   * published; waiting: webhooks are planned but the Service does not route to this replica yet.
   */
  readonly result: 'patched' | 'installed' | 'unchanged' | 'missing' | 'stale' | 'waiting';
}

/** Whether nothing is left to do: every target exists, and holds its planned webhooks. */
export function isComplete(outcomes: readonly PublishOutcome[]): boolean {
  return outcomes.every((outcome) => outcome.result !== 'missing' && outcome.result !== 'waiting');
}

/** The targets as a list, validating first. */
function targetList(targets: RegistrationTargets): { kind: WebhookKind; name: string }[] {
  const list: { kind: WebhookKind; name: string }[] = [];
  if (targets.validating) list.push({ kind: 'validating', name: targets.validating });
  if (targets.mutating) list.push({ kind: 'mutating', name: targets.mutating });
  return list;
}

const MAX_PATCH_ATTEMPTS = 4;

export class CaBundleRegistrar {
  readonly #api: WebhookConfigurationApi;
  readonly #targets: { kind: WebhookKind; name: string }[];
  readonly #logger: Logger;

  readonly #mayInstall: () => Promise<boolean>;

  /**
   * `mayInstall` answers whether planned webhooks may be installed now (the webhook's Service
   * routes to this replica); by default they are installed at the first publication.
   */
  constructor(api: WebhookConfigurationApi, targets: RegistrationTargets, logger: Logger, mayInstall: () => Promise<boolean> = async () => true) {
    this.#api = api;
    this.#targets = targetList(targets);
    this.#logger = logger;
    this.#mayInstall = mayInstall;
  }

  get targets(): readonly { kind: WebhookKind; name: string }[] {
    return this.#targets;
  }

  /**
   * Makes the caBundle of every webhook of every target trust exactly the certificates of
   * `bundlePem`. A configuration changed concurrently (the patch's test fails: 409/422) is
   * read again and patched again.
   */
  async publish(bundlePem: string, generation?: Generation): Promise<PublishOutcome[]> {
    if (bundleFingerprints(bundlePem).length === 0) throw new Error('refusing to publish an empty caBundle');
    const outcomes: PublishOutcome[] = [];
    for (const target of this.#targets) outcomes.push(await this.#publishOne(target.kind, target.name, bundlePem, generation));
    return outcomes;
  }

  async #publishOne(kind: WebhookKind, name: string, bundlePem: string, generation: Generation | undefined): Promise<PublishOutcome> {
    for (let attempt = 1; ; attempt++) {
      const config = await this.#api.read(kind, name);
      if (config === undefined) {
        this.#logger.warn({ kind, name }, `${kind} webhook configuration "${name}" does not exist yet; its caBundle will be set when it does`);
        return { kind, name, result: 'missing' };
      }
      const published = parseGeneration(config.metadata?.annotations?.[CA_GENERATION_ANNOTATION]);
      if (isOlderGeneration(generation, published)) {
        this.#logger.debug({ kind, name, published, ours: generation }, 'a newer caBundle is already published; not overwriting it');
        return { kind, name, result: 'stale' };
      }
      const planned = plannedWebhooks(config);
      const installing = planned !== undefined && !holdsPlannedWebhooks(config, planned);
      if (installing && !(await this.#mayInstall())) {
        this.#logger.info({ kind, name }, `waiting for the webhook's Service to route to this replica before installing the webhooks of ${kind} configuration "${name}"`);
        return { kind, name, result: 'waiting' };
      }
      const ops = installing ? installPatch(config, planned, bundlePem, generation) : caBundlePatch(config, bundlePem, generation);
      if (ops === undefined) return { kind, name, result: 'unchanged' };
      try {
        await this.#api.patch(kind, name, ops);
        if (installing) {
          this.#logger.info({ kind, name, webhooks: planned.map((w) => w.name) }, `webhooks of ${kind} configuration "${name}" installed: enforcement is on`);
          return { kind, name, result: 'installed' };
        }
        this.#logger.info({ kind, name, certificates: bundleFingerprints(bundlePem).length }, `caBundle of ${kind} webhook configuration "${name}" updated`);
        return { kind, name, result: 'patched' };
      } catch (error) {
        const code = statusCode(error);
        if ((code === 409 || code === 422) && attempt < MAX_PATCH_ATTEMPTS) continue;
        const what = installing ? 'install the webhooks of' : 'patch the caBundle of';
        throw new Error(`cannot ${what} ${kind} webhook configuration "${name}": ${(error as Error).message}`, { cause: error });
      }
    }
  }

  /** Whether every target exists and trusts every certificate of `pem`. */
  async isPublished(pem: string): Promise<boolean> {
    for (const target of this.#targets) {
      const config = await this.#api.read(target.kind, target.name);
      if (config === undefined) return false;
      for (const webhook of config.webhooks ?? []) {
        if (!bundleContains(decodeCaBundle(webhook.clientConfig?.caBundle), pem)) return false;
      }
    }
    return true;
  }
}

// ---------------------------------------------------------------------------------------------
// Plain-file mode: publish ca.crt of the cert dir at start, on change and periodically

export interface FileRegistrationOptions {
  readonly certDir: string;
  readonly registrar: CaBundleRegistrar;
  readonly logger: Logger;
  /** Re-publish this often even without a change (heals a caBundle reset by hand or by an upgrade). */
  readonly resyncMs?: number | undefined;
  readonly overlapMs?: number | undefined;
  readonly debounceMs?: number | undefined;
  /** Delay of the next attempt after a failure or while a target is missing. */
  readonly retryMs?: number | undefined;
  readonly now?: (() => Date) | undefined;
}

export interface Registration {
  /** Publishes now; resolves when done, rejects on failure (the periodic resync retries). */
  sync(): Promise<void>;
  close(): void;
}

export const DEFAULT_RESYNC_MS = 60_000;
/** The delay before the next attempt after a failed or incomplete publication. */
const RETRY_MS = 5_000;

/**
 * Publishes `ca.crt` of `certDir` (plus, for `overlapMs`, the CAs it held before) to the
 * registrar's targets now, whenever the directory changes, and every `resyncMs`.
 */
export function registerCaFromFiles(options: FileRegistrationOptions): Registration {
  const now = options.now ?? (() => new Date());
  const file = certificatePaths(options.certDir).caCert;
  let previous: BundleCertificate[] = [];
  let retained: RetainedCa[] = [];
  let closed = false;
  let running: Promise<void> | undefined;

  /** Whether every target trusts the bundle afterwards (none is missing). */
  let complete = false;
  const syncOnce = async (): Promise<void> => {
    const pem = await readOptionalFile(file);
    if (pem === undefined) {
      throw new Error(`${file} does not exist: cannot publish a caBundle without the CA (mount ${CERTIFICATE_FILE_NAMES.caCert} with the serving certificate)`);
    }
    const current = bundleCertificates(pem, file);
    const result = overlapBundle(previous, current, retained, now(), options.overlapMs ?? DEFAULT_OVERLAP_MS);
    const outcomes = await options.registrar.publish(result.bundle);
    complete = isComplete(outcomes);
    previous = current;
    retained = [...result.retained];
  };
  // One publication at a time; a request during one runs once more afterwards.
  let again = false;
  const sync = (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          if (closed) return;
          await syncOnce();
        } while (again);
      } finally {
        running = undefined;
      }
    })();
    return running;
  };
  // After a failure, or while a target does not exist yet, try again soon rather than at the
  // next resync: at install the configurations may appear a moment after the webhook starts.
  let retry: ReturnType<typeof setTimeout> | undefined;
  const retrySoon = (): void => {
    if (closed || retry !== undefined) return;
    retry = setTimeout(() => {
      retry = undefined;
      syncLogged();
    }, Math.min(options.resyncMs ?? DEFAULT_RESYNC_MS, options.retryMs ?? RETRY_MS));
    retry.unref();
  };
  const syncLogged = (): void => {
    sync().then(
      () => {
        if (!complete) retrySoon();
      },
      (error: unknown) => {
        options.logger.error({ err: error }, 'publishing the caBundle failed; will retry');
        retrySoon();
      },
    );
  };

  let timer: ReturnType<typeof setTimeout> | undefined;
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(options.certDir, () => {
      if (timer !== undefined) clearTimeout(timer);
      timer = setTimeout(syncLogged, options.debounceMs ?? 200);
    });
    watcher.on('error', (error) => options.logger.warn({ err: error }, `watching ${options.certDir} failed; relying on the periodic resync`));
  } catch (error) {
    options.logger.warn({ err: error }, `cannot watch ${options.certDir}; relying on the periodic resync`);
  }
  const interval = setInterval(syncLogged, options.resyncMs ?? DEFAULT_RESYNC_MS);
  interval.unref();

  return {
    async sync() {
      try {
        await sync();
      } finally {
        if (!complete) retrySoon();
      }
    },
    close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      if (retry !== undefined) clearTimeout(retry);
      clearInterval(interval);
      watcher?.close();
    },
  };
}
