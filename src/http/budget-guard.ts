/**
 * Holds every request to the request budget (request-budget.ts) before its body is read.
 *
 * Refused requests are answered at once, and their body is not read:
 * - over the body-byte budget: 503 with `Retry-After` and a JSON body (the API server then
 *   applies the webhook's failurePolicy, or its retry);
 * - an HTTP/2 stream over the limit of requests in flight: RST_STREAM REFUSED_STREAM, which
 *   tells the client the request was not processed (Go's HTTP/2 client, the API server's,
 *   retries it by itself), and costs no answer that a client which does not read could hold.
 */
import http2, { type Http2ServerRequest } from 'node:http2';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import type { RequestBudget } from './request-budget.ts';

/** Seconds a refused client is asked to wait: the budget frees as soon as requests in flight end. */
export const RETRY_AFTER_SECONDS = 1;

export function guardBudget(app: FastifyInstance, budget: RequestBudget): void {
  app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    const raw = request.raw as IncomingMessage | Http2ServerRequest;
    const stream = 'stream' in raw ? raw.stream : undefined;
    const connection: object = stream?.session ?? raw.socket ?? raw;
    const admission = budget.admit(connection, declaredLength(raw.headers['content-length']));
    if (admission.admitted) {
      reply.raw.once('close', admission.release);
      done();
      return;
    }
    request.log.debug({ reason: admission.reason }, 'request refused: over budget');
    if (stream && admission.reason === 'requests') {
      reply.hijack();
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    // The body stays unread: HTTP/1.1 closes the connection after the answer, HTTP/2 the stream.
    if (stream) reply.raw.once('finish', () => stream.close(http2.constants.NGHTTP2_NO_ERROR));
    else reply.header('connection', 'close');
    void reply
      .code(503)
      .header('retry-after', String(RETRY_AFTER_SECONDS))
      .send({ statusCode: 503, error: 'Service Unavailable', message: admission.message });
  });
}

/** The declared body length, or undefined when absent or not a plain number (the framework rejects those). */
function declaredLength(header: string | undefined): number | undefined {
  if (header === undefined || !/^\d{1,15}$/.test(header)) return undefined;
  return Number(header);
}
