/**
 * Clients for the memory and time cases: a well-behaved one that keeps asking as the API
 * server would (one HTTP/2 connection, opened before the attack, one small review at a time),
 * and the misbehaving ones each case replays.
 */
import http2, { type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import tls from 'node:tls';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function connect(port: number, ca: string, settings: http2.Settings = {}): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { ca, servername: 'localhost', settings });
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

export interface Answer {
  readonly status: number;
  readonly headers: http2.IncomingHttpHeaders;
  readonly body: string;
  readonly ms: number;
}

/** POSTs body on the session; resolves with the answer, rejects on reset, timeout or close. */
export function post(session: ClientHttp2Session, path: string, body: string | Buffer, timeoutMs = 10_000): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    const timer = setTimeout(() => {
      stream.close(http2.constants.NGHTTP2_CANCEL);
      reject(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    let headers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (headers = h));
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => {
      clearTimeout(timer);
      resolve({ status: Number(headers[':status']), headers, body: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - started });
    });
    stream.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    stream.on('close', () => {
      clearTimeout(timer);
      if (headers[':status'] === undefined) reject(new Error(`stream closed without an answer (code ${stream.rstCode})`));
    });
    stream.end(body);
  });
}

/** A small valid review, as the API server sends for an ordinary Service. */
export function smallReview(uid: string): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: '', version: 'v1', kind: 'Service' },
      resource: { group: '', version: 'v1', resource: 'services' },
      operation: 'CREATE',
      namespace: 'default',
      object: { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { ports: [{ name: 'web', port: 8080, protocol: 'TCP' }] } },
    },
  });
}

export interface WellBehavedReport {
  readonly sent: number;
  /** Answered 200 with the review's uid, within the timeout. */
  readonly correct: number;
  readonly failures: readonly string[];
  readonly slowestMs: number;
}

/**
 * Sends a small review every `intervalMs` on its own connection, one at a time, until stopped.
 * Each must be answered correctly within `timeoutMs` (the API server's default webhook
 * timeout is 10 s; the chart sets 5 s).
 */
export async function wellBehavedClient(port: number, ca: string, intervalMs = 200, timeoutMs = 5000) {
  const session = await connect(port, ca);
  session.on('error', () => undefined);
  let running = true;
  let sent = 0;
  let correct = 0;
  let slowestMs = 0;
  const failures: string[] = [];
  const loop = (async () => {
    while (running) {
      sent += 1;
      const uid = `well-behaved-${sent}`;
      try {
        const answer = await post(session, '/mutate', smallReview(uid), timeoutMs);
        slowestMs = Math.max(slowestMs, answer.ms);
        if (answer.status === 200 && (JSON.parse(answer.body) as { response?: { uid?: string } }).response?.uid === uid) correct += 1;
        else failures.push(`${uid}: ${answer.status} ${answer.body.slice(0, 200)}`);
      } catch (error) {
        failures.push(`${uid}: ${(error as Error).message}`);
      }
      await sleep(intervalMs);
    }
  })();
  return {
    async stop(): Promise<WellBehavedReport> {
      running = false;
      await loop;
      session.destroy();
      return { sent, correct, failures, slowestMs };
    },
  };
}

/**
 * Opens a stream that declares `declaredBytes` of body, sends `sentBytes` of it (all but the
 * last byte by default), and then nothing: the server must hold or refuse it. Resolves with
 * the answer when one comes.
 */
export function stalledBody(session: ClientHttp2Session, path: string, declaredBytes: number, sentBytes = declaredBytes - 1): { stream: ClientHttp2Stream; answer: Promise<Answer | Error> } {
  const started = performance.now();
  const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/json', 'content-length': declaredBytes });
  let headers: http2.IncomingHttpHeaders = {};
  const chunks: Buffer[] = [];
  const answer = new Promise<Answer | Error>((resolve) => {
    stream.on('response', (h) => (headers = h));
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve({ status: Number(headers[':status']), headers, body: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - started }));
    stream.on('error', (error) => resolve(error));
    stream.on('close', () => resolve(new Error(`closed without an answer (code ${stream.rstCode})`)));
  });
  const piece = Buffer.alloc(64 * 1024, 0x20);
  if (sentBytes === 0) return { stream, answer };
  let left = sentBytes;
  const pump = () => {
    while (left > 0) {
      const size = Math.min(left, piece.length);
      left -= size;
      if (!stream.write(size === piece.length ? piece : piece.subarray(0, size))) {
        stream.once('drain', pump);
        return;
      }
    }
  };
  stream.write('{');
  left -= 1;
  pump();
  return { stream, answer };
}

/** A TLS connection that completes its handshake (HTTP/1.1) and then sends nothing. */
export function idleTlsConnection(port: number, ca: string): Promise<tls.TLSSocket | Error> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost', ALPNProtocols: ['http/1.1'] });
    socket.once('secureConnect', () => resolve(socket));
    socket.once('error', (error) => resolve(error));
    socket.once('close', () => resolve(new Error('closed')));
  });
}
