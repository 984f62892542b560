/**
 * The probe port is reachable by the same clients as the webhook port: it gets the same
 * connection deadlines, a connection cap, and a /metrics that a flood cannot make expensive.
 */
import t, { type Test } from 'tap';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import https from 'node:https';
import { pino } from 'pino';
import { startServer } from '../src/server.ts';
import { MAX_PROBE_CONNECTIONS } from '../src/http/probe-app.ts';
import { review, testConfig } from './helpers/reviews.ts';
import { tempDir } from './helpers/temp-dir.ts';

const HEADERS_TIMEOUT_MS = 500;
/** Far beyond the deadline under test, far below Node's own (60 s): which one cut the connection. */
const CUT_WITHIN_MS = 5000;

async function started(t: Test) {
  const certDir = await tempDir(t, 'probe-');
  const config = testConfig({ port: '0', 'probe-port': '0', host: '127.0.0.1', 'probe-host': '127.0.0.1', 'cert-dir': certDir, 'headers-timeout-ms': String(HEADERS_TIMEOUT_MS), 'request-timeout-ms': '1000' });
  const server = await startServer(config, pino({ level: 'silent' }));
  t.teardown(() => server.close());
  return { server, ca: await readFile(join(certDir, 'ca.crt'), 'utf8') };
}

/** Opens a connection, runs `drive` on it, and resolves with how long it stayed open (capped). */
function openFor(port: number, drive: (socket: net.Socket) => void): Promise<{ ms: number; closedByServer: boolean; received: string }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    const started = performance.now();
    const cap = setTimeout(() => {
      socket.destroy();
      resolve({ ms: performance.now() - started, closedByServer: false, received });
    }, CUT_WITHIN_MS);
    socket.on('data', (chunk: Buffer) => { received += chunk.toString(); });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(cap);
      resolve({ ms: performance.now() - started, closedByServer: true, received });
    });
    socket.on('connect', () => drive(socket));
  });
}

t.test('probe port: a slow or idle connection is cut at the headers deadline, like the webhook port', async (t) => {
  const { server } = await started(t);
  const port = server.probePort;
  const trickle = await openFor(port, (socket) => {
    const bytes = 'GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(200);
    let i = 0;
    const timer = setInterval(() => (socket.destroyed || i >= bytes.length ? clearInterval(timer) : socket.write(bytes[i++] as string)), 50);
  });
  t.ok(trickle.closedByServer, `headers sent a byte every 50 ms: cut after ${Math.round(trickle.ms)} ms`);
  const idle = await openFor(port, () => undefined);
  t.ok(idle.closedByServer, `a connection that sends nothing: cut after ${Math.round(idle.ms)} ms`);
  const keptAlive = await openFor(port, (socket) => socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'));
  t.match(keptAlive.received, /^HTTP\/1\.1 200/, 'a request is answered');
  t.ok(keptAlive.closedByServer, `and the idle keep-alive connection after it is cut (${Math.round(keptAlive.ms)} ms)`);
  t.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200, 'the port still answers');
});

t.test(`probe port: at most ${MAX_PROBE_CONNECTIONS} connections at once; the webhook port is not affected`, async (t) => {
  const { server, ca } = await started(t);
  const held: net.Socket[] = [];
  t.teardown(() => { for (const socket of held) socket.destroy(); });
  for (let i = 0; i < MAX_PROBE_CONNECTIONS; i++) {
    const socket = net.connect(server.probePort, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('connect', resolve));
    held.push(socket);
  }
  const extra = await openFor(server.probePort, (socket) => socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'));
  t.ok(extra.closedByServer && extra.received === '', 'one more is closed unanswered');
  const answer = await new Promise<number>((resolve, reject) => {
    const payload = JSON.stringify(review());
    const req = https.request({ host: '127.0.0.1', port: server.webhookPort, path: '/validate', method: 'POST', ca, servername: 'localhost', agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(payload);
  });
  t.equal(answer, 200, 'the webhook answers meanwhile');
});

t.test('/metrics renders at most once a second, however often it is asked', async (t) => {
  const { server, ca } = await started(t);
  const scrape = async () => (await (await fetch(`http://127.0.0.1:${server.probePort}/metrics`)).text());
  const count = (text: string) => Number(/mesh_admission_requests_total\{[^}]*kind="Service"[^}]*\} (\d+)/.exec(text)?.[1] ?? 0);
  const post = () =>
    new Promise<void>((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port: server.webhookPort, path: '/validate', method: 'POST', ca, servername: 'localhost', agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end(JSON.stringify(review()));
    });
  const first = await scrape();
  await post();
  const burst = await Promise.all(Array.from({ length: 50 }, scrape));
  t.ok(burst.every((text) => text === first), 'requests within the second share one rendering');
  t.equal(count(first), 0);
  await new Promise((resolve) => setTimeout(resolve, 1100));
  t.equal(count(await scrape()), 1, 'a second later the text is current');
});
