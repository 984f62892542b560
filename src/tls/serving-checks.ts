/**
 * Whether a serving pair can be served: the checks start-up applies before reusing the files
 * in the cert dir and reload applies before swapping the pair in. A pair that fails them would
 * make every verified client (the API server) fail its handshake, so neither path may use it.
 */
import type { KeyObject, X509Certificate } from 'node:crypto';
import type { CertificatePaths } from './certificate-files.ts';

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * SHA-1 signature algorithm OIDs, DER-encoded (sha1WithRSAEncryption, ecdsa-with-SHA1).
 * `selfsigned` signs with SHA-1 unless told otherwise, so certificates from older tooling may
 * use it, and Go's TLS stack — the API server — rejects them.
 */
const SHA1_SIGNATURE_OIDS: readonly Buffer[] = [
  Buffer.from('06092a864886f70d010105', 'hex'),
  Buffer.from('06072a8648ce3d0401', 'hex'),
];

/**
 * The OID of the certificate's outer signatureAlgorithm, as DER bytes (tag and length
 * included). Certificate ::= SEQUENCE { tbsCertificate SEQUENCE, signatureAlgorithm
 * SEQUENCE { algorithm OID, ... }, signature BIT STRING }.
 */
function signatureAlgorithmOid(cert: X509Certificate): Buffer | undefined {
  const der = cert.raw;
  // Returns [offset of contents, length of contents] of the DER element at `offset`.
  const header = (offset: number): [number, number] | undefined => {
    const first = der[offset + 1];
    if (first === undefined) return undefined;
    if (first < 0x80) return [offset + 2, first];
    const bytes = first & 0x7f;
    let length = 0;
    for (let i = 0; i < bytes; i++) length = length * 256 + (der[offset + 2 + i] ?? 0);
    return [offset + 2 + bytes, length];
  };
  const outer = header(0);
  if (outer === undefined) return undefined;
  const tbs = header(outer[0]);
  if (tbs === undefined) return undefined;
  const algorithm = header(tbs[0] + tbs[1]);
  if (algorithm === undefined) return undefined;
  const oid = header(algorithm[0]);
  if (oid === undefined) return undefined;
  return der.subarray(algorithm[0], oid[0] + oid[1]);
}

export function usesSha1(cert: X509Certificate): boolean {
  const oid = signatureAlgorithmOid(cert);
  return oid !== undefined && SHA1_SIGNATURE_OIDS.some((sha1) => sha1.equals(oid));
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

export function expiresWithin(cert: X509Certificate, now: Date, days: number): boolean {
  return cert.validToDate.getTime() - now.getTime() <= days * DAY_MS;
}

export interface ServingFiles {
  /** tls.crt: the leaf, then any intermediates. */
  readonly chain: readonly X509Certificate[] | undefined;
  readonly key: KeyObject | undefined;
  /**
   * The CAs clients are given to verify the server (ca.crt: the caBundle). Undefined when
   * unknown (a mounted TLS Secret without ca.crt): the chain is then not checked here, the
   * API server checks it against the caBundle it was given.
   */
  readonly caCerts: readonly X509Certificate[] | undefined;
}

export interface ServingRequirements {
  readonly now: Date;
  /** A certificate expiring within this many days fails too (0: only an expired one). */
  readonly renewBeforeDays: number;
  /** The name the API server dials (`<service>.<namespace>.svc`); unchecked when undefined. */
  readonly hostname: string | undefined;
}

/** Why the serving pair cannot be served, or undefined when it can. */
export function servingProblem(files: ServingFiles, paths: Pick<CertificatePaths, 'cert' | 'key' | 'caCert'>, requirements: ServingRequirements): string | undefined {
  const { chain, key, caCerts } = files;
  const { now, renewBeforeDays, hostname } = requirements;
  const leaf = chain?.[0];
  if (leaf === undefined && key === undefined) return `no serving certificate in ${paths.cert}`;
  if (leaf === undefined) return `${paths.cert} is missing`;
  if (key === undefined) return `${paths.key} is missing`;
  if (!leaf.checkPrivateKey(key)) return `${paths.key} does not belong to ${paths.cert}`;
  if (caCerts !== undefined && chain !== undefined && !caCerts.some((ca) => chainsTo(chain, ca))) {
    return `${paths.cert} is not signed by ${paths.caCert}`;
  }
  if (usesSha1(leaf)) return `${paths.cert} is signed with SHA-1, which Kubernetes rejects`;
  if (leaf.validFromDate.getTime() > now.getTime()) return `${paths.cert} is not valid before ${leaf.validFromDate.toISOString()}`;
  if (expiresWithin(leaf, now, 0)) return `${paths.cert} expired ${leaf.validToDate.toISOString()}`;
  if (expiresWithin(leaf, now, renewBeforeDays)) {
    return `${paths.cert} expires ${leaf.validToDate.toISOString()}, within ${renewBeforeDays} days`;
  }
  const signingCa = caCerts?.[0];
  if (signingCa !== undefined && expiresWithin(signingCa, now, renewBeforeDays)) {
    return `${paths.caCert} expires ${signingCa.validToDate.toISOString()}${renewBeforeDays > 0 ? `, within ${renewBeforeDays} days` : ''}`;
  }
  // Only SANs count: Go's TLS stack ignores the subject common name.
  if (hostname !== undefined && leaf.checkHost(hostname, { subject: 'never' }) === undefined) {
    return `${paths.cert} does not cover ${hostname}`;
  }
  return undefined;
}
