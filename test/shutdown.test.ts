/**
 * Shutdown completes within its grace whatever clients do: after an HTTP/2 rapid-reset burst,
 * with requests that never finish on HTTP/2 and HTTP/1.1 and a handshake never completed,
 * SIGTERM still ends in exit 0 before the grace runs out.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { followServeLogs } from './helpers/serve-logs.ts';
import { tempDir } from './helpers/temp-dir.ts';

const GRACE_MS = 3000;

/** One HTTP/2 frame: 24-bit length, type, flags, stream id, payload. */
function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(stream, 5);
  return Buffer.concat([header, payload]);
}
const DATA = 0x0;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const END_HEADERS = 0x4;
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
/** HPACK without Huffman: :method POST, :path /validate, :scheme https, :authority, content-type. */
const literal = (index: number, value: string) => Buffer.concat([Buffer.from([0x40 | index, value.length]), Buffer.from(value)]);
const POST_VALIDATE = Buffer.concat([Buffer.from([0x83]), literal(4, '/validate'), Buffer.from([0x87]), literal(1, 'localhost'), literal(31, 'application/json')]);
const CANCEL = Buffer.from([0, 0, 0, 8]);

function connectH2(port: number, ca: string): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca, ALPNProtocols: ['h2'] }, () => resolve(socket));
    socket.on('error', reject);
    socket.on('data', () => undefined);
  });
}

t.test('SIGTERM after a rapid-reset burst, with stalled requests open, exits 0 within the grace', async (t) => {
  const certDir = await tempDir(t, 'shutdown-');
  const child = spawn(
    process.execPath,
    ['src/cli.ts', 'serve', '--port', '0', '--probe-port', '0', '--host', '127.0.0.1', '--probe-host', '127.0.0.1', '--cert-dir', certDir, '--shutdown-grace-ms', String(GRACE_MS)],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  t.teardown(() => { child.kill('SIGKILL'); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const logs = followServeLogs(child);
  const { webhookPort, probePort } = await logs.serving();
  const ca = await readFile(join(certDir, 'ca.crt'), 'utf8');

  // The burst: streams opened and reset at once, 20,000 per connection on 4 connections.
  const attackers: tls.TLSSocket[] = [];
  for (let c = 0; c < 4; c++) {
    const socket = await connectH2(webhookPort, ca);
    socket.on('error', () => undefined);
    const frames = [PREFACE, frame(SETTINGS, 0, 0, Buffer.alloc(0))];
    for (let i = 0; i < 20_000; i++) frames.push(frame(HEADERS, END_HEADERS, 2 * i + 1, POST_VALIDATE), frame(RST_STREAM, 0, 2 * i + 1, CANCEL));
    socket.write(Buffer.concat(frames));
    attackers.push(socket);
  }
  // Requests that never finish: an HTTP/2 stream and an HTTP/1.1 request with half a body,
  // a TLS handshake never started, a probe request with half its headers.
  const stalledH2 = await connectH2(webhookPort, ca);
  stalledH2.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0, Buffer.alloc(0)), frame(HEADERS, END_HEADERS, 1, POST_VALIDATE), frame(DATA, 0, 1, Buffer.from('{"apiVersion":'))]));
  const stalledH1 = tls.connect({ host: '127.0.0.1', port: webhookPort, servername: 'localhost', ca, ALPNProtocols: ['http/1.1'] });
  stalledH1.on('error', () => undefined);
  await new Promise((resolve) => stalledH1.once('secureConnect', resolve));
  stalledH1.write('POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"apiVersion":');
  const noHandshake = net.connect(webhookPort, '127.0.0.1');
  const slowProbe = net.connect(probePort, '127.0.0.1', () => slowProbe.write('GET /metrics HTTP/1.1\r\nHo'));
  for (const socket of [noHandshake, slowProbe]) socket.on('error', () => undefined);
  t.teardown(() => { for (const socket of [...attackers, stalledH2, stalledH1, noHandshake, slowProbe]) socket.destroy(); });

  await new Promise((resolve) => setTimeout(resolve, 2000));
  const signalled = Date.now();
  child.kill('SIGTERM');
  const code = await exited;
  const tookMs = Date.now() - signalled;
  t.equal(code, 0, 'exit 0, not the grace timeout');
  t.ok(tookMs < GRACE_MS, `exited ${tookMs} ms after SIGTERM, within the ${GRACE_MS} ms grace`);
  t.ok(logs.lines.some((l) => l['msg'] === 'drain deadline reached: closed the connections still open'), 'the forced close is logged');
  t.ok(logs.lines.some((l) => l['msg'] === 'stopped'));
});

t.test('the shutdown lines come out whole and in order, ending with "stopped" (the log is written asynchronously)', async (t) => {
  const certDir = await tempDir(t, 'shutdown-order-');
  // stdout to a file, as a container runtime takes it: a write still in flight at exit shows there.
  const logFile = join(certDir, 'serve.log');
  for (let round = 1; round <= 8; round++) {
    const out = openSync(logFile, 'w');
    const child = spawn(process.execPath, ['src/cli.ts', 'serve', '--port', '0', '--probe-port', '0', '--host', '127.0.0.1', '--probe-host', '127.0.0.1', '--cert-dir', certDir], { stdio: ['ignore', out, 'pipe'] });
    closeSync(out);
    for (let waited = 0; !(await readFile(logFile, 'utf8')).includes('"mesh-admission serving"') && waited < 15_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
    const closed = new Promise<number | null>((resolve) => child.once('close', resolve));
    child.kill('SIGTERM');
    t.equal(await closed, 0, `round ${round}: exit 0`);
    const messages = (await readFile(logFile, 'utf8')).trim().split('\n').map((line) => (JSON.parse(line) as { msg: string }).msg);
    t.same(messages.slice(-2), ['shutting down: readiness off, draining in-flight requests', 'stopped'], `round ${round}: the last two lines, in order`);
  }
});
