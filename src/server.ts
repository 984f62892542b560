/**
 * Starts the webhook for real: certificates, the HTTPS (HTTP/2 + HTTP/1.1) webhook port,
 * the plain-HTTP probe port, certificate hot reload and renewal. Returns a handle whose
 * close() drains in-flight requests; the `serve` command wires it to signals.
 */
import type { Server as TlsServer } from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from './config.ts';
import { buildApp } from './app.ts';
import { buildProbeApp } from './http/probe-app.ts';
import { createMetrics, type Metrics } from './observability/metrics.ts';
import { ensureCertificates } from './tls/ensure.ts';
import { watchCertificates } from './tls/reloader.ts';
import { certificateExpiry } from './tls/expiry.ts';

export interface RunningServer {
  readonly webhookPort: number;
  readonly probePort: number;
  readonly metrics: Metrics;
  /** Readiness goes false at once; in-flight requests finish; both ports close. */
  close(): Promise<void>;
}

/** How often to look whether the serving certificate is due for renewal. */
const RENEWAL_CHECK_INTERVAL_MS = 6 * 60 * 60 * 1000;

export async function startServer(config: Config, logger: FastifyBaseLogger): Promise<RunningServer> {
  const started = performance.now();
  const metrics = createMetrics();
  let shuttingDown = false;

  const certificateOptions = {
    serviceName: config.serviceName,
    namespace: config.namespace,
    validityDays: config.certificates.validityDays,
    renewBeforeDays: config.certificates.renewBeforeDays,
  };
  const initial = await ensureCertificates(config.certDir, certificateOptions);
  logger.info({ certDir: config.certDir, generated: initial.generated, reason: initial.reason }, 'certificates ready');
  metrics.certificateExpiry.set(certificateExpiry(initial.bundle.cert).getTime() / 1000);

  const app = buildApp(config, { metrics, logger, tls: { key: initial.bundle.key, cert: initial.bundle.cert } });
  const probe = buildProbeApp(metrics, { notReadyReason: () => (shuttingDown ? 'shutting down' : undefined) }, logger);

  await app.listen({ port: config.port, host: config.host });
  await probe.listen({ port: config.probePort, host: config.probeHost });

  // New TLS connections pick up a replaced certificate; open ones keep the old one.
  const watcher = watchCertificates(
    config.certDir,
    (bundle) => {
      (app.server as unknown as TlsServer).setSecureContext({ key: bundle.key, cert: bundle.cert });
      metrics.certificateExpiry.set(certificateExpiry(bundle.cert).getTime() / 1000);
      logger.info({ certDir: config.certDir }, 'serving certificate reloaded');
    },
    {
      current: { cert: initial.bundle.cert, key: initial.bundle.key },
      onError: (error: Error) => logger.warn({ err: error }, "ignoring unusable certificate files; keeping the current ones"),
    },
  );
  const renewal = setInterval(() => {
    ensureCertificates(config.certDir, certificateOptions)
      .then((result) => {
        if (result.generated) logger.info({ reason: result.reason }, 'certificates renewed');
      })
      .catch((error: unknown) => logger.error({ err: error }, 'certificate renewal failed'));
  }, RENEWAL_CHECK_INTERVAL_MS);
  renewal.unref();

  const webhookPort = (app.server.address() as AddressInfo).port;
  const probePort = (probe.server.address() as AddressInfo).port;
  logger.info(
    { webhookPort, probePort, enforcement: config.enforcement, startupMs: Math.round(performance.now() - started) },
    'mesh-admission serving',
  );

  return {
    webhookPort,
    probePort,
    metrics,
    async close() {
      shuttingDown = true;
      clearInterval(renewal);
      watcher.close();
      await app.close();
      await probe.close();
    },
  };
}
