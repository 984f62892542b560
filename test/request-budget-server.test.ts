/** The request budget on the real TLS server: 503 with Retry-After, REFUSED_STREAM, and the one request an idle connection may always start. */
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import https from 'node:https';
import http2 from 'node:http2';
import { pino } from 'pino';
import { startServer } from '../src/server.ts';
import { review, testConfig } from './helpers/reviews.ts';
import { tempDir } from './helpers/temp-dir.ts';

const MiB = 1024 * 1024;

async function started(t: { teardown: (fn: () => unknown) => void }, flags: Record<string, string>) {
  const certDir = await tempDir(t, 'budget-');
  const config = testConfig({ port: '0', 'probe-port': '0', host: '127.0.0.1', 'probe-host': '127.0.0.1', 'cert-dir': certDir, ...flags });
  const server = await startServer(config, pino({ level: 'silent' }));
  t.teardown(() => server.close());
  return { port: server.webhookPort, ca: await readFile(join(certDir, 'ca.crt'), 'utf8') };
}

/** A stream that declares `bytes` of body and sends none of it: it holds its reservation. */
function holdingStream(session: http2.ClientHttp2Session, bytes: number) {
  const stream = session.request({ ':method': 'POST', ':path': '/validate', 'content-type': 'application/json', 'content-length': bytes });
  stream.on('error', () => undefined);
  return stream;
}

function answer(stream: http2.ClientHttp2Stream) {
  return new Promise<{ status: number; body: string; rstCode: number | undefined }>((resolve) => {
    let status = 0;
    let body = '';
    stream.on('response', (headers) => (status = Number(headers[':status'])));
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => (body += chunk));
    stream.on('close', () => resolve({ status, body, rstCode: stream.rstCode }));
    stream.on('error', () => undefined);
  });
}

t.test('over the body-byte budget: 503 JSON with Retry-After at once, the HTTP/1.1 connection closed', async (t) => {
  const { port, ca } = await started(t, { 'max-body-bytes-in-flight': String(7 * MiB) });
  const session = http2.connect(`https://127.0.0.1:${port}`, { ca, servername: 'localhost' });
  t.teardown(() => session.destroy());
  holdingStream(session, 7 * MiB);
  await new Promise((resolve) => setTimeout(resolve, 200));
  const payload = JSON.stringify(review({ uid: 'big' })).padEnd(100 * 1024, ' ');
  const refused = await new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, path: '/validate', method: 'POST', ca, servername: 'localhost', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
  t.equal(refused.status, 503);
  t.equal(refused.headers['retry-after'], '1');
  t.equal(refused.headers['connection'], 'close');
  t.match(JSON.parse(refused.body), { statusCode: 503, error: 'Service Unavailable', message: /^the webhook is busy: 7340032 body bytes in flight, and this request's 102400 would exceed its budget of 7340032; retry shortly$/ });
});

t.test('over the requests in flight: the HTTP/2 stream is refused unprocessed, and an idle connection still gets its answer', async (t) => {
  const { port, ca } = await started(t, { 'max-requests-in-flight': '1' });
  const busy = http2.connect(`https://127.0.0.1:${port}`, { ca, servername: 'localhost' });
  t.teardown(() => busy.destroy());
  holdingStream(busy, 100);
  await new Promise((resolve) => setTimeout(resolve, 200));
  const second = busy.request({ ':method': 'POST', ':path': '/validate', 'content-type': 'application/json' });
  const refused = answer(second);
  second.end(JSON.stringify(review({ uid: 'second' })));
  const result = await refused;
  t.equal(result.rstCode, http2.constants.NGHTTP2_REFUSED_STREAM, 'RST_STREAM REFUSED_STREAM');
  t.equal(result.status, 0, 'no answer was started');

  // Declared small, as the API server declares every body: one without Content-Length may be
  // as large as the body limit, so it gets no guaranteed place.
  const idle = http2.connect(`https://127.0.0.1:${port}`, { ca, servername: 'localhost' });
  t.teardown(() => idle.destroy());
  const body = JSON.stringify(review({ uid: 'idle' }));
  const stream = idle.request({ ':method': 'POST', ':path': '/validate', 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  const served = answer(stream);
  stream.end(body);
  const ok = await served;
  t.equal(ok.status, 200);
  t.equal(JSON.parse(ok.body).response.uid, 'idle');
});

t.test('connections beyond maxConnections are closed at accept; open ones keep being served', async (t) => {
  const { port, ca } = await started(t, { 'max-connections': '1' });
  const first = http2.connect(`https://127.0.0.1:${port}`, { ca, servername: 'localhost' });
  t.teardown(() => first.destroy());
  await new Promise((resolve, reject) => first.once('connect', resolve).once('error', reject));
  const second = http2.connect(`https://127.0.0.1:${port}`, { ca, servername: 'localhost' });
  const outcome = await new Promise<string>((resolve) => {
    second.once('connect', () => resolve('connected'));
    second.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    second.once('close', () => resolve('closed'));
  });
  second.destroy();
  t.not(outcome, 'connected', `the second connection was refused (${outcome})`);
  const stream = first.request({ ':method': 'POST', ':path': '/validate', 'content-type': 'application/json' });
  const served = answer(stream);
  stream.end(JSON.stringify(review({ uid: 'first' })));
  t.equal((await served).status, 200);
});
