/**
 * The plain-HTTP probe port: liveness, readiness and Prometheus metrics. Kept apart from the
 * TLS port so kubelet and Prometheus need no certificates.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Metrics } from '../observability/metrics.ts';

export interface Readiness {
  /** Why the server is not ready, or undefined when it is. */
  readonly notReadyReason: () => string | undefined;
  /** What a person should know while the server is ready anyway (listed in the /readyz body). */
  readonly warnings?: (() => readonly string[]) | undefined;
}

export function buildProbeApp(metrics: Metrics, readiness: Readiness, logger?: FastifyBaseLogger): FastifyInstance {
  const app = Fastify({ logController: new LogController({ disableRequestLogging: true }), ...(logger ? { loggerInstance: logger } : { logger: false }) }) as unknown as FastifyInstance;
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const reason = readiness.notReadyReason();
    if (reason !== undefined) return reply.code(503).send({ status: 'not ready', reason });
    const warnings = readiness.warnings?.() ?? [];
    return warnings.length === 0 ? { status: 'ready' } : { status: 'ready', warnings };
  });
  app.get('/metrics', async (_request, reply) => {
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `no route ${request.method} ${request.url}; probes are GET /healthz, /readyz, /metrics` }),
  );
  return app;
}
