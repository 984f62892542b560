/**
 * Connection hygiene for the webhook's TLS port that Node does not provide by itself for an
 * HTTP/2 server with HTTP/1.1 fallback:
 *
 * - Deadlines against slow clients (slowloris). Node enforces `headersTimeout` and
 *   `requestTimeout` only on an http(s).Server; an Http2SecureServer's HTTP/1.1 connections get
 *   nothing but the idle socket timeout, which a client sending a byte a second never trips,
 *   and HTTP/2 streams get no request deadline at all. So: a connection with no request in
 *   flight (new, or between keep-alive requests) must complete the next request's headers
 *   within `headersTimeoutMs`; each request must be received and answered within
 *   `requestTimeoutMs`, else it is answered 408 and its connection (HTTP/1.1) or stream
 *   (HTTP/2) is closed.
 * - A plain-HTTP request on the TLS port is answered with a JSON 400 saying to use HTTPS, as
 *   Go's net/http does, instead of a silently dropped connection.
 */
import http2, { type Http2SecureServer, type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from 'node:http2';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Server as TlsServer, type TLSSocket } from 'node:tls';

export interface ConnectionGuardOptions {
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
}

/** A TLS connection (HTTP/1.1) or an HTTP/2 session, with the requests it has in flight. */
interface Tracked {
  inFlight: number;
  idle: NodeJS.Timeout | undefined;
  readonly close: () => void;
  /** How long the connection may wait for its next request once it has served one. */
  readonly betweenRequestsMs: number;
}

/**
 * The API server keeps one HTTP/2 connection per webhook and sends every admission over it;
 * closing it after the short headers deadline would cost a TLS handshake per admission at low
 * rates. An HTTP/2 request arrives as whole HEADERS frames, so an idle session holds no
 * half-sent request that the headers deadline must cut: a minute between requests is enough.
 */
const HTTP2_IDLE_MS = 60_000;

/**
 * The socket/session inactivity timeout left to the framework and Node: longer than any
 * deadline of this guard, so it only catches what the guard missed and never races its 408.
 */
export function idleBackstopMs(options: ConnectionGuardOptions): number {
  return Math.max(options.headersTimeoutMs, HTTP2_IDLE_MS) + options.requestTimeoutMs;
}

const PLAIN_HTTP_BODY = JSON.stringify({
  statusCode: 400,
  error: 'Bad Request',
  message: 'this port speaks HTTPS (TLS 1.2+); the request was sent as plain HTTP',
});

/** The webhook's TLS port, or a plain HTTP/1.1 server (the probe port) with the same deadlines. */
export function guardConnections(server: Http2SecureServer | HttpServer, options: ConnectionGuardOptions): void {
  const tracked = new WeakMap<object, Tracked>();

  const waitForRequest = (state: Tracked, timeoutMs: number) => {
    clearTimeout(state.idle);
    state.idle = setTimeout(state.close, timeoutMs).unref();
  };
  const track = (key: object, close: () => void, betweenRequestsMs: number) => {
    const state: Tracked = { inFlight: 0, idle: undefined, close, betweenRequestsMs };
    tracked.set(key, state);
    // The first request must come promptly, whatever the protocol.
    waitForRequest(state, options.headersTimeoutMs);
    return state;
  };

  // On a TLS port the handshake has its own deadline, so a connection counts once it is done.
  server.on(server instanceof TlsServer ? 'secureConnection' : 'connection', (socket: Socket | TLSSocket) => {
    // HTTP/2 connections are tracked by their session (below).
    if ('alpnProtocol' in socket && socket.alpnProtocol === 'h2') return;
    // HTTP/1.1 cannot tell an idle keep-alive connection from one trickling its next request
    // line, so the headers deadline applies between requests too.
    const state = track(socket, () => socket.destroy(), options.headersTimeoutMs);
    socket.once('close', () => clearTimeout(state.idle));
  });
  server.on('session', (session: Http2Session) => {
    // Graceful: GOAWAY lets a client retry elsewhere; destroy() follows if it lingers.
    const state = track(
      session,
      () => {
        session.close();
        setTimeout(() => session.destroy(), options.requestTimeoutMs).unref();
      },
      Math.max(options.headersTimeoutMs, HTTP2_IDLE_MS),
    );
    session.once('close', () => clearTimeout(state.idle));
  });

  server.on('request', (request: IncomingMessage | Http2ServerRequest, response: ServerResponse | Http2ServerResponse) => {
    const isHttp2 = 'stream' in request;
    const state = tracked.get(isHttp2 ? request.stream.session ?? request : request.socket);
    if (state) {
      state.inFlight += 1;
      clearTimeout(state.idle);
    }
    const deadline = setTimeout(() => answerTimeout(request, response, isHttp2, options.requestTimeoutMs), options.requestTimeoutMs).unref();
    response.once('close', () => {
      clearTimeout(deadline);
      if (state) {
        state.inFlight -= 1;
        if (state.inFlight === 0) waitForRequest(state, state.betweenRequestsMs);
      }
    });
  });

  server.on('tlsClientError', (error: Error & { code?: string }, socket: TLSSocket) => {
    if (error.code === 'ERR_SSL_HTTP_REQUEST') answerPlainHttp(socket);
  });
}

/** 408 when nothing was sent yet, then the connection (HTTP/1.1) or stream (HTTP/2) is closed. */
function answerTimeout(
  request: IncomingMessage | Http2ServerRequest,
  response: ServerResponse | Http2ServerResponse,
  isHttp2: boolean,
  requestTimeoutMs: number,
): void {
  const closeTransport = () => {
    if (isHttp2) (request as Http2ServerRequest).stream.close(http2.constants.NGHTTP2_NO_ERROR);
    else request.socket.destroy();
  };
  // The framework is still waiting for the body; once the stream ends it would parse the
  // fragment and try to answer a second time (logging a spurious error). This answer is final.
  for (const event of ['data', 'end', 'error'] as const) request.removeAllListeners(event);
  request.on('error', () => undefined);
  if (response.headersSent) {
    closeTransport();
    return;
  }
  const body = JSON.stringify({
    statusCode: 408,
    error: 'Request Timeout',
    message: `the request was not received in full within ${requestTimeoutMs} ms`,
  });
  const headers: Record<string, string | number> = { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) };
  if (!isHttp2) headers['connection'] = 'close';
  (response as ServerResponse).writeHead(408, headers);
  (response as ServerResponse).end(body, closeTransport);
}

/**
 * OpenSSL recognised an HTTP request where a TLS ClientHello belongs. The TLS socket is
 * unusable, but the TCP socket under it can still carry a plain answer. `_parentWrap` is
 * Node's (internal) reference from the TLS handle to that socket; without it the connection
 * is just closed, as before.
 */
function answerPlainHttp(socket: TLSSocket): void {
  const raw = (socket as unknown as { _handle?: { _parentWrap?: Socket } })._handle?._parentWrap;
  if (!raw || raw.destroyed || !raw.writable) return;
  raw.end(
    'HTTP/1.1 400 Bad Request\r\n' +
      'Content-Type: application/json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(PLAIN_HTTP_BODY)}\r\n` +
      'Connection: close\r\n\r\n' +
      PLAIN_HTTP_BODY,
  );
}
