/**
 * The one decision about a CA and serving certificate found in place — the files of a cert
 * dir (`ensure.ts`) or the webhook's certificate Secret (`certificate-secret.ts`): reuse
 * them, issue a new serving certificate with the CA kept, or generate both. Every check lives
 * here, once; the callers only read and write files or Secrets.
 *
 * Keeping the CA matters: a new CA means a new `caBundle` in the webhook configurations. And
 * a serving pair that fails these checks would make every verified client (the API server)
 * fail its handshake, so neither start-up nor reload (`reloader.ts`) may serve it.
 */
import type { KeyObject, X509Certificate } from 'node:crypto';
import { parseCertificates, parsePrivateKey, type CertificateFileContents } from './certificate-files.ts';
import { usesSha1 } from './signature-algorithm.ts';
import { expiresWithin, hasExpired } from './validity.ts';

/** What each piece is called in messages: its file path, or its name in the Secret. */
export interface CertificateNames {
  readonly caCert: string;
  readonly caKey: string;
  readonly cert: string;
  readonly key: string;
}

export interface CertificateMaterial {
  /**
   * The CAs clients are given to verify the server (ca.crt: the caBundle, during a CA rotation
   * the old and the new one), the signing CA first. Undefined when unknown (a mounted TLS Secret without ca.crt): the chain is then not
   * checked here, the API server checks it against the caBundle it was given.
   */
  readonly caCerts: readonly X509Certificate[] | undefined;
  /** The signing CA's key; undefined where only the serving pair is at hand. */
  readonly caKey: KeyObject | undefined;
  /** tls.crt: the leaf, then any intermediates. */
  readonly chain: readonly X509Certificate[] | undefined;
  readonly key: KeyObject | undefined;
  /** Pieces that are there but not valid PEM, with the error that names them. */
  readonly unreadable: Readonly<Partial<Record<keyof CertificateNames, Error>>>;
}

export interface CertificateRequirements {
  readonly now: Date;
  /** The name the API server dials (`<service>.<namespace>.svc`); unchecked when undefined. */
  readonly hostname: string | undefined;
  /** The serving certificate is due this many days before it expires (0: once expired). */
  readonly renewBeforeDays: number;
  /**
   * The signing CA is due this many days before it expires. The Secret store rotates its CA
   * earlier through a staged successor, so there only an expired CA is due (0).
   */
  readonly caRenewBeforeDays: number;
}

export type CertificateAction = 'reuse' | 'renew-serving' | 'generate';

export interface CertificateDecision {
  readonly action: CertificateAction;
  /** What was found, for the log: why the action was taken. */
  readonly reason: string;
}

/** Parses the PEM text of each piece present; one that fails is recorded, not thrown. */
export function parseMaterial(pem: CertificateFileContents, names: CertificateNames): CertificateMaterial {
  const unreadable: Partial<Record<keyof CertificateNames, Error>> = {};
  const parse = <T>(piece: keyof CertificateNames, read: (text: string, name: string) => T): T | undefined => {
    const text = pem[piece];
    if (text === undefined) return undefined;
    try {
      return read(text, names[piece]);
    } catch (error) {
      unreadable[piece] = error as Error;
      return undefined;
    }
  };
  return {
    chain: parse('cert', parseCertificates),
    key: parse('key', parsePrivateKey),
    caCerts: parse('caCert', parseCertificates),
    caKey: parse('caKey', parsePrivateKey),
    unreadable,
  };
}

/** The error of the first piece that is not valid PEM, or undefined. */
export function firstUnreadable(material: CertificateMaterial): Error | undefined {
  return Object.values(material.unreadable)[0];
}

function signedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
}

/** Whether the leaf chains, through the intermediates that follow it in tls.crt, to the CA. */
function chainsTo(chain: readonly X509Certificate[], ca: X509Certificate): boolean {
  let current = chain[0];
  // Each step moves one certificate up; more steps than certificates would mean a loop.
  for (let step = 0; current !== undefined && step <= chain.length; step++) {
    if (current.fingerprint256 === ca.fingerprint256 || signedBy(current, ca)) return true;
    const child: X509Certificate = current;
    current = chain.find((candidate) => candidate !== child && signedBy(child, candidate));
  }
  return false;
}

/** Why `cert` is outside its validity window or due within `renewBeforeDays`, or undefined. */
function validityProblem(cert: X509Certificate, name: string, now: Date, renewBeforeDays: number): string | undefined {
  if (cert.validFromDate.getTime() > now.getTime()) return `${name} is not valid before ${cert.validFromDate.toISOString()}`;
  if (hasExpired(cert, now)) return `${name} expired ${cert.validToDate.toISOString()}`;
  if (expiresWithin(cert, now, renewBeforeDays)) return `${name} expires ${cert.validToDate.toISOString()}, within ${renewBeforeDays} days`;
  return undefined;
}

/**
 * The leaf's validity problem. A leaf that already lasts until its signing CA expires is not
 * due: one re-issued by that CA would end at the same moment, only a new CA helps, and whether
 * that is due is the CA's own margin.
 */
function leafValidityProblem(leaf: X509Certificate, signingCa: X509Certificate | undefined, name: string, requirements: CertificateRequirements): string | undefined {
  const cutAtCa = signingCa !== undefined && leaf.validToDate.getTime() >= signingCa.validToDate.getTime() - 60_000;
  return validityProblem(leaf, name, requirements.now, cutAtCa ? 0 : requirements.renewBeforeDays);
}

/** Why the serving pair is incomplete, mismatched, not chained to the CA or signed with SHA-1. */
function servingPairProblem(material: CertificateMaterial, names: CertificateNames): string | undefined {
  const { chain, key, caCerts } = material;
  const leaf = chain?.[0];
  if (leaf === undefined && key === undefined) return `no serving certificate in ${names.cert}`;
  if (leaf === undefined || chain === undefined) return `${names.cert} is missing`;
  if (key === undefined) return `${names.key} is missing`;
  if (!leaf.checkPrivateKey(key)) return `${names.key} does not belong to ${names.cert}`;
  if (caCerts !== undefined && !caCerts.some((ca) => chainsTo(chain, ca))) return `${names.cert} is not signed by ${names.caCert}`;
  if (usesSha1(leaf)) return `${names.cert} is signed with SHA-1, which Kubernetes rejects`;
  return undefined;
}

/** Why the signing CA is outside its validity window or due, or undefined (also when unknown). */
function caValidityProblem(material: CertificateMaterial, names: CertificateNames, requirements: CertificateRequirements): string | undefined {
  const signingCa = material.caCerts?.[0];
  return signingCa === undefined ? undefined : validityProblem(signingCa, names.caCert, requirements.now, requirements.caRenewBeforeDays);
}

/** Only SANs count: Go's TLS stack ignores the subject common name. */
function hostnameProblem(leaf: X509Certificate, name: string, hostname: string | undefined): string | undefined {
  if (hostname === undefined || leaf.checkHost(hostname, { subject: 'never' }) !== undefined) return undefined;
  return `${name} does not cover ${hostname}`;
}

/** Why the serving pair cannot be served as it is, or undefined when it can. */
export function servingProblem(material: CertificateMaterial, names: CertificateNames, requirements: CertificateRequirements): string | undefined {
  const unparsed = material.unreadable.cert ?? material.unreadable.key ?? material.unreadable.caCert;
  if (unparsed !== undefined) return unparsed.message;
  const pairProblem = servingPairProblem(material, names);
  const leaf = material.chain?.[0];
  // (servingPairProblem reports a missing leaf.)
  if (pairProblem !== undefined || leaf === undefined) return pairProblem;
  return (
    leafValidityProblem(leaf, material.caCerts?.[0], names.cert, requirements) ??
    caValidityProblem(material, names, requirements) ??
    hostnameProblem(leaf, names.cert, requirements.hostname)
  );
}

/** Why the CA pair cannot sign serving certificates whatever the date, or undefined. */
export function caPairProblem(material: CertificateMaterial, names: CertificateNames): string | undefined {
  const unparsed = material.unreadable.caCert ?? material.unreadable.caKey;
  if (unparsed !== undefined) return unparsed.message;
  const caCert = material.caCerts?.[0];
  const { caKey } = material;
  if (caCert === undefined || caKey === undefined) return `no CA key pair in ${names.caCert} and ${names.caKey}`;
  if (!caCert.ca) return `${names.caCert} is not a CA certificate`;
  if (!caCert.checkPrivateKey(caKey)) return `${names.caKey} does not belong to ${names.caCert}`;
  // The serving certificate is issued with a key of the CA's type, and only these two are supported.
  if (caKey.asymmetricKeyType !== 'ec' && caKey.asymmetricKeyType !== 'rsa') return `${names.caKey} is neither an EC nor an RSA key`;
  if (usesSha1(caCert)) return `${names.caCert} is signed with SHA-1`;
  return undefined;
}

/** Reuse what is there, renew only the serving certificate with the CA kept, or generate both. */
export function decideCertificates(material: CertificateMaterial, names: CertificateNames, requirements: CertificateRequirements): CertificateDecision {
  const serving = servingProblem(material, names, requirements);
  if (serving === undefined) {
    return { action: 'reuse', reason: `${names.cert} is valid until ${material.chain?.[0]?.validToDate.toISOString()}` };
  }
  const authority = caPairProblem(material, names) ?? caValidityProblem(material, names, requirements);
  if (authority === undefined) return { action: 'renew-serving', reason: serving };
  // A CA that is due makes the serving pair unusable too: one reason then, not the same twice.
  return { action: 'generate', reason: authority === serving ? serving : `${serving} and ${authority}` };
}
