/**
 * Whether a serving pair can be served: the checks start-up applies before reusing the files
 * in the cert dir and reload applies before swapping the pair in. A pair that fails them would
 * make every verified client (the API server) fail its handshake, so neither path may use it.
 */
import type { KeyObject, X509Certificate } from 'node:crypto';
import type { CertificatePaths } from './certificate-files.ts';
import { usesSha1 } from './signature-algorithm.ts';
import { expiresWithin } from './validity.ts';

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
