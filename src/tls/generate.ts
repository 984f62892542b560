/**
 * Generates the webhook's certificate authority and serving certificate with `selfsigned`.
 *
 * The API server calls a webhook at `https://<service>.<namespace>.svc:<port>` and trusts
 * only the `caBundle` of the webhook configuration, so the serving certificate is signed by
 * a small private CA whose certificate becomes that `caBundle`. Keeping the CA separate from
 * the serving certificate lets the serving certificate be renewed without touching the
 * webhook configurations (see `issueServingCertificate`).
 *
 * Keys are ECDSA P-256 and signatures SHA-256: `selfsigned` 5 supports both, P-256 keys are
 * generated in milliseconds, and SHA-256 must be requested explicitly because `selfsigned`
 * defaults to SHA-1, which Go's TLS stack (the API server) rejects.
 */

import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { generate as selfsignedGenerate } from 'selfsigned';
import { DAY_MS } from './validity.ts';
import { isDns1123Label } from '../kubernetes-names.ts';

type SelfsignedOptions = NonNullable<Parameters<typeof selfsignedGenerate>[1]>;

/**
 * `selfsigned` and its ASN.1 stack load only when a certificate is generated: about 80 ms of
 * start-up that a restart with certificates in place does not need.
 */
async function generate(...args: Parameters<typeof selfsignedGenerate>): ReturnType<typeof selfsignedGenerate> {
  const { generate: run } = await import('selfsigned');
  return run(...args);
}

/** PEM strings; the file each one is written to is in `certificate-files.ts`. */
export interface CertificateBundle {
  readonly caCert: string;
  readonly caKey: string;
  readonly cert: string;
  readonly key: string;
}

export interface CertificateAuthority {
  readonly cert: string;
  readonly key: string;
}

export interface ServingCertificate {
  readonly cert: string;
  readonly key: string;
}

export interface GenerateOptions {
  /** Name of the Kubernetes Service in front of the webhook. */
  readonly serviceName: string;
  readonly namespace: string;
  /** Lifetime of the serving certificate. */
  readonly validityDays: number;
  /** Lifetime of the CA; defaults to `DEFAULT_CA_VALIDITY_DAYS`. */
  readonly caValidityDays?: number | undefined;
  /** The current time; tests pass a fixed one. */
  readonly now?: Date | undefined;
}

export const DEFAULT_CA_VALIDITY_DAYS = 3650;

/** IP SANs so local development (`https://127.0.0.1:8443`, `https://[::1]:8443`) verifies. */
export const SERVING_IP_ADDRESSES: readonly string[] = Object.freeze(['127.0.0.1', '::1']);

/**
 * Certificates start a little in the past so that a node or API server whose clock is slightly
 * behind does not reject a certificate generated a second ago as "not yet valid".
 */
const CLOCK_SKEW_MS = 5 * 60 * 1000;

/**
 * selfsigned's certificate PEM lacks the final newline; without it, concatenating files
 * (`cat tls.crt ca.crt`, a chain in one file) produces invalid PEM.
 */
function withFinalNewline(pem: string): string {
  return pem.endsWith('\n') ? pem : `${pem}\n`;
}

/** DNS names the serving certificate covers: local development plus the in-cluster names. */
export function servingDnsNames(serviceName: string, namespace: string): string[] {
  return ['localhost', `${serviceName}.${namespace}.svc`, `${serviceName}.${namespace}.svc.cluster.local`];
}

/** The name the API server verifies when it calls the webhook through a service reference. */
export function serviceHostname(serviceName: string, namespace: string): string {
  return `${serviceName}.${namespace}.svc`;
}

function checkLabel(what: string, value: string): void {
  // The names end up in the certificate subject and SANs; anything else would also be an
  // invalid Kubernetes name, so failing early gives the clearer message.
  if (!isDns1123Label(value)) {
    throw new Error(`${what} ${JSON.stringify(value)} is not a valid DNS-1123 label (lower-case letters, digits and "-", at most 63 characters)`);
  }
}

function checkDays(what: string, value: number): void {
  if (!Number.isFinite(value) || value <= 0) {
    throw new Error(`${what} must be a positive number of days, got ${value}`);
  }
}

/** selfsigned signs with the leaf's key type, so the leaf must use the CA's key type. */
function keyOptionsFor(caKeyPem: string): Pick<SelfsignedOptions, 'keyType' | 'curve' | 'keySize'> {
  const type = createPrivateKey(caKeyPem).asymmetricKeyType;
  if (type === 'ec') return { keyType: 'ec', curve: 'P-256' };
  if (type === 'rsa') return { keyType: 'rsa', keySize: 2048 };
  throw new Error(`unsupported CA key type ${type ?? 'unknown'}: only EC and RSA CA keys can sign the serving certificate`);
}

/** A new self-signed CA that may only sign certificates (and CRLs). */
export async function generateCertificateAuthority(opts: {
  readonly commonName: string;
  readonly validityDays: number;
  readonly now?: Date | undefined;
}): Promise<CertificateAuthority> {
  checkDays('caValidityDays', opts.validityDays);
  const now = opts.now ?? new Date();
  const result = await generate([{ name: 'commonName', value: opts.commonName }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfterDate: new Date(now.getTime() + opts.validityDays * DAY_MS),
    extensions: [
      // pathLen 0: this CA signs serving certificates only, never another CA.
      { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  return { cert: withFinalNewline(result.cert), key: withFinalNewline(result.private) };
}

/**
 * A serving certificate for the webhook Service, signed by `ca`. Its lifetime is cut at the
 * CA's expiry: a certificate outliving its issuer would fail verification anyway.
 */
export async function issueServingCertificate(
  opts: Omit<GenerateOptions, 'caValidityDays'>,
  ca: CertificateAuthority,
): Promise<ServingCertificate> {
  checkLabel('serviceName', opts.serviceName);
  checkLabel('namespace', opts.namespace);
  checkDays('validityDays', opts.validityDays);
  const now = opts.now ?? new Date();
  const caExpiry = new X509Certificate(ca.cert).validToDate;
  const notAfter = new Date(Math.min(now.getTime() + opts.validityDays * DAY_MS, caExpiry.getTime()));

  const keyOptions = keyOptionsFor(ca.key);
  const dnsNames = servingDnsNames(opts.serviceName, opts.namespace);
  const result = await generate([{ name: 'commonName', value: serviceHostname(opts.serviceName, opts.namespace) }], {
    ...keyOptions,
    algorithm: 'sha256',
    notBeforeDate: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfterDate: notAfter,
    ca: { cert: ca.cert, key: ca.key },
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      // keyEncipherment (RSA key transport) is only valid for RSA keys; RFC 5480 forbids it
      // for EC keys, whose TLS use is covered by digitalSignature.
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: keyOptions.keyType === 'rsa', critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          ...dnsNames.map((value) => ({ type: 2 as const, value })),
          ...SERVING_IP_ADDRESSES.map((ip) => ({ type: 7 as const, ip })),
        ],
      },
    ],
  });
  return { cert: withFinalNewline(result.cert), key: withFinalNewline(result.private) };
}

/** A new CA and a serving certificate signed by it. */
export async function generateCertificates(opts: GenerateOptions): Promise<CertificateBundle> {
  // Validate everything before spending time on key generation.
  checkLabel('serviceName', opts.serviceName);
  checkLabel('namespace', opts.namespace);
  checkDays('validityDays', opts.validityDays);
  const now = opts.now ?? new Date();
  const ca = await generateCertificateAuthority({
    // Unique per generation (the client-go convention `<host>-ca@<unix seconds>`), so that an
    // old and a new CA are never confused by subject name alone.
    commonName: `${opts.serviceName}-ca@${Math.floor(now.getTime() / 1000)}`,
    validityDays: opts.caValidityDays ?? DEFAULT_CA_VALIDITY_DAYS,
    now,
  });
  const serving = await issueServingCertificate(opts, ca);
  return { caCert: ca.cert, caKey: ca.key, cert: serving.cert, key: serving.key };
}
