/**
 * Adversarial input (test/fixtures/adversarial/cases.ts) through app.inject and against a
 * listening TLS server, plus what only a real socket can do: plain HTTP on the TLS port, old
 * TLS, slow clients, many connections. Every answer is prompt, a clear JSON 4xx or a correct
 * 200, never a 5xx; afterwards the server still answers correctly.
 */
import t, { type Test } from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import https from 'node:https';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { pino } from 'pino';
import { buildApp } from '../src/app.ts';
import { createMetrics } from '../src/observability/metrics.ts';
import { startServer, type RunningServer } from '../src/server.ts';
import { CASES, type AdversarialCase, type Expected } from './fixtures/adversarial/cases.ts';
import { decodePatch, review, service, testConfig } from './helpers/reviews.ts';
import { tempDir } from './helpers/temp-dir.ts';

/**
 * Each answer must come within this. The target is well under a second; the slowest cases
 * (10,000 ports, 7 MiB bodies) take a few hundred ms on an idle machine, and the margin
 * absorbs a busy 2-core CI runner. A hang or a quadratic blow-up still fails.
 */
const DEADLINE_MS = 1000;
/** Slack for timers and a loaded machine when checking that a connection was cut on time. */
const TIMER_SLACK_MS = 750;
const HEADERS_TIMEOUT_MS = 500;
const REQUEST_TIMEOUT_MS = 1000;

interface Answer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | number | undefined>>;
  readonly text: string;
  readonly ms: number;
}

function at(value: unknown, path: string): unknown {
  let node = value;
  for (const part of path.split('.')) {
    if (node === null || node === undefined) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

/** The JSON answer with a review's patch decoded, so expectations can state it as operations. */
function decoded(text: string): unknown {
  const json = JSON.parse(text) as { response?: { patch?: string } };
  if (json.response?.patch !== undefined) (json.response as { patch: unknown }).patch = decodePatch(json.response.patch);
  return json;
}

function check(t: Test, label: string, expect: Expected, answer: Answer): void {
  t.equal(answer.status, expect.status, `${label}: status`);
  t.ok(answer.ms < DEADLINE_MS, `${label}: answered in ${Math.round(answer.ms)} ms (< ${DEADLINE_MS})`);
  for (const [name, value] of Object.entries(expect.headers ?? {})) t.equal(answer.headers[name], value, `${label}: ${name} header`);
  if (expect.body === undefined && expect.fields === undefined) {
    t.equal(answer.text, '', `${label}: no body`);
    return;
  }
  t.match(String(answer.headers['content-type']), /^application\/json/, `${label}: JSON`);
  const json = decoded(answer.text);
  if (expect.body !== undefined) t.same(json, expect.body, `${label}: answer`);
  for (const [path, value] of Object.entries(expect.fields ?? {})) {
    if (value instanceof RegExp) t.match(String(at(json, path)), value, `${label}: ${path}`);
    else t.same(at(json, path), value, `${label}: ${path}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The corpus through app.inject
// ---------------------------------------------------------------------------------------------

t.test('the corpus is large enough and its names are unique', async (t) => {
  t.ok(CASES.length >= 60, `${CASES.length} cases`);
  t.equal(new Set(CASES.map((c) => c.name)).size, CASES.length);
});

t.test('every corpus case through app.inject', async (t) => {
  const apps = new Map<string, ReturnType<typeof buildApp>>();
  const appFor = (flags: Readonly<Record<string, string>> = {}) => {
    const key = JSON.stringify(flags);
    let app = apps.get(key);
    if (!app) {
      app = buildApp(testConfig(flags), { metrics: createMetrics({ collectProcessMetrics: false }) });
      apps.set(key, app);
    }
    return app;
  };
  t.teardown(() => Promise.all([...apps.values()].map((app) => app.close())));
  for (const c of CASES) {
    const payload = c.body?.();
    const headers: Record<string, string> = {};
    if (c.contentType !== null) headers['content-type'] = c.contentType ?? 'application/json';
    const started = performance.now();
    const res = await appFor(c.flags).inject({ method: c.method ?? 'POST', url: c.url ?? '/validate', headers, ...(payload === undefined ? {} : { payload }) });
    check(t, c.name, c.expect, { status: res.statusCode, headers: res.headers, text: res.body, ms: performance.now() - started });
  }
});

// ---------------------------------------------------------------------------------------------
// A listening server
// ---------------------------------------------------------------------------------------------

async function listening(t: Test): Promise<{ server: RunningServer; ca: string }> {
  const certDir = await tempDir(t, 'adversarial-');
  const config = testConfig({
    port: '0',
    'probe-port': '0',
    host: '127.0.0.1',
    'probe-host': '127.0.0.1',
    'cert-dir': certDir,
    'headers-timeout-ms': String(HEADERS_TIMEOUT_MS),
    'request-timeout-ms': String(REQUEST_TIMEOUT_MS),
  });
  const server = await startServer(config, pino({ level: 'silent' }));
  t.teardown(() => server.close());
  return { server, ca: await readFile(join(certDir, 'ca.crt'), 'utf8') };
}

function send(port: number, ca: string, agent: https.Agent | false, c: Pick<AdversarialCase, 'method' | 'url' | 'contentType'>, payload: string | Buffer | undefined): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const headers: Record<string, string | number> = {};
    if (c.contentType !== null) headers['content-type'] = c.contentType ?? 'application/json';
    if (payload !== undefined) headers['content-length'] = Buffer.byteLength(payload);
    let answered = false;
    const req = https.request({ host: '127.0.0.1', port, servername: 'localhost', ca, agent, method: c.method ?? 'POST', path: c.url ?? '/validate', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        answered = true;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - started });
      });
    });
    // A server that answers 413 early closes while a large body is still being written: the
    // answer counts, the write error does not.
    req.on('error', (error) => setTimeout(() => (answered ? undefined : reject(error)), 200));
    req.end(payload);
  });
}

t.test('every corpus case against a listening TLS server, which then still answers correctly', async (t) => {
  const { server, ca } = await listening(t);
  const agent = new https.Agent({ keepAlive: true, maxSockets: 4 });
  t.teardown(() => agent.destroy());
  for (const c of CASES) {
    // Cases with their own settings need their own app; app.inject covers them.
    if (c.flags) continue;
    check(t, c.name, c.expect, await send(server.webhookPort, ca, agent, c, c.body?.()));
  }
  const after = await send(server.webhookPort, ca, agent, {}, JSON.stringify(review({ uid: 'after', object: service('data', [{ name: 'data', port: 12345 }]) })));
  t.equal(after.status, 200);
  t.match(JSON.parse(after.text), { response: { uid: 'after', allowed: false, status: { code: 403 } } });
  t.equal((await fetch(`http://127.0.0.1:${server.probePort}/healthz`)).status, 200);
});

/** Raw bytes to a port; resolves with what came back and when the connection closed. */
function rawExchange(port: number, bytes: string): Promise<{ text: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = net.connect(port, '127.0.0.1', () => socket.write(bytes));
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve({ text: Buffer.concat(chunks).toString('latin1'), ms: performance.now() - started }));
  });
}

t.test('plain HTTP on the TLS port gets a JSON 400 saying to use HTTPS', async (t) => {
  const { server } = await listening(t);
  for (const request of ['GET /validate HTTP/1.1\r\nHost: x\r\n\r\n', `POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`]) {
    const { text, ms } = await rawExchange(server.webhookPort, request);
    t.ok(ms < DEADLINE_MS, `answered in ${Math.round(ms)} ms`);
    const [head, body] = text.split('\r\n\r\n');
    t.match(head, /^HTTP\/1\.1 400 Bad Request\r\n/);
    t.match(head, /\r\nContent-Type: application\/json; charset=utf-8\r\n/);
    t.same(JSON.parse(body ?? ''), { statusCode: 400, error: 'Bad Request', message: 'this port speaks HTTPS (TLS 1.2+); the request was sent as plain HTTP' });
  }
  // Bytes that are neither TLS nor HTTP: the connection is just closed.
  const junk = await rawExchange(server.webhookPort, 'hello\r\n\r\n');
  t.equal(junk.text, '');
  t.ok(junk.ms < DEADLINE_MS);
});

t.test('TLS 1.1 and TLS 1.0 clients are refused at once', async (t) => {
  const { server, ca } = await listening(t);
  for (const version of ['TLSv1', 'TLSv1.1'] as const) {
    const started = performance.now();
    const outcome = await new Promise<string>((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port: server.webhookPort, ca, servername: 'localhost', minVersion: version, maxVersion: version });
      socket.on('secureConnect', () => { socket.destroy(); resolve('connected'); });
      socket.on('error', (error: Error & { code?: string }) => resolve(error.code ?? error.message));
    });
    t.not(outcome, 'connected', `${version} refused (${outcome})`);
    t.ok(performance.now() - started < DEADLINE_MS);
  }
});

/** Opens a TLS connection and writes `text` one character per `everyMs`; resolves when the server closes it. */
function trickle(port: number, ca: string, text: string, everyMs: number, alpn = 'http/1.1'): Promise<{ received: string; ms: number; sent: number }> {
  return new Promise((resolve) => {
    const started = performance.now();
    let sent = 0;
    const chunks: Buffer[] = [];
    const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost', ALPNProtocols: [alpn] }, () => {
      const timer = setInterval(() => {
        if (socket.destroyed) return;
        socket.write(text[sent % text.length] ?? ' ');
        sent += 1;
      }, everyMs);
      socket.once('close', () => clearInterval(timer));
    });
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ received: Buffer.concat(chunks).toString('latin1'), ms: performance.now() - started, sent }));
  });
}

t.test('slow clients are cut off by the configured timeouts (slowloris)', async (t) => {
  const { server, ca } = await listening(t);
  const port = server.webhookPort;

  await t.test('headers sent one byte at a time never finish: cut at headersTimeoutMs', async (t) => {
    const { ms, sent } = await trickle(port, ca, 'POST /validate HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 50);
    t.ok(sent > 5, `the client kept sending (${sent} bytes)`);
    t.ok(ms >= HEADERS_TIMEOUT_MS - 50 && ms < HEADERS_TIMEOUT_MS + TIMER_SLACK_MS, `closed after ${Math.round(ms)} ms`);
  });

  await t.test('a body sent one byte at a time: 408 JSON at requestTimeoutMs, then closed', async (t) => {
    const started = performance.now();
    const result = await new Promise<{ received: string; ms: number }>((resolve) => {
      const chunks: Buffer[] = [];
      const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost', ALPNProtocols: ['http/1.1'] }, () => {
        socket.write('POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{');
        const timer = setInterval(() => socket.destroyed || socket.write(' '), 50);
        socket.once('close', () => clearInterval(timer));
      });
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve({ received: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - started }));
    });
    t.ok(result.ms >= REQUEST_TIMEOUT_MS - 50 && result.ms < REQUEST_TIMEOUT_MS + TIMER_SLACK_MS, `closed after ${Math.round(result.ms)} ms`);
    const [head, body] = result.received.split('\r\n\r\n');
    t.match(head, /^HTTP\/1\.1 408 Request Timeout\r\n/);
    t.same(JSON.parse(body ?? ''), { statusCode: 408, error: 'Request Timeout', message: `the request was not received in full within ${REQUEST_TIMEOUT_MS} ms` });
  });

  await t.test('an idle connection that never sends a request is closed', async (t) => {
    const { ms } = await trickle(port, ca, '', 60_000);
    t.ok(ms < HEADERS_TIMEOUT_MS + TIMER_SLACK_MS, `closed after ${Math.round(ms)} ms`);
  });

  await t.test('a keep-alive connection that trickles its second request is cut too', async (t) => {
    const first = JSON.stringify(review({ uid: 'first' }));
    const started = performance.now();
    const received = await new Promise<string>((resolve) => {
      const chunks: Buffer[] = [];
      const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost', ALPNProtocols: ['http/1.1'] }, () => {
        socket.write(`POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${first.length}\r\n\r\n${first}`);
        const timer = setInterval(() => socket.destroyed || socket.write('P'), 50);
        socket.once('close', () => clearInterval(timer));
      });
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    });
    t.match(received, /^HTTP\/1\.1 200 OK\r\n[\s\S]*"uid":"first"/, 'the first request was answered');
    t.ok(performance.now() - started < HEADERS_TIMEOUT_MS + TIMER_SLACK_MS + 200, 'then the slow one was cut');
  });

  await t.test('a TLS handshake that never completes is cut', async (t) => {
    const { ms } = await new Promise<{ ms: number }>((resolve) => {
      const started = performance.now();
      // A few bytes of a ClientHello record header, then nothing.
      const socket = net.connect(port, '127.0.0.1', () => socket.write(Buffer.from([0x16, 0x03, 0x01, 0x02])));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve({ ms: performance.now() - started }));
    });
    t.ok(ms < HEADERS_TIMEOUT_MS + TIMER_SLACK_MS, `closed after ${Math.round(ms)} ms`);
  });

  await t.test('HTTP/2: a stream whose body trickles gets 408 at requestTimeoutMs', async (t) => {
    const started = performance.now();
    const session = http2.connect(`https://127.0.0.1:${port}`, { ca, servername: 'localhost' });
    session.on('error', () => undefined);
    const req = session.request({ ':method': 'POST', ':path': '/validate', 'content-type': 'application/json' });
    req.write('{');
    const timer = setInterval(() => req.writable && req.write(' '), 50);
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve) => {
      let status = 0;
      let body = '';
      req.on('response', (headers) => { status = Number(headers[':status']); });
      req.on('data', (chunk: Buffer) => { body += chunk.toString(); });
      req.on('error', () => undefined);
      req.on('close', () => resolve({ status, body }));
    });
    clearInterval(timer);
    session.destroy();
    const ms = performance.now() - started;
    t.equal(status, 408);
    t.same(JSON.parse(body), { statusCode: 408, error: 'Request Timeout', message: `the request was not received in full within ${REQUEST_TIMEOUT_MS} ms` });
    t.ok(ms < REQUEST_TIMEOUT_MS + TIMER_SLACK_MS, `answered after ${Math.round(ms)} ms`);
  });

  await t.test('HTTP/2: a session with no request is closed with GOAWAY', async (t) => {
    const started = performance.now();
    const session = http2.connect(`https://127.0.0.1:${port}`, { ca, servername: 'localhost' });
    session.on('error', () => undefined);
    const goaway = new Promise<number>((resolve) => session.on('goaway', (code) => resolve(code)));
    await new Promise((resolve) => session.on('close', resolve));
    t.equal(await goaway, http2.constants.NGHTTP2_NO_ERROR);
    t.ok(performance.now() - started < HEADERS_TIMEOUT_MS + TIMER_SLACK_MS);
  });

  // After all that, a normal request on a fresh connection is still served.
  const after = await send(port, ca, false, {}, JSON.stringify(review({ uid: 'after-slow' })));
  t.equal(after.status, 200);
  t.equal(JSON.parse(after.text).response.uid, 'after-slow');
});

t.test('500 concurrent connections are all answered correctly', async (t) => {
  const { server, ca } = await listening(t);
  const started = performance.now();
  const answers = await Promise.all(
    Array.from({ length: 500 }, (_, i) => {
      const bad = i % 2 === 0;
      const body = review({ uid: `c-${i}`, object: service(`s-${i}`, [{ name: bad ? 'data' : 'http-data', port: 8080 }]) });
      return send(server.webhookPort, ca, false, { url: '/validate' }, JSON.stringify(body)).then((answer) => ({ i, bad, answer }));
    }),
  );
  const wall = performance.now() - started;
  const wrong = answers.filter(({ i, bad, answer }) => {
    if (answer.status !== 200) return true;
    const response = JSON.parse(answer.text).response;
    return response.uid !== `c-${i}` || response.allowed === bad;
  });
  t.same(wrong.map(({ i }) => i), [], 'every answer is a 200 with the right uid and verdict');
  // 500 TLS handshakes, client and server in one process on a small machine: the whole burst,
  // not each request, gets a deadline.
  t.ok(wall < 15_000, `all answered in ${Math.round(wall)} ms`);
  const after = await send(server.webhookPort, ca, false, {}, JSON.stringify(review({ uid: 'after-burst' })));
  t.equal(JSON.parse(after.text).response.uid, 'after-burst');
});
