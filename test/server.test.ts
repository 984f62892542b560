/** The real server: TLS with generated certificates, HTTP/1.1 and HTTP/2, probes, reload, shutdown. */
import t from 'tap';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import https from 'node:https';
import http2 from 'node:http2';
import tls from 'node:tls';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { pino } from 'pino';
import { startServer } from '../src/server.ts';
import { issueServingCertificate } from '../src/tls/generate.ts';
import { review, service, testConfig } from './helpers/reviews.ts';
import { followServeLogs } from './helpers/serve-logs.ts';
import { tempDir } from './helpers/temp-dir.ts';
import { unavailableWorld } from '../src/policies/traffic-world.ts';

const silent = pino({ level: 'silent' });

async function started(t: { teardown: (fn: () => unknown) => void }, flags: Record<string, string> = {}) {
  const certDir = await tempDir(t, 'serve-');
  const config = testConfig({ port: '0', 'probe-port': '0', host: '127.0.0.1', 'probe-host': '127.0.0.1', 'cert-dir': certDir, ...flags });
  const server = await startServer(config, silent);
  t.teardown(() => server.close());
  const ca = await readFile(join(certDir, 'ca.crt'), 'utf8');
  return { server, certDir, ca };
}

function postHttp1(port: number, ca: string, path: string, body: unknown, servername = 'localhost') {
  return new Promise<{ status: number; json: any; protocol: string; fingerprint: string }>((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = https.request(
      { host: '127.0.0.1', port, path, method: 'POST', ca, servername, agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const socket = res.socket as tls.TLSSocket;
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString()), protocol: socket.getProtocol() ?? '', fingerprint: socket.getPeerCertificate().fingerprint256 });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

function postHttp2(port: number, ca: string, path: string, body: unknown) {
  return new Promise<{ status: number; json: any; alpn: string | false | null }>((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { ca, servername: 'localhost' });
    session.on('error', reject);
    const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/json' });
    let status = 0;
    req.on('response', (headers) => { status = Number(headers[':status']); });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const alpn = (session.socket as tls.TLSSocket).alpnProtocol;
      session.close();
      resolve({ status, json: JSON.parse(Buffer.concat(chunks).toString()), alpn });
    });
    req.end(JSON.stringify(body));
  });
}

t.test('HTTPS/1.1 verified against the generated CA', async (t) => {
  const { server, ca } = await started(t);
  const res = await postHttp1(server.webhookPort, ca, '/validate', review({ uid: 'h1', object: service('data', [{ name: 'data', port: 12345 }]) }));
  t.equal(res.status, 200);
  t.equal(res.json.response.uid, 'h1');
  t.equal(res.json.response.allowed, false);
  t.match(res.protocol, /^TLSv1\.[23]$/);
});

t.test('HTTP/2 over TLS, negotiated with ALPN', async (t) => {
  const { server, ca } = await started(t);
  const res = await postHttp2(server.webhookPort, ca, '/mutate', review({ uid: 'h2', object: service('web', [{ name: 'web', port: 8080 }]) }));
  t.equal(res.alpn, 'h2');
  t.equal(res.status, 200);
  t.equal(res.json.response.uid, 'h2');
  t.equal(res.json.response.patchType, 'JSONPatch');
});

t.test('HTTP/2: a session that served a request outlives the headers deadline (no handshake per admission)', async (t) => {
  const { server, ca } = await started(t, { 'headers-timeout-ms': '300' });
  const session = http2.connect(`https://127.0.0.1:${server.webhookPort}`, { ca, servername: 'localhost' });
  t.teardown(() => session.destroy());
  let closed = false;
  session.on('close', () => { closed = true; });
  const ask = (uid: string) =>
    new Promise<any>((resolve, reject) => {
      const req = session.request({ ':method': 'POST', ':path': '/validate', 'content-type': 'application/json' });
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString())));
      req.on('error', reject);
      req.end(JSON.stringify(review({ uid })));
    });
  t.equal((await ask('first')).response.uid, 'first');
  await new Promise((r) => setTimeout(r, 900));
  t.notOk(closed, 'the session is still open three headers deadlines later');
  t.equal((await ask('second')).response.uid, 'second');
});

t.test('the certificate is valid for the in-cluster Service name too', async (t) => {
  const { server, ca } = await started(t);
  const res = await postHttp1(server.webhookPort, ca, '/validate', review(), 'mesh-admission.mesh-admission.svc');
  t.equal(res.status, 200);
});

t.test('TLS 1.1 and older are refused', async (t) => {
  const { server, ca } = await started(t);
  const error = await new Promise<Error | undefined>((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port: server.webhookPort, ca, servername: 'localhost', minVersion: 'TLSv1', maxVersion: 'TLSv1.1' });
    socket.on('secureConnect', () => { socket.destroy(); resolve(undefined); });
    socket.on('error', resolve);
  });
  t.ok(error, 'handshake failed');
});

t.test('probe port: healthz, readyz and metrics', async (t) => {
  const { server, ca } = await started(t);
  await postHttp1(server.webhookPort, ca, '/validate', review());
  const base = `http://127.0.0.1:${server.probePort}`;
  t.same(await (await fetch(`${base}/healthz`)).json(), { status: 'ok' });
  const ready = await fetch(`${base}/readyz`);
  t.equal(ready.status, 200);
  t.equal(await ready.text(), '{"status":"ready"}\n', 'one line of JSON ending in a newline, as curl shows it');
  t.match(ready.headers.get('content-type'), /^application\/json/);
  t.equal(await (await fetch(`${base}/healthz`)).text(), '{"status":"ok"}\n');
  const metrics = await (await fetch(`${base}/metrics`)).text();
  t.match(metrics, /mesh_admission_requests_total\{webhook="validate",kind="Service",operation="CREATE",decision="allowed"\} 1/);
  t.match(metrics, /mesh_admission_certificate_expiry_timestamp_seconds \d+/);
  t.match(metrics, /process_resident_memory_bytes/);
  t.equal((await fetch(`${base}/nope`)).status, 404);
});

t.test('replaced certificate files are served to new connections without a restart', async (t) => {
  const { server, certDir, ca } = await started(t);
  const before = await postHttp1(server.webhookPort, ca, '/validate', review());
  const next = await issueServingCertificate({ serviceName: 'mesh-admission', namespace: 'mesh-admission', validityDays: 30 }, { cert: ca, key: await readFile(join(certDir, 'ca.key'), 'utf8') });
  await writeFile(join(certDir, 'tls.key'), next.key);
  await writeFile(join(certDir, 'tls.crt'), next.cert);
  const expected = new X509Certificate(next.cert).fingerprint256;
  let seen = before.fingerprint;
  for (let attempt = 0; attempt < 50 && seen !== expected; attempt++) {
    await new Promise((r) => setTimeout(r, 100));
    seen = await postHttp1(server.webhookPort, ca, '/validate', review()).then((r) => r.fingerprint, () => seen);
  }
  t.not(before.fingerprint, expected);
  t.equal(seen, expected, 'a new connection presents the new certificate');
});

t.test('close(): readiness goes false and the ports close', async (t) => {
  const { server } = await started(t);
  const probe = `http://127.0.0.1:${server.probePort}/readyz`;
  t.equal((await fetch(probe)).status, 200);
  await server.close();
  await t.rejects(fetch(probe));
});

t.test('shutdown delay: readiness off at once, requests still served until the delay ends', async (t) => {
  const { server, ca } = await started(t, { 'shutdown-delay-ms': '1500' });
  const closing = server.close();
  const ready = await fetch(`http://127.0.0.1:${server.probePort}/readyz`);
  t.equal(ready.status, 503);
  const res = await postHttp1(server.webhookPort, ca, '/validate', review({ uid: 'during-delay' }));
  t.equal(res.json.response.uid, 'during-delay', 'a new connection is still served during the delay');
  await closing;
});

t.test('SIGTERM: readiness off first, in-flight request completes, exit 0', async (t) => {
  const certDir = await tempDir(t, 'sigterm-');
  const child = spawn(process.execPath, ['src/cli.ts', 'serve', '--port', '0', '--probe-port', '0', '--host', '127.0.0.1', '--probe-host', '127.0.0.1', '--cert-dir', certDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => { child.kill('SIGKILL'); });
  const logs = followServeLogs(child);
  const { webhookPort, probePort } = await logs.serving();
  const ca = await readFile(join(certDir, 'ca.crt'), 'utf8');

  // Start a request and send only half of its body: it is in flight when the signal arrives.
  const payload = JSON.stringify(review({ uid: 'in-flight' }));
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port: webhookPort, path: '/validate', method: 'POST', ca, servername: 'localhost', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.write(payload.slice(0, 20));
    setTimeout(() => {
      child.kill('SIGTERM');
      setTimeout(async () => {
        const ready = await fetch(`http://127.0.0.1:${probePort}/readyz`).then((r) => r.status, () => 'closed');
        t.not(ready, 200, 'readiness is off once shutdown began');
        req.end(payload.slice(20));
      }, 300);
    }, 200);
  });
  const answer = await response;
  t.equal(answer.status, 200);
  t.equal(JSON.parse(answer.body).response.uid, 'in-flight');
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  t.equal(code, 0);
  t.ok(logs.lines.some((l) => l['msg'] === 'stopped'));
});

t.test('a start that fails on the probe port releases the webhook port it had already opened', async (t) => {
  const net = await import('node:net');
  const listen = (port: number) =>
    new Promise<import('node:net').Server>((resolve, reject) => {
      const server = net.createServer();
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve(server));
    });
  const closeServer = (server: import('node:net').Server) => new Promise<void>((resolve) => server.close(() => resolve()));
  const taken = await listen(0);
  t.teardown(() => closeServer(taken));
  const probe = await listen(0);
  const webhookPort = (probe.address() as import('node:net').AddressInfo).port;
  await closeServer(probe);
  const certDir = await tempDir(t, 'serve-failed-');
  const config = testConfig({ port: String(webhookPort), 'probe-port': String((taken.address() as import('node:net').AddressInfo).port), host: '127.0.0.1', 'probe-host': '127.0.0.1', 'cert-dir': certDir });
  await t.rejects(startServer(config, silent), { code: 'EADDRINUSE' });
  const again = await listen(webhookPort);
  t.pass(`port ${webhookPort} can be bound again`);
  await closeServer(again);
});

/** Traffic caches that only count how often they are stopped. */
function countingCaches() {
  const caches = {
    stopped: 0,
    world: unavailableWorld('not read in this test'),
    notReadyReason: () => undefined,
    waitForSync: async () => true,
    stop: async () => {
      caches.stopped++;
    },
  };
  return caches;
}

t.test('closing the server stops the traffic caches once', async (t) => {
  const certDir = await tempDir(t, 'serve-caches-');
  const config = testConfig({ port: '0', 'probe-port': '0', host: '127.0.0.1', 'probe-host': '127.0.0.1', 'cert-dir': certDir, 'traffic-checks': 'true' });
  const traffic = countingCaches();
  const server = await startServer(config, silent, { traffic });
  t.equal(traffic.stopped, 0, 'running while the server serves');
  await server.close();
  t.equal(traffic.stopped, 1);
});

t.test('a start that fails on its port stops the traffic caches it had started', async (t) => {
  const net = await import('node:net');
  const taken = await new Promise<import('node:net').Server>((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => resolve(server));
  });
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => resolve())));
  const certDir = await tempDir(t, 'serve-caches-failed-');
  const port = String((taken.address() as import('node:net').AddressInfo).port);
  const config = testConfig({ port, 'probe-port': '0', host: '127.0.0.1', 'probe-host': '127.0.0.1', 'cert-dir': certDir, 'traffic-checks': 'true' });
  const traffic = countingCaches();
  await t.rejects(startServer(config, silent, { traffic }), { code: 'EADDRINUSE' });
  t.equal(traffic.stopped, 1);
});
