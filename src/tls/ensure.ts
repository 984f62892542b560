/**
 * Makes sure a certificate directory holds a usable serving certificate: reuse what is there
 * when it is valid, otherwise generate and write new files.
 *
 * Reuse matters: every new CA means a new `caBundle` in the webhook configurations, and a
 * directory mounted from a Secret (cert-manager, Helm) is read-only and must be used as is.
 * When only the serving certificate needs renewing and the CA in the directory is still
 * good, the new serving certificate is signed by that CA so the `caBundle` stays valid.
 */

import type { KeyObject, X509Certificate } from 'node:crypto';
import {
  certificatePaths,
  parseCertificates,
  parsePrivateKey,
  readOptionalFile,
  writeCertificateFiles,
  type CertificateFileContents,
  type CertificatePaths,
} from './certificate-files.ts';
import { generateCertificates, issueServingCertificate, serviceHostname, type GenerateOptions } from './generate.ts';
import { servingProblem } from './serving-checks.ts';
import { usesSha1 } from './signature-algorithm.ts';
import { expiresWithin } from './validity.ts';

export interface EnsureOptions extends GenerateOptions {
  /** Certificates expiring within this many days are replaced. */
  readonly renewBeforeDays: number;
}

/**
 * The certificates in use. `caCert` and `caKey` are undefined when a valid serving pair was
 * reused from a directory without them (a mounted TLS Secret): the caller then cannot print
 * a `caBundle` and must get it from whoever issued the certificate.
 */
export interface LoadedCertificates {
  readonly cert: string;
  readonly key: string;
  readonly caCert: string | undefined;
  readonly caKey: string | undefined;
}

export interface EnsureResult {
  readonly bundle: LoadedCertificates;
  readonly generated: boolean;
  /** One sentence for the startup log: what was found and what was done. */
  readonly reason: string;
}

interface ParsedFiles {
  /** First certificate of ca.crt: the CA that signs renewals. */
  readonly caCert: X509Certificate | undefined;
  /** All of ca.crt: during a CA rotation cert-manager lists the old and the new CA. */
  readonly caCerts: readonly X509Certificate[] | undefined;
  readonly caKey: KeyObject | undefined;
  readonly chain: readonly X509Certificate[] | undefined;
  readonly key: KeyObject | undefined;
}

/** Why the CA in the directory cannot sign a new serving certificate, or undefined. */
function authorityProblem(files: ParsedFiles, paths: CertificatePaths, opts: EnsureOptions, now: Date): string | undefined {
  const { caCert, caKey } = files;
  if (caCert === undefined || caKey === undefined) return `no CA key pair in ${paths.caCert} and ${paths.caKey}`;
  if (!caCert.ca) return `${paths.caCert} is not a CA certificate`;
  if (!caCert.checkPrivateKey(caKey)) return `${paths.caKey} does not belong to ${paths.caCert}`;
  if (caKey.asymmetricKeyType !== 'ec' && caKey.asymmetricKeyType !== 'rsa') return `${paths.caKey} is neither an EC nor an RSA key`;
  if (usesSha1(caCert)) return `${paths.caCert} is signed with SHA-1`;
  // A serving certificate is cut at its CA's expiry, so a CA about to expire would produce
  // one that needs renewing at once.
  if (expiresWithin(caCert, now, opts.renewBeforeDays)) return `${paths.caCert} expires ${caCert.validToDate.toISOString()}`;
  return undefined;
}

/**
 * Returns usable certificates for the webhook from `dir`, generating and writing them when
 * the directory has none or they are no longer valid. Throws an error naming the file when a
 * file exists but is not valid PEM (overwriting it could destroy something a person put there),
 * and naming the directory when new files cannot be written.
 */
export async function ensureCertificates(dir: string, opts: EnsureOptions): Promise<EnsureResult> {
  if (!Number.isFinite(opts.renewBeforeDays) || opts.renewBeforeDays < 0) {
    throw new Error(`renewBeforeDays must be zero or a positive number of days, got ${opts.renewBeforeDays}`);
  }
  const now = opts.now ?? new Date();
  const paths = certificatePaths(dir);
  const [caCertPem, caKeyPem, certPem, keyPem] = await Promise.all([
    readOptionalFile(paths.caCert),
    readOptionalFile(paths.caKey),
    readOptionalFile(paths.cert),
    readOptionalFile(paths.key),
  ]);
  const caCerts = caCertPem === undefined ? undefined : parseCertificates(caCertPem, paths.caCert);
  const files: ParsedFiles = {
    caCert: caCerts?.[0],
    caCerts,
    caKey: caKeyPem === undefined ? undefined : parsePrivateKey(caKeyPem, paths.caKey),
    chain: certPem === undefined ? undefined : parseCertificates(certPem, paths.cert),
    key: keyPem === undefined ? undefined : parsePrivateKey(keyPem, paths.key),
  };

  const problem = servingProblem(files, paths, {
    now,
    renewBeforeDays: opts.renewBeforeDays,
    hostname: serviceHostname(opts.serviceName, opts.namespace),
  });
  if (problem === undefined && certPem !== undefined && keyPem !== undefined) {
    const expiry = files.chain?.[0]?.validToDate.toISOString() ?? 'unknown';
    return {
      bundle: { cert: certPem, key: keyPem, caCert: caCertPem, caKey: caKeyPem },
      generated: false,
      reason: `reusing the valid certificate in ${paths.cert} (expires ${expiry})`,
    };
  }

  const caProblem = authorityProblem(files, paths, opts, now);
  if (caProblem === undefined && caCertPem !== undefined && caKeyPem !== undefined) {
    const serving = await issueServingCertificate(opts, { cert: caCertPem, key: caKeyPem });
    const why = problem ?? 'serving certificate unusable';
    const reason = `${why}: issued a new serving certificate signed by ${paths.caCert}`;
    await write(dir, { cert: serving.cert, key: serving.key }, why);
    return {
      bundle: { cert: serving.cert, key: serving.key, caCert: caCertPem, caKey: caKeyPem },
      generated: true,
      reason,
    };
  }

  const bundle = await generateCertificates(opts);
  const why = `${problem ?? 'serving certificate unusable'} and ${caProblem ?? 'CA unusable'}`;
  const reason = `${why}: generated a new CA and serving certificate in ${dir}`;
  await write(dir, bundle, why);
  return { bundle, generated: true, reason };
}

/** Writes new files; on failure the error says both why they were needed and where it failed. */
async function write(dir: string, contents: CertificateFileContents, why: string): Promise<void> {
  try {
    await writeCertificateFiles(dir, contents);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`${message} (new certificates are needed because ${why})`, { cause: error });
  }
}
