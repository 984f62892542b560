/**
 * The plain-HTTP probe port: liveness, readiness and Prometheus metrics. Kept apart from the
 * TLS port so kubelet and Prometheus need no certificates.
 *
 * It is reachable by the same clients as the webhook port, and shares its process, so it gets
 * the same connection deadlines (a slow client cannot hold a connection), a small connection
 * cap (kubelet and Prometheus need a handful), and /metrics renders at most once per
 * `METRICS_MAX_AGE_MS` however often it is asked: rendering (collecting the process metrics)
 * costs about a millisecond of the event loop the admissions run on.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Server as HttpServer } from 'node:http';
import { guardConnections, type ConnectionGuardOptions } from './connection-guard.ts';
import { cachedMetricsText, type Metrics } from '../observability/metrics.ts';

export interface Readiness {
  /** Why the server is not ready, or undefined when it is. */
  readonly notReadyReason: () => string | undefined;
  /** What a person should know while the server is ready anyway (listed in the /readyz body). */
  readonly warnings?: (() => readonly string[]) | undefined;
}

/** Connections the probe port accepts at once; further ones are closed on arrival. */
export const MAX_PROBE_CONNECTIONS = 64;
/** How old the /metrics text may be; Prometheus scrapes every 15 s or more. */
export const METRICS_MAX_AGE_MS = 1000;

/** JSON ending in a newline, so `curl localhost:9090/readyz` leaves the shell prompt on its own line. */
function sendJsonLine(reply: FastifyReply, code: number, body: object): FastifyReply {
  return reply.code(code).type('application/json; charset=utf-8').send(`${JSON.stringify(body)}\n`);
}

export function buildProbeApp(metrics: Metrics, readiness: Readiness, deadlines: ConnectionGuardOptions, logger?: FastifyBaseLogger): FastifyInstance {
  const app = Fastify({ logController: new LogController({ disableRequestLogging: true }), ...(logger ? { loggerInstance: logger } : { logger: false }) }) as unknown as FastifyInstance;
  const server = app.server as HttpServer;
  server.maxConnections = MAX_PROBE_CONNECTIONS;
  guardConnections(server, deadlines);
  const metricsText = cachedMetricsText(metrics.registry, METRICS_MAX_AGE_MS);

  app.get('/healthz', async (_request, reply) => sendJsonLine(reply, 200, { status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const reason = readiness.notReadyReason();
    if (reason !== undefined) return sendJsonLine(reply, 503, { status: 'not ready', reason });
    const warnings = readiness.warnings?.() ?? [];
    return sendJsonLine(reply, 200, warnings.length === 0 ? { status: 'ready' } : { status: 'ready', warnings });
  });
  app.get('/metrics', async (_request, reply) => reply.type(metrics.registry.contentType).send(await metricsText()));
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `no route ${request.method} ${request.url}; probes are GET /healthz, /readyz, /metrics` }),
  );
  return app;
}
