/**
 * Keeps the webhook's TLS server on the certificate in the cert dir: a changed pair that
 * passes the start-up checks is swapped in for new connections; a refused one is logged with
 * the reason and leaves the previous certificate in place, and the metrics and `/readyz`
 * say that the served certificate is stale.
 *
 * A refused pair does not make the replica unready: the certificate it serves still works,
 * and every replica reads the same Secret, so unready on refusal would take the whole webhook
 * out of its Service for a bad update. Only a served certificate that has expired (no valid
 * replacement came in time) makes it unready: it can no longer serve anyone.
 */
import type { Server as TlsServer } from 'node:tls';
import type { FastifyBaseLogger } from 'fastify';
import { secureContextOptions } from '../app.ts';
import type { Metrics } from '../observability/metrics.ts';
import { certificateExpiry } from './expiry.ts';
import { watchCertificates, type ServingPair } from './reloader.ts';

export interface CertificateReloadOptions {
  readonly server: TlsServer;
  readonly certDir: string;
  /** Served first; `caCert` is the ca.crt start-up checked the pair against. */
  readonly initial: ServingPair & { readonly caCert: string | undefined };
  /** The name the API server dials; a new certificate must cover it. */
  readonly hostname: string;
  /** The CA client certificates must chain to (kept across reloads). */
  readonly clientCa: string | undefined;
  readonly metrics: Metrics;
  readonly logger: FastifyBaseLogger;
  readonly debounceMs?: number | undefined;
  readonly pollIntervalMs?: number | undefined;
}

export interface CertificateReload {
  /** Set when the served certificate has expired: readiness is off. */
  notReadyReason(): string | undefined;
  /** Set while the files on disk were refused and an older certificate is served. */
  staleReason(): string | undefined;
  close(): void;
}

export function reloadServingCertificate(options: CertificateReloadOptions): CertificateReload {
  const { metrics, logger, certDir } = options;
  let servedExpiry = certificateExpiry(options.initial.cert);
  let stale: string | undefined;
  const setStale = (reason: string | undefined): void => {
    stale = reason;
    metrics.certificateStale.set(reason === undefined ? 0 : 1);
  };
  metrics.certificateExpiry.set(servedExpiry.getTime() / 1000);
  setStale(undefined);

  const watcher = watchCertificates(
    certDir,
    (pair) => {
      // New TLS connections pick up the new certificate; open ones keep the old one.
      options.server.setSecureContext(secureContextOptions({ key: pair.key, cert: pair.cert, ca: options.clientCa }));
      servedExpiry = certificateExpiry(pair.cert);
      metrics.certificateExpiry.set(servedExpiry.getTime() / 1000);
      metrics.certificateReloads.inc({ result: 'applied' });
      setStale(undefined);
      logger.info({ certDir, expires: servedExpiry.toISOString() }, 'serving certificate reloaded');
    },
    {
      current: { cert: options.initial.cert, key: options.initial.key },
      requirements: { hostname: options.hostname, startupCa: options.initial.caCert },
      debounceMs: options.debounceMs,
      pollIntervalMs: options.pollIntervalMs,
      onError: (error) => {
        metrics.certificateReloads.inc({ result: 'refused' });
        setStale(error.message);
        logger.warn({ certDir, reason: error.message, servedExpires: servedExpiry.toISOString() }, 'refused the new certificate files; still serving the previous certificate');
      },
      onInSync: () => setStale(undefined),
      onDirectory: (event) => {
        if (event === 'removed') logger.warn({ certDir }, 'certificate directory removed; still serving the current certificate until it comes back');
        else logger.info({ certDir }, 'certificate directory is back; watching it again');
      },
    },
  );

  return {
    notReadyReason: () =>
      servedExpiry.getTime() <= Date.now() ? `the served certificate expired at ${servedExpiry.toISOString()} and no valid replacement was loaded` : undefined,
    staleReason: () => stale,
    close: () => watcher.close(),
  };
}
