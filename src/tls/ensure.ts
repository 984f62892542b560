/**
 * Makes sure a certificate directory holds a usable serving certificate: reuse what is there
 * when it is valid, otherwise generate and write new files.
 *
 * Reuse matters: every new CA means a new `caBundle` in the webhook configurations, and a
 * directory mounted from a Secret (cert-manager, Helm) is read-only and must be used as is.
 * When only the serving certificate needs renewing and the CA in the directory is still
 * good, the new serving certificate is signed by that CA so the `caBundle` stays valid. What
 * is still good is `decideCertificates`'s call; this file reads and writes the directory.
 */

import { certificatePaths, readCertificateFiles, writeCertificateFiles, type CertificateFileContents } from './certificate-files.ts';
import { decideCertificates, firstUnreadable, parseMaterial } from './certificate-decision.ts';
import { generateCertificates, issueServingCertificate, serviceHostname, type GenerateOptions } from './generate.ts';

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
  const pem = await readCertificateFiles(paths);
  const material = parseMaterial(pem, paths);
  const unreadable = firstUnreadable(material);
  if (unreadable !== undefined) throw unreadable;
  const { action, reason } = decideCertificates(material, paths, {
    now,
    hostname: serviceHostname(opts.serviceName, opts.namespace),
    renewBeforeDays: opts.renewBeforeDays,
    // A serving certificate is cut at its CA's expiry, so a CA about to expire would produce
    // one that needs renewing at once.
    caRenewBeforeDays: opts.renewBeforeDays,
  });

  const { caCert, caKey, cert, key } = pem;
  if (action === 'reuse' && cert !== undefined && key !== undefined) {
    return { bundle: { cert, key, caCert, caKey }, generated: false, reason: `${reason}: reusing it` };
  }
  if (action === 'renew-serving' && caCert !== undefined && caKey !== undefined) {
    const serving = await issueServingCertificate({ ...opts, now }, { cert: caCert, key: caKey });
    await write(dir, { cert: serving.cert, key: serving.key }, reason);
    return {
      bundle: { cert: serving.cert, key: serving.key, caCert, caKey },
      generated: true,
      reason: `${reason}: issued a new serving certificate signed by ${paths.caCert}`,
    };
  }
  const bundle = await generateCertificates({ ...opts, now });
  await write(dir, bundle, reason);
  return { bundle, generated: true, reason: `${reason}: generated a new CA and serving certificate in ${dir}` };
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
