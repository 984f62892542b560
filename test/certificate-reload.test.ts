/**
 * Certificate hot reload against the running server over HTTPS: a replaced pair is served to
 * new connections only if start-up would have accepted it (validity window, chain to the CA
 * in use, key match); a refused one is logged with the reason, the previous certificate stays
 * and the metrics and /readyz say it is stale. Deleting and recreating the directory does not
 * stop the reload.
 */
import t, { type Test } from 'tap';
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import tls from 'node:tls';
import { pino } from 'pino';
import { startServer } from '../src/server.ts';
import { writeCertificateFiles } from '../src/tls/certificate-files.ts';
import { generateCertificates, issueServingCertificate } from '../src/tls/generate.ts';
import { testConfig } from './helpers/reviews.ts';
import { tempDir } from './helpers/temp-dir.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
const NAMES = { serviceName: 'mesh-admission', namespace: 'mesh-admission' };
type Line = Record<string, unknown>;

/** The certificate a NEW TLS connection is given, and whether it verifies against `ca`. */
function served(port: number, ca: string): Promise<{ fingerprint: string; verified: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca, rejectUnauthorized: false });
    socket.once('secureConnect', () => {
      const result = { fingerprint: socket.getPeerCertificate().fingerprint256, verified: socket.authorized };
      socket.destroy();
      resolve(result);
    });
    socket.once('error', reject);
  });
}

const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;

/** A server started on a fresh cert dir (it generates the CA and pair), with its log lines collected. */
async function serveFromTempDir(t: Test, prefix: string) {
  const base = await tempDir(t, prefix);
  const certDir = join(base, 'certs');
  const lines: Line[] = [];
  const logger = pino({ level: 'info' }, { write: (text: string) => lines.push(JSON.parse(text) as Line) });
  const config = testConfig({ port: '0', 'probe-port': '0', host: '127.0.0.1', 'probe-host': '127.0.0.1', 'cert-dir': certDir });
  const server = await startServer(config, logger);
  t.teardown(() => server.close());
  const ca = { cert: await readFile(join(certDir, 'ca.crt'), 'utf8'), key: await readFile(join(certDir, 'ca.key'), 'utf8') };
  return { certDir, lines, server, ca };
}

async function eventually(what: string, condition: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

t.test('reload refuses what start-up would refuse, keeps serving the previous certificate, and survives a recreated directory', async (t) => {
  const { certDir, lines, server, ca } = await serveFromTempDir(t, 'cert-reload-');
  const original = await readFile(join(certDir, 'tls.crt'), 'utf8');
  const originalKey = await readFile(join(certDir, 'tls.key'), 'utf8');
  const port = server.webhookPort;
  const probe = `http://127.0.0.1:${server.probePort}`;
  // The registry itself: /metrics serves a text up to a second old.
  const metric = async (name: string) => {
    const text = await server.metrics.registry.metrics();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    return line === undefined ? undefined : Number(line.split(' ').at(-1));
  };
  const logged = (message: string, from: number) => eventually(`log "${message}"`, () => lines.slice(from).some((l) => l['msg'] === message));

  t.same(await served(port, ca.cert), { fingerprint: fingerprint(original), verified: true });
  t.equal(await metric('mesh_admission_certificate_stale'), 0);

  const refusals: [string, { cert: string; key: string }, RegExp][] = [
    ['an expired pair', await issueServingCertificate({ ...NAMES, validityDays: 10, now: new Date(Date.now() - 400 * DAY_MS) }, ca), /tls\.crt expired /],
    ['a pair not yet valid', await issueServingCertificate({ ...NAMES, validityDays: 30, now: new Date(Date.now() + 10 * DAY_MS) }, ca), /tls\.crt is not valid before /],
    ['a pair from another CA', await generateCertificates({ ...NAMES, validityDays: 30 }), /tls\.crt is not signed by .*ca\.crt/],
    [
      'a certificate with the key of another',
      { cert: (await issueServingCertificate({ ...NAMES, validityDays: 30 }, ca)).cert, key: (await issueServingCertificate({ ...NAMES, validityDays: 30 }, ca)).key },
      /tls\.key does not belong to .*tls\.crt/,
    ],
    ['a pair for another Service', await issueServingCertificate({ serviceName: 'other', namespace: 'elsewhere', validityDays: 30 }, ca), /does not cover mesh-admission\.mesh-admission\.svc/],
  ];
  for (const [index, [label, pair, reason]] of refusals.entries()) {
    const from = lines.length;
    await writeCertificateFiles(certDir, { cert: pair.cert, key: pair.key });
    await logged('refused the new certificate files; still serving the previous certificate', from);
    const warning = lines.slice(from).find((l) => l['msg'] === 'refused the new certificate files; still serving the previous certificate') as Line;
    t.equal(warning['level'], 40, `${label}: a warning`);
    t.match(warning['reason'], reason, `${label}: the reason says why`);
    t.same(await served(port, ca.cert), { fingerprint: fingerprint(original), verified: true }, `${label}: new connections still get the previous certificate`);
    t.equal(await metric('mesh_admission_certificate_stale'), 1, `${label}: the stale gauge is set`);
    t.equal(await metric('mesh_admission_certificate_reloads_total{result="refused"}'), index + 1, `${label}: counted as refused`);
    const ready = await fetch(`${probe}/readyz`);
    t.equal(ready.status, 200, `${label}: still ready (the served certificate works)`);
    t.match(await ready.json(), { status: 'ready', warnings: [/^serving a stale certificate: /] }, `${label}: /readyz says it is stale`);
  }
  t.notOk(lines.some((l) => l['msg'] === 'serving certificate reloaded'), 'no refused pair was loaded');

  // The pair in use written back: in sync again.
  await writeCertificateFiles(certDir, { cert: original, key: originalKey });
  await eventually('the stale gauge to clear', async () => (await metric('mesh_admission_certificate_stale')) === 0);
  t.same(await (await fetch(`${probe}/readyz`)).json(), { status: 'ready' });

  // The directory deleted, then created again with a valid new pair of the same CA.
  let from = lines.length;
  await rm(certDir, { recursive: true });
  await logged('certificate directory removed; still serving the current certificate until it comes back', from);
  t.same(await served(port, ca.cert), { fingerprint: fingerprint(original), verified: true }, 'the current certificate is served meanwhile');
  const renewed = await issueServingCertificate({ ...NAMES, validityDays: 30 }, ca);
  await mkdir(certDir);
  await writeCertificateFiles(certDir, { caCert: ca.cert, caKey: ca.key, cert: renewed.cert, key: renewed.key });
  await logged('serving certificate reloaded', from);
  t.ok(lines.slice(from).some((l) => l['msg'] === 'certificate directory is back; watching it again'), 'the return is logged');
  t.same(await served(port, ca.cert), { fingerprint: fingerprint(renewed.cert), verified: true }, 'new connections get the new certificate');

  // The new directory is watched: a later change is picked up too.
  from = lines.length;
  const again = await issueServingCertificate({ ...NAMES, validityDays: 30 }, ca);
  await writeCertificateFiles(certDir, { cert: again.cert, key: again.key });
  await logged('serving certificate reloaded', from);
  t.same(await served(port, ca.cert), { fingerprint: fingerprint(again.cert), verified: true });
  t.equal(await metric('mesh_admission_certificate_reloads_total{result="applied"}'), 2);
  t.equal(await metric('mesh_admission_certificate_stale'), 0);
});

t.test('once the served certificate has expired with no valid replacement, the replica is not ready', async (t) => {
  const { certDir, lines, server, ca } = await serveFromTempDir(t, 'cert-expiring-');
  // A replacement valid for about 3 more seconds: loaded (it is valid), then it runs out.
  const expiring = await issueServingCertificate({ ...NAMES, validityDays: 3 / 86_400 }, ca);
  await writeCertificateFiles(certDir, { cert: expiring.cert, key: expiring.key });
  await eventually('the reload', () => lines.some((l) => l['msg'] === 'serving certificate reloaded'));
  const readyz = `http://127.0.0.1:${server.probePort}/readyz`;
  t.equal((await served(server.webhookPort, ca.cert)).fingerprint, fingerprint(expiring.cert), 'the short-lived certificate is served');
  await eventually('readiness to drop', async () => (await fetch(readyz)).status === 503);
  t.match(await (await fetch(readyz)).json(), { status: 'not ready', reason: /^the served certificate expired at .* and no valid replacement was loaded$/ });
});
