/**
 * The webhook's own CA and serving certificate, kept in a Secret of its namespace
 * (`serve --cert-secret NAME`, the chart's `certificates.mode: self`) and written to the cert
 * dir (an emptyDir) for the HTTPS server.
 *
 * Every replica runs the same loop (`CertificateSecretStore.sync`): read the Secret, decide
 * what is due (`decideRenewal`, pure: the CA rotation below, then the reuse / renew / generate
 * decision the cert dir gets too, `decideCertificates`), write the new state with optimistic
 * concurrency, write the files. Replicas starting together: each one that finds no Secret generates a CA and
 * tries to create it; all but one get 409 AlreadyExists, re-read, and use the winner's. An
 * update carries the resourceVersion it read, so a replica that lost a race re-reads and
 * decides again instead of overwriting.
 *
 * CA rotation keeps the old and the new CA trusted together (see `ca-bundle.ts` for why):
 *  1. stage: `caRotateBeforeDays` before the signing CA expires, a next CA is generated and
 *     added to the trust bundle (`ca.crt`, published as the caBundle); nothing is signed by it;
 *  2. promote: once the next CA has been in the published caBundle for `promoteAfterMs`, the
 *     serving certificate is re-issued by it and it becomes the signing CA; the old CA stays in
 *     the trust bundle ("retired");
 *  3. prune: a retired CA leaves the bundle when it expires, when no certificate it signed can
 *     be valid any more (serving certificates never outlive their CA).
 *
 * Secret layout (type kubernetes.io/tls): `tls.crt`, `tls.key` (serving pair), `ca.crt` (the
 * trust bundle, signing CA first, as the cert dir's `ca.crt`), `ca.key` (signing CA key),
 * `next-ca.crt`/`next-ca.key` while a CA is staged; annotations: the generation counter and
 * when the next CA was staged.
 */
import { X509Certificate } from 'node:crypto';
import type { KubeConfig, V1OwnerReference, V1Secret } from '@kubernetes/client-node';
import { apiRequest } from './api-request.ts';
import { caPairProblem, decideCertificates, parseMaterial, type CertificateDecision, type CertificateNames } from '../tls/certificate-decision.ts';
import { CERTIFICATE_FILE_NAMES, certificatePaths, readCertificateFiles, writeCertificateFiles, type CertificateFileContents } from '../tls/certificate-files.ts';
import { DEFAULT_CA_VALIDITY_DAYS, generateCertificateAuthority, issueServingCertificate, serviceHostname } from '../tls/generate.ts';
import { expiresWithin, hasExpired } from '../tls/validity.ts';
import type { Logger } from '../observability/logger.ts';
import { FIELD_MANAGER, bundleCertificates, joinBundle, statusCode, type Generation } from './ca-bundle.ts';

export const SECRET_KEYS = { ...CERTIFICATE_FILE_NAMES, nextCaCert: 'next-ca.crt', nextCaKey: 'next-ca.key' } as const;

/** How the certificate decision names the pieces of the Secret: the signing CA is the first of ca.crt. */
const SIGNING_NAMES: CertificateNames = { caCert: 'the signing CA', caKey: SECRET_KEYS.caKey, cert: SECRET_KEYS.cert, key: SECRET_KEYS.key };
const NEXT_CA_NAMES: CertificateNames = { ...SIGNING_NAMES, caCert: SECRET_KEYS.nextCaCert, caKey: SECRET_KEYS.nextCaKey };

/** Counter of writes by the store: with the Secret's uid, the generation of a published bundle. */
export const SECRET_GENERATION_ANNOTATION = 'mesh-admission.io/ca-generation';
export const NEXT_CA_STAGED_ANNOTATION = 'mesh-admission.io/next-ca-staged-at';

/** How long a staged CA must have been published before it signs anything. */
export const DEFAULT_PROMOTE_AFTER_MS = 10 * 60 * 1000;

export interface KeyPair {
  readonly cert: string;
  readonly key: string;
}

export interface CertificateState {
  /** The CA that signs serving certificates (first in `ca.crt`). */
  readonly signing: KeyPair;
  /** A new CA, trusted (published) but not yet signing, and when it was staged. */
  readonly next: (KeyPair & { readonly stagedAt: Date }) | undefined;
  /** Older CAs, PEM each: still trusted until they expire. */
  readonly retired: readonly string[];
  /** The serving certificate (leaf first) and key; undefined when missing or unreadable. */
  readonly serving: KeyPair | undefined;
}

export interface RenewalPolicy {
  readonly serviceName: string;
  readonly namespace: string;
  /** Serving certificate lifetime and renewal margin (config `certificates.*`). */
  readonly validityDays: number;
  readonly renewBeforeDays: number;
  readonly caValidityDays: number;
  /** A next CA is staged this long before the signing CA expires; the old CA's overlap. */
  readonly caRotateBeforeDays: number;
  readonly promoteAfterMs: number;
}

/** The policy for a config: the CA rotates twice the serving margin before it expires. */
export function renewalPolicy(options: {
  serviceName: string;
  namespace: string;
  validityDays: number;
  renewBeforeDays: number;
  caValidityDays?: number | undefined;
  promoteAfterMs?: number | undefined;
}): RenewalPolicy {
  const caValidityDays = options.caValidityDays ?? DEFAULT_CA_VALIDITY_DAYS;
  const caRotateBeforeDays = 2 * options.renewBeforeDays;
  if (caRotateBeforeDays >= caValidityDays) {
    throw new Error(`the CA would be rotated ${caRotateBeforeDays} days before it expires, but it is only valid ${caValidityDays} days: lower renewBeforeDays`);
  }
  return {
    serviceName: options.serviceName,
    namespace: options.namespace,
    validityDays: options.validityDays,
    renewBeforeDays: options.renewBeforeDays,
    caValidityDays,
    caRotateBeforeDays,
    promoteAfterMs: options.promoteAfterMs ?? DEFAULT_PROMOTE_AFTER_MS,
  };
}

// ---------------------------------------------------------------------------------------------
// Decoding and encoding the Secret (pure)

export interface DecodedSecret {
  /** Undefined when the Secret holds no usable signing CA (then a new one is created). */
  readonly state: CertificateState | undefined;
  /** Why the state is unusable or parts of it were dropped, for the log. */
  readonly notes: readonly string[];
  /** Unexpired CA certificates found in `ca.crt`, kept trusted if the state must be replaced. */
  readonly leftovers: readonly string[];
}

function text(data: Readonly<Record<string, string>>, key: string): string | undefined {
  const value = data[key];
  return value === undefined || value === '' ? undefined : Buffer.from(value, 'base64').toString('utf8');
}

/** Why `pair` cannot be a CA that signs serving certificates, or undefined. */
function caProblem(pair: KeyPair, names: CertificateNames): string | undefined {
  return caPairProblem(parseMaterial({ caCert: pair.cert, caKey: pair.key }, names), names);
}

/** Reads the certificate state from a Secret's `data` (base64 values) and annotations. */
export function decodeSecret(
  data: Readonly<Record<string, string>>,
  annotations: Readonly<Record<string, string>>,
  now: Date,
): DecodedSecret {
  const notes: string[] = [];
  const caText = text(data, SECRET_KEYS.caCert);
  const caKey = text(data, SECRET_KEYS.caKey);
  let trusted: string[] = [];
  if (caText !== undefined) {
    try {
      trusted = bundleCertificates(caText, SECRET_KEYS.caCert).map((c) => c.pem);
    } catch (error) {
      notes.push((error as Error).message);
    }
  }
  const leftovers = trusted.filter((pem) => !hasExpired(new X509Certificate(pem), now));
  const signingCert = trusted[0];
  if (signingCert === undefined || caKey === undefined) {
    notes.push(`no CA in ${SECRET_KEYS.caCert}/${SECRET_KEYS.caKey}`);
    return { state: undefined, notes, leftovers };
  }
  const signing = { cert: signingCert, key: caKey };
  const problem = caProblem(signing, SIGNING_NAMES);
  if (problem !== undefined) {
    notes.push(problem);
    return { state: undefined, notes, leftovers };
  }

  let next: CertificateState['next'];
  const nextCert = text(data, SECRET_KEYS.nextCaCert);
  const nextKey = text(data, SECRET_KEYS.nextCaKey);
  if (nextCert !== undefined && nextKey !== undefined) {
    const nextProblem = caProblem({ cert: nextCert, key: nextKey }, NEXT_CA_NAMES);
    const staged = Date.parse(annotations[NEXT_CA_STAGED_ANNOTATION] ?? '');
    if (nextProblem !== undefined) notes.push(`${nextProblem}; dropping it`);
    // Without a readable staging time, count from now: promotion waits rather than rushes.
    else next = { cert: new X509Certificate(nextCert).toString(), key: nextKey, stagedAt: Number.isNaN(staged) ? now : new Date(staged) };
  }
  const excluded = new Set([new X509Certificate(signingCert).fingerprint256, ...(next ? [new X509Certificate(next.cert).fingerprint256] : [])]);
  const retired = trusted.slice(1).filter((pem) => !excluded.has(new X509Certificate(pem).fingerprint256));

  const servingCert = text(data, SECRET_KEYS.cert);
  const servingKey = text(data, SECRET_KEYS.key);
  const serving = servingCert !== undefined && servingKey !== undefined ? { cert: servingCert, key: servingKey } : undefined;
  return { state: { signing, next, retired, serving }, notes, leftovers };
}

/** `ca.crt`, and the caBundle to publish: signing CA, next CA, retired CAs; expired ones left out. */
export function trustBundle(state: CertificateState, now: Date): string {
  const pems = [state.signing.cert, ...(state.next ? [state.next.cert] : []), ...state.retired];
  return joinBundle(pems.flatMap((pem) => bundleCertificates(pem, 'CA certificate')), now);
}

/** The Secret `data` (base64) and annotations for a state. */
export function encodeSecret(state: CertificateState, now: Date): { data: Record<string, string>; annotations: Record<string, string | undefined> } {
  const b64 = (value: string): string => Buffer.from(value, 'utf8').toString('base64');
  const data: Record<string, string> = {
    [SECRET_KEYS.caCert]: b64(trustBundle(state, now)),
    [SECRET_KEYS.caKey]: b64(state.signing.key),
  };
  if (state.serving) {
    data[SECRET_KEYS.cert] = b64(state.serving.cert);
    data[SECRET_KEYS.key] = b64(state.serving.key);
  }
  if (state.next) {
    data[SECRET_KEYS.nextCaCert] = b64(state.next.cert);
    data[SECRET_KEYS.nextCaKey] = b64(state.next.key);
  }
  return { data, annotations: { [NEXT_CA_STAGED_ANNOTATION]: state.next?.stagedAt.toISOString() } };
}

// ---------------------------------------------------------------------------------------------
// The renewal decision (pure)

export type RenewalAction = 'keep' | 'create' | 'stage-ca' | 'promote-ca' | 'renew-serving' | 'prune';

export interface RenewalDecision {
  readonly action: RenewalAction;
  readonly reason: string;
}

/** The shared reuse / renew / generate decision about a state's signing CA and serving pair. */
function certificateDecision(state: CertificateState, policy: RenewalPolicy, now: Date): CertificateDecision {
  const pem = { caCert: state.signing.cert, caKey: state.signing.key, cert: state.serving?.cert, key: state.serving?.key };
  return decideCertificates(parseMaterial(pem, SIGNING_NAMES), SIGNING_NAMES, {
    now,
    hostname: serviceHostname(policy.serviceName, policy.namespace),
    renewBeforeDays: policy.renewBeforeDays,
    // The rotation replaces the signing CA before it expires (`rotationStep`).
    caRenewBeforeDays: 0,
  });
}

/** The CA rotation step that is due (stage or promote; see the top of this file), or undefined. */
function rotationStep(state: CertificateState, policy: RenewalPolicy, now: Date, nextCaPublished: boolean): RenewalDecision | undefined {
  const signing = new X509Certificate(state.signing.cert);
  const expiry = signing.validToDate.toISOString();
  if (state.next === undefined) {
    // An expired signing CA without a staged successor is replaced outright (`create`).
    if (hasExpired(signing, now) || !expiresWithin(signing, now, policy.caRotateBeforeDays)) return undefined;
    return { action: 'stage-ca', reason: `the signing CA expires ${expiry}, within ${policy.caRotateBeforeDays} days` };
  }
  if (hasExpired(signing, now)) return { action: 'promote-ca', reason: `the signing CA expired ${expiry}` };
  const due = now.getTime() >= state.next.stagedAt.getTime() + policy.promoteAfterMs;
  if (due && nextCaPublished) return { action: 'promote-ca', reason: `the next CA has been published since ${state.next.stagedAt.toISOString()}` };
  return undefined;
}

/**
 * What to do next with a certificate state, one step at a time (the store applies steps until
 * `keep`). `nextCaPublished`: whether the staged CA is in the published caBundle.
 */
export function decideRenewal(state: CertificateState | undefined, policy: RenewalPolicy, now: Date, nextCaPublished: boolean): RenewalDecision {
  if (state === undefined) return { action: 'create', reason: 'no usable CA' };
  const rotation = rotationStep(state, policy, now, nextCaPublished);
  if (rotation !== undefined) return rotation;
  const { action, reason } = certificateDecision(state, policy, now);
  if (action === 'generate') return { action: 'create', reason };
  if (action === 'renew-serving') return { action, reason };
  const expired = state.retired.filter((pem) => hasExpired(new X509Certificate(pem), now));
  if (expired.length > 0) return { action: 'prune', reason: `${expired.length} retired CA certificate(s) expired` };
  return { action: 'keep', reason: 'certificates are current' };
}

async function newCa(policy: RenewalPolicy, now: Date): Promise<KeyPair> {
  return generateCertificateAuthority({
    // Unique per generation, so an old and a new CA are never confused by subject alone.
    commonName: `${policy.serviceName}-ca@${Math.floor(now.getTime() / 1000)}`,
    validityDays: policy.caValidityDays,
    now,
  });
}

async function newServing(policy: RenewalPolicy, ca: KeyPair, now: Date): Promise<KeyPair> {
  return issueServingCertificate({ serviceName: policy.serviceName, namespace: policy.namespace, validityDays: policy.validityDays, now }, ca);
}

/** Carries out one decision. `leftovers`: CAs to keep trusting when the state is replaced. */
export async function applyDecision(
  decision: RenewalDecision,
  state: CertificateState | undefined,
  policy: RenewalPolicy,
  now: Date,
  leftovers: readonly string[] = [],
): Promise<CertificateState | undefined> {
  switch (decision.action) {
    case 'keep':
      return state;
    case 'create': {
      const signing = await newCa(policy, now);
      const old = state ? [state.signing.cert, ...state.retired] : leftovers;
      return { signing, next: undefined, retired: old, serving: await newServing(policy, signing, now) };
    }
    case 'stage-ca':
      if (!state) throw new Error('stage-ca needs a state');
      return { ...state, next: { ...(await newCa(policy, now)), stagedAt: now } };
    case 'promote-ca': {
      if (!state?.next) throw new Error('promote-ca needs a staged CA');
      const signing = { cert: state.next.cert, key: state.next.key };
      return { signing, next: undefined, retired: [state.signing.cert, ...state.retired], serving: await newServing(policy, signing, now) };
    }
    case 'renew-serving':
      if (!state) throw new Error('renew-serving needs a state');
      return { ...state, serving: await newServing(policy, state.signing, now) };
    case 'prune':
      if (!state) throw new Error('prune needs a state');
      return { ...state, retired: state.retired.filter((pem) => !hasExpired(new X509Certificate(pem), now)) };
  }
}

// ---------------------------------------------------------------------------------------------
// API access

/** The parts of a Secret the store reads and writes. */
export type SecretLike = Pick<V1Secret, 'metadata' | 'data' | 'type'>;

export interface SecretApi {
  /** The Secret, or undefined when it does not exist. */
  read(): Promise<SecretLike | undefined>;
  /** Rejects with `code` 409 when it already exists. */
  create(secret: SecretLike): Promise<SecretLike>;
  /** Rejects with `code` 409 when the resourceVersion is not the current one. */
  replace(secret: SecretLike): Promise<SecretLike>;
}

export function secretApi(kubeConfig: KubeConfig, namespace: string, name: string): SecretApi {
  const secrets = `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`;
  const secret = `${secrets}/${encodeURIComponent(name)}`;
  const query = { fieldManager: FIELD_MANAGER };
  return {
    async read() {
      try {
        return await apiRequest<SecretLike>(kubeConfig, { operation: 'read', path: secret });
      } catch (error) {
        if (statusCode(error) === 404) return undefined;
        throw error;
      }
    },
    create: (body) => apiRequest<SecretLike>(kubeConfig, { operation: 'create', path: secrets, query, body }),
    replace: (body) => apiRequest<SecretLike>(kubeConfig, { operation: 'replace', path: secret, query, body }),
  };
}

// ---------------------------------------------------------------------------------------------
// The store

export interface StoreOptions {
  readonly api: SecretApi;
  readonly name: string;
  readonly namespace: string;
  readonly certDir: string;
  readonly policy: RenewalPolicy;
  readonly logger: Logger;
  /** Whether every registration target trusts this CA (PEM); without registration: always. */
  readonly isPublished?: ((caPem: string) => Promise<boolean>) | undefined;
  /** Set as the Secret's owner, so deleting the webhook configuration (uninstall) deletes it. */
  readonly owner?: (() => Promise<V1OwnerReference | undefined>) | undefined;
  readonly now?: (() => Date) | undefined;
}

export interface SyncResult {
  /** `ca.crt`: the caBundle to publish. */
  readonly trustBundle: string;
  readonly generation: Generation;
  /** The steps taken (empty when the Secret was already current). */
  readonly actions: readonly RenewalDecision[];
  /** Whether any file in the cert dir changed. */
  readonly filesChanged: boolean;
  readonly state: CertificateState;
}

const MAX_SYNC_ATTEMPTS = 5;
/** More steps than any sequence needs (create; or prune + stage + renew): stops a loop. */
const MAX_STEPS = 6;

export const STORE_LABELS = { 'app.kubernetes.io/name': 'mesh-admission', 'app.kubernetes.io/managed-by': 'mesh-admission' } as const;

export class CertificateSecretStore {
  readonly #options: StoreOptions;

  constructor(options: StoreOptions) {
    this.#options = options;
  }

  /**
   * Brings the Secret up to date (creating it when absent) and writes the cert dir from it.
   * Retries on write conflicts with other replicas; throws when the API refuses otherwise.
   */
  async sync(): Promise<SyncResult> {
    const { api, policy, logger, name, namespace } = this.#options;
    const now = (this.#options.now ?? (() => new Date()))();
    for (let attempt = 1; attempt <= MAX_SYNC_ATTEMPTS; attempt++) {
      const secret = await api.read();
      const decoded = secret ? decodeSecret(secret.data ?? {}, secret.metadata?.annotations ?? {}, now) : undefined;
      if (secret && decoded && decoded.notes.length > 0) logger.warn({ secret: `${namespace}/${name}`, notes: decoded.notes }, 'certificate Secret partly unusable');

      let state = decoded?.state;
      const actions: RenewalDecision[] = [];
      for (let step = 0; step < MAX_STEPS; step++) {
        const published = state?.next ? await this.#published(state.next.cert) : false;
        const decision = decideRenewal(state, policy, now, published);
        if (decision.action === 'keep' || actions.some((a) => a.action === decision.action)) break;
        state = await applyDecision(decision, state, policy, now, decoded?.leftovers ?? []);
        actions.push(decision);
      }
      if (state === undefined) throw new Error('no certificate state after renewal');

      const owner = await this.#owner(secret);
      let stored: SecretLike | undefined = secret;
      try {
        if (!secret) {
          stored = await api.create(this.#secretObject(undefined, state, now, owner));
          logger.info({ secret: `${namespace}/${name}` }, 'created the certificate Secret with a new CA and serving certificate');
        } else if (actions.length > 0 || owner !== undefined) {
          stored = await api.replace(this.#secretObject(secret, state, now, owner));
          for (const action of actions) logger.info({ secret: `${namespace}/${name}`, action: action.action, reason: action.reason }, 'certificate Secret updated');
        }
      } catch (error) {
        if (statusCode(error) === 409) {
          logger.debug({ secret: `${namespace}/${name}`, attempt }, 'another replica changed the certificate Secret first; reading it again');
          continue;
        }
        throw new Error(`cannot ${secret ? 'update' : 'create'} Secret ${namespace}/${name}: ${(error as Error).message}`, { cause: error });
      }
      const generation = {
        uid: stored?.metadata?.uid ?? '',
        counter: Number(stored?.metadata?.annotations?.[SECRET_GENERATION_ANNOTATION] ?? 0) || 0,
      };
      const trust = trustBundle(state, now);
      const filesChanged = await this.#writeFiles(state, trust);
      return { trustBundle: trust, generation, actions, filesChanged, state };
    }
    throw new Error(`Secret ${namespace}/${name} kept changing under us (${MAX_SYNC_ATTEMPTS} conflicts in a row)`);
  }

  async #published(caPem: string): Promise<boolean> {
    return this.#options.isPublished ? this.#options.isPublished(caPem) : true;
  }

  /** The owner reference to add, when there is one and the Secret lacks it. */
  async #owner(secret: SecretLike | undefined): Promise<V1OwnerReference | undefined> {
    if (!this.#options.owner) return undefined;
    try {
      const owner = await this.#options.owner();
      if (owner === undefined) return undefined;
      return secret?.metadata?.ownerReferences?.some((ref) => ref.uid === owner.uid) ? undefined : owner;
    } catch (error) {
      this.#options.logger.warn({ err: error }, 'cannot look up the owner of the certificate Secret; leaving it unowned');
      return undefined;
    }
  }

  #secretObject(current: SecretLike | undefined, state: CertificateState, now: Date, owner: V1OwnerReference | undefined): SecretLike {
    const encoded = encodeSecret(state, now);
    const counter = Number(current?.metadata?.annotations?.[SECRET_GENERATION_ANNOTATION] ?? 0) || 0;
    const annotations: Record<string, string> = { ...(current?.metadata?.annotations ?? {}) };
    for (const [key, value] of Object.entries({ ...encoded.annotations, [SECRET_GENERATION_ANNOTATION]: String(counter + 1) })) {
      if (value === undefined) delete annotations[key];
      else annotations[key] = value;
    }
    // Keys the store does not own (added by someone else) are kept; its own are replaced.
    const data: Record<string, string> = { ...(current?.data ?? {}) };
    for (const key of Object.values(SECRET_KEYS)) delete data[key];
    Object.assign(data, encoded.data);
    const ownerReferences = [...(current?.metadata?.ownerReferences ?? []), ...(owner ? [owner] : [])];
    return {
      type: current?.type ?? 'kubernetes.io/tls',
      metadata: {
        ...(current?.metadata ?? {}),
        name: this.#options.name,
        namespace: this.#options.namespace,
        labels: { ...STORE_LABELS, ...(current?.metadata?.labels ?? {}) },
        annotations,
        ...(ownerReferences.length > 0 ? { ownerReferences } : {}),
      },
      data,
    };
  }

  /** Writes the files that differ; returns whether any did. */
  async #writeFiles(state: CertificateState, trust: string): Promise<boolean> {
    if (state.serving === undefined) throw new Error('no serving certificate to write');
    const current = await readCertificateFiles(certificatePaths(this.#options.certDir));
    const wanted: Required<CertificateFileContents> = { caCert: trust, caKey: state.signing.key, cert: state.serving.cert, key: state.serving.key };
    const changed: CertificateFileContents = {};
    for (const file of Object.keys(wanted) as (keyof CertificateFileContents)[]) {
      if (current[file] !== wanted[file]) changed[file] = wanted[file];
    }
    if (Object.keys(changed).length === 0) return false;
    // The serving pair and the CA bundle go together, so a reader never sees a leaf without its CA.
    await writeCertificateFiles(this.#options.certDir, changed.cert !== undefined || changed.key !== undefined ? wanted : changed);
    return true;
  }
}
