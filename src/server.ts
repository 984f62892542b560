/**
 * Starts the webhook for real: certificates, the HTTPS (HTTP/2 + HTTP/1.1) webhook port,
 * the plain-HTTP probe port, certificate hot reload and renewal. Returns a handle whose
 * close() drains in-flight requests; the `serve` command wires it to signals.
 */
import type { Server as TlsServer } from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from './config.ts';
import { readFile } from 'node:fs/promises';
import { buildApp } from './app.ts';
import { ConfigError, SHUTDOWN_MARGIN_MS } from './config.ts';
import { parseCertificates } from './tls/certificate-files.ts';
import { buildProbeApp } from './http/probe-app.ts';
import { trackConnections } from './http/connection-drain.ts';
import { createMetrics, type Metrics } from './observability/metrics.ts';
import { ensureCertificates } from './tls/ensure.ts';
import { reloadServingCertificate } from './tls/certificate-reload.ts';
import { serviceHostname } from './tls/generate.ts';
import type { TrafficCaches } from './kube/informers.ts';

export interface RunningServer {
  readonly webhookPort: number;
  readonly probePort: number;
  readonly metrics: Metrics;
  /**
   * Readiness goes false at once; after the shutdown delay both ports close, in-flight requests
   * may finish until the drain deadline, and connections still open then are destroyed.
   */
  close(): Promise<void>;
}

/** How long in-flight requests may take to finish once the listeners close. */
function drainMs(config: Config): number {
  return Math.max(0, config.shutdownGraceMs - config.shutdownDelayMs - SHUTDOWN_MARGIN_MS);
}

/** How often to look whether the serving certificate is due for renewal. */
const RENEWAL_CHECK_INTERVAL_MS = 6 * 60 * 60 * 1000;

export interface StartOptions {
  /**
   * The files in the cert dir are kept current by someone else (the certificate Secret store):
   * do not renew them here, or a replica could issue a certificate outside the shared CA.
   */
  readonly externallyManagedCertificates?: boolean | undefined;
  /** With config.trafficChecks: caches to use instead of starting informers (tests). */
  readonly traffic?: TrafficCaches | undefined;
  /** The environment the kubeconfig of the traffic checks is found through. */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
}

export async function startServer(config: Config, logger: FastifyBaseLogger, options: StartOptions = {}): Promise<RunningServer> {
  const started = performance.now();
  const metrics = createMetrics();
  let shuttingDown = false;

  const certificateOptions = {
    serviceName: config.serviceName,
    namespace: config.namespace,
    validityDays: config.certificates.validityDays,
    renewBeforeDays: config.certificates.renewBeforeDays,
  };
  // Settings first: a bad client CA must fail the start before any certificate is written.
  const clientCa = config.clientCaFile === undefined ? undefined : await readClientCa(config.clientCaFile);
  const initial = await ensureCertificates(config.certDir, certificateOptions);
  logger.info({ certDir: config.certDir, generated: initial.generated, reason: initial.reason }, 'certificates ready');

  // Gateway/VirtualService checks against the cluster: the caches fill in the background;
  // readiness waits for them, bounded (src/kube/informers.ts). The client loads only if used.
  const traffic = !config.trafficChecks
    ? undefined
    : options.traffic ?? (await (await import('./kube/informers.ts')).startTrafficChecks({ logger, env: options.env ?? {} }));
  const app = buildApp(config, {
    metrics,
    logger,
    ...(traffic ? { policyContext: { traffic: traffic.world } } : {}),
    tls: { key: initial.bundle.key, cert: initial.bundle.cert, ...(clientCa ? { ca: clientCa, requestClientCert: true } : {}) },
  });
  const certificates = reloadServingCertificate({
    server: app.server as unknown as TlsServer,
    certDir: config.certDir,
    initial: initial.bundle,
    hostname: serviceHostname(config.serviceName, config.namespace),
    clientCa,
    metrics,
    logger,
  });
  const probe = buildProbeApp(
    metrics,
    {
      notReadyReason: () => (shuttingDown ? 'shutting down' : certificates.notReadyReason() ?? traffic?.notReadyReason()),
      warnings: () => {
        const stale = certificates.staleReason();
        return stale === undefined ? [] : [`serving a stale certificate: ${stale}`];
      },
    },
    { headersTimeoutMs: config.headersTimeoutMs, requestTimeoutMs: config.requestTimeoutMs },
    logger,
  );

  const renewal = options.externallyManagedCertificates ? undefined : setInterval(() => {
    ensureCertificates(config.certDir, certificateOptions)
      .then((result) => {
        if (result.generated) logger.info({ reason: result.reason }, 'certificates renewed');
      })
      .catch((error: unknown) => logger.error({ err: error }, 'certificate renewal failed'));
  }, RENEWAL_CHECK_INTERVAL_MS);
  renewal?.unref();
  // Whatever closes the app (shutdown, a failed start) stops what serves it. onClose hooks run
  // once the listener has closed and its last request is answered, so no request in flight
  // loses the caches it reads.
  app.addHook('onClose', async () => {
    clearInterval(renewal);
    certificates.close();
    await traffic?.stop();
  });

  const webhookConnections = trackConnections(app.server);
  const probeConnections = trackConnections(probe.server);
  try {
    await app.listen({ port: config.port, host: config.host });
    await probe.listen({ port: config.probePort, host: config.probeHost });
  } catch (error) {
    // Nothing may outlive a failed start: a listening port or a running watch would keep the
    // process alive, unready, after the CLI has reported the failure.
    await Promise.allSettled([app.close(), probe.close()]);
    throw error;
  }

  const webhookPort = (app.server.address() as AddressInfo).port;
  const probePort = (probe.server.address() as AddressInfo).port;
  logger.info(
    { webhookPort, probePort, enforcement: config.enforcement, clientCertificates: clientCa ? 'required' : 'not requested', startupMs: Math.round(performance.now() - started) },
    'mesh-admission serving',
  );

  return {
    webhookPort,
    probePort,
    metrics,
    async close() {
      shuttingDown = true;
      if (config.shutdownDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, config.shutdownDelayMs));
      const deadline = Date.now() + drainMs(config);
      // Both ports drain side by side; one failing to close must not leave the other open.
      const closed = await Promise.allSettled([webhookConnections.closeBy(() => app.close(), deadline), probeConnections.closeBy(() => probe.close(), deadline)]);
      const destroyed = closed.reduce((sum, result) => sum + (result.status === 'fulfilled' ? result.value : 0), 0);
      if (destroyed > 0) logger.warn({ destroyed }, 'drain deadline reached: closed the connections still open');
      for (const result of closed) if (result.status === 'rejected') logger.error({ err: result.reason as unknown }, 'closing a listener failed');
    },
  };
}

/** The CA bundle client certificates must chain to; errors name the setting and the file. */
async function readClientCa(file: string): Promise<string> {
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigError('clientCaFile', `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  try {
    parseCertificates(pem, file);
  } catch (error) {
    throw new ConfigError('clientCaFile', (error as Error).message);
  }
  return pem;
}
