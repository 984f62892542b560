/**
 * buildApp(config) → the Fastify instance serving the two webhooks. Separate from listen()
 * so tests drive it with app.inject and the entry point decides about TLS and ports.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { SecureContextOptions } from 'node:tls';
import type { Http2SecureServer } from 'node:http2';
import type { Config } from './config.ts';
import type { PolicyContext } from './policies/catalog.ts';
import { admissionRoutes } from './admission/routes.ts';
import { errorReply, TooManyJsonValuesError } from './http/error-replies.ts';
import { countJsonValues } from './http/json-values.ts';
import { guardConnections, idleBackstopMs } from './http/connection-guard.ts';
import { guardBudget } from './http/budget-guard.ts';
import { createRequestBudget } from './http/request-budget.ts';
import type { Metrics } from './observability/metrics.ts';
import { LOG_SERIALIZERS } from './observability/logger.ts';

/** Modern TLS only: TLS 1.2 with forward-secret AEAD suites, and TLS 1.3. */
export const TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** The serving pair, and the CA that client certificates must chain to when they are required. */
export type ServingTls = Pick<SecureContextOptions, 'key' | 'cert' | 'ca'>;

/**
 * Every option of the TLS context. `setSecureContext()` (certificate reload) replaces the whole
 * context and resets what it is not given: without these, a reload would silently fall back to
 * Node's default ciphers (AES128-SHA and friends) and drop the client CA.
 */
export function secureContextOptions(tls: ServingTls): SecureContextOptions {
  return { minVersion: 'TLSv1.2', ciphers: TLS_CIPHERS, key: tls.key, cert: tls.cert, ...(tls.ca ? { ca: tls.ca } : {}) };
}

export interface AppDependencies {
  readonly metrics: Metrics;
  /** Serving key and certificate; without them the app speaks plain HTTP/1.1 (tests). */
  readonly tls?: ServingTls & { readonly requestClientCert?: boolean };
  /** A logger instance (tests pass a capturing one); otherwise pino at config.logLevel. */
  readonly logger?: FastifyBaseLogger;
  /** Passed to the policies untouched (e.g. the traffic world of the Gateway/VirtualService checks). */
  readonly policyContext?: PolicyContext;
}

/** nghttp2's own buffers per HTTP/2 connection, in MB (Node's default is 10). */
const HTTP2_SESSION_MEMORY_MB = 1;

export function buildApp(config: Config, deps: AppDependencies): FastifyInstance {
  const options: FastifyServerOptions & Record<string, unknown> = {
    bodyLimit: config.bodyLimitBytes,
    logController: new LogController({ disableRequestLogging: true }),
    // Types must be exact: a numeric uid is not a string, and an AdmissionReview is never form data.
    ajv: { customOptions: { coerceTypes: false } },
    // Backstops only: the connection guard answers a late request 408 and closes idle
    // connections first. Equal to the request deadline, they cut the connection at the same
    // moment and the 408 was never delivered.
    connectionTimeout: idleBackstopMs(config),
    requestTimeout: config.requestTimeoutMs,
    http2SessionTimeout: idleBackstopMs(config),
    return503OnClosing: false,
    ...(deps.logger ? { loggerInstance: deps.logger } : { logger: { level: config.logLevel, serializers: LOG_SERIALIZERS } }),
  };
  if (deps.tls) {
    options['http2'] = true;
    options['https'] = {
      allowHTTP1: true,
      ...secureContextOptions(deps.tls.requestClientCert ? deps.tls : { key: deps.tls.key, cert: deps.tls.cert }),
      ...(deps.tls.requestClientCert ? { requestCert: true, rejectUnauthorized: true } : {}),
      // A client that never finishes its handshake is cut like one that never sends headers.
      handshakeTimeout: config.headersTimeoutMs,
      // Bounds the streams one connection can hold open (a client that ignores the setting
      // gets its excess streams refused); the request budget bounds them across connections.
      settings: { maxConcurrentStreams: config.maxStreamsPerConnection },
      // What nghttp2 may buffer for one connection (megabytes), e.g. answers a client with a
      // zero receive window never reads; beyond it the session's new streams are refused.
      maxSessionMemory: HTTP2_SESSION_MEMORY_MB,
    };
  }
  const app = Fastify(options) as unknown as FastifyInstance;
  if (deps.tls) {
    const server = app.server as unknown as Http2SecureServer;
    guardConnections(server, { headersTimeoutMs: config.headersTimeoutMs, requestTimeoutMs: config.requestTimeoutMs });
    // Connections past the cap are closed as they are accepted, before any TLS work.
    server.maxConnections = config.maxConnections;
  }
  guardBudget(app, createRequestBudget(config));
  // Only JSON is an AdmissionReview; anything else must be answered 415, not parsed as text.
  app.removeContentTypeParser(['text/plain']);
  // Fastify's own JSON parser (prototype-poisoning checks included), after a count of the
  // body's values: a body of more values than any review holds is refused before it is parsed.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    // Each counted value is one character, so a body no longer than the limit needs no count.
    const text = body as string;
    if (text.length > config.maxJsonValues && countJsonValues(text, config.maxJsonValues) > config.maxJsonValues) {
      done(new TooManyJsonValuesError(config.maxJsonValues), undefined);
      return;
    }
    parseJson(request, text, done);
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const body = errorReply(error, config);
    if (body.statusCode >= 500) request.log.error({ err: error, url: request.url }, 'request failed');
    else request.log.debug({ code: error.code, statusCode: body.statusCode }, body.message);
    return reply.code(body.statusCode).send(body);
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({
      statusCode: 404,
      error: 'Not Found',
      message: `no route ${request.method} ${request.url}; the webhook serves POST /validate and POST /mutate`,
    }),
  );

  app.register(admissionRoutes, { config, metrics: deps.metrics, policyContext: deps.policyContext ?? {} });
  return app;
}
