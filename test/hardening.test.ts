/**
 * Hardening of the listening server: modern TLS only (also after a certificate reload),
 * optional client-certificate verification (--client-ca-file), the timeout settings, and logs
 * that never carry key material or object contents.
 */
import t, { type Test } from 'tap';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import https from 'node:https';
import tls from 'node:tls';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { pino } from 'pino';
import { generate } from 'selfsigned';
import { startServer, type RunningServer } from '../src/server.ts';
import { generateCertificateAuthority, issueServingCertificate } from '../src/tls/generate.ts';
import { buildConfig, DEFAULT_CONFIG } from '../src/config.ts';
import { review, service, namespace, testConfig } from './helpers/reviews.ts';
import { followServeLogs } from './helpers/serve-logs.ts';
import { tempDir } from './helpers/temp-dir.ts';

const silent = pino({ level: 'silent' });

interface Started {
  readonly server: RunningServer;
  readonly certDir: string;
  readonly ca: string;
}

async function started(t: Test, flags: Record<string, string> = {}): Promise<Started> {
  const certDir = await tempDir(t, 'hardening-');
  const config = testConfig({ port: '0', 'probe-port': '0', host: '127.0.0.1', 'probe-host': '127.0.0.1', 'cert-dir': certDir, ...flags });
  const server = await startServer(config, silent);
  t.teardown(() => server.close());
  return { server, certDir, ca: await readFile(join(certDir, 'ca.crt'), 'utf8') };
}

/** A TLS handshake with the given client options: the negotiated cipher, or the error code. */
function handshake(port: number, options: tls.ConnectionOptions): Promise<{ cipher?: string; error?: string; fingerprint?: string }> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ...options });
    socket.on('secureConnect', () => {
      const result = { cipher: socket.getCipher().standardName, fingerprint: socket.getPeerCertificate().fingerprint256 };
      socket.destroy();
      resolve(result);
    });
    socket.on('error', (error: Error & { code?: string }) => resolve({ error: error.code ?? error.message }));
  });
}

function post(port: number, options: https.RequestOptions, body: unknown): Promise<{ status: number; json: { response: { uid: string; allowed: boolean } } }> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = https.request(
      { host: '127.0.0.1', port, servername: 'localhost', path: '/validate', method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }, ...options },
      (res) => {
        let text = '';
        res.on('data', (chunk) => { text += chunk; });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** Replaces the serving pair (same CA, as a renewal does) and waits until a new connection presents it. */
async function rotateServingCertificate(started: Started): Promise<void> {
  const ca = { cert: started.ca, key: await readFile(join(started.certDir, 'ca.key'), 'utf8') };
  const next = await issueServingCertificate({ serviceName: 'mesh-admission', namespace: 'mesh-admission', validityDays: 30 }, ca);
  await writeFile(join(started.certDir, 'tls.key'), next.key);
  await writeFile(join(started.certDir, 'tls.crt'), next.cert);
  const expected = new X509Certificate(next.cert).fingerprint256;
  for (let attempt = 0; attempt < 100; attempt++) {
    const seen = await handshake(started.server.webhookPort, { rejectUnauthorized: false });
    if (seen.fingerprint === expected) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('the new certificate was never served');
}

async function assertModernTlsOnly(t: Test, port: number, ca: string, when: string, client: tls.ConnectionOptions = {}): Promise<void> {
  const modern = await handshake(port, { ca, ...client, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256' });
  t.match(modern.cipher, /^TLS_ECDHE_(ECDSA|RSA)_WITH_AES_128_GCM_SHA256$/, `${when}: an AEAD suite with forward secrecy is accepted`);
  const tls13 = await handshake(port, { ca, ...client, minVersion: 'TLSv1.3' });
  t.match(tls13.cipher, /^TLS_/, `${when}: TLS 1.3 is accepted`);
  for (const cipher of ['AES128-SHA', 'AES256-SHA256', 'ECDHE-ECDSA-AES128-SHA', 'ECDHE-RSA-AES128-SHA', 'AES128-GCM-SHA256']) {
    const outcome = await handshake(port, { ca, ...client, maxVersion: 'TLSv1.2', ciphers: cipher });
    t.ok(outcome.error, `${when}: ${cipher} is refused (${outcome.error ?? outcome.cipher})`);
  }
  const old = await handshake(port, { ca, ...client, minVersion: 'TLSv1', maxVersion: 'TLSv1.1' });
  t.ok(old.error, `${when}: TLS 1.1 is refused (${old.error ?? old.cipher})`);
}

t.test('only TLS 1.2+ with modern ciphers, before and after a certificate reload', async (t) => {
  const s = await started(t);
  await assertModernTlsOnly(t, s.server.webhookPort, s.ca, 'at start');
  // setSecureContext() replaces every TLS option it is not given: a reload used to fall back
  // to Node's default cipher list, which includes AES128-SHA.
  await rotateServingCertificate(s);
  await assertModernTlsOnly(t, s.server.webhookPort, s.ca, 'after reload');
});

// ---------------------------------------------------------------------------------------------
// Client certificates
// ---------------------------------------------------------------------------------------------

async function clientCertificate(ca: { cert: string; key: string }, commonName: string): Promise<{ cert: string; key: string }> {
  const now = Date.now();
  const result = await generate([{ name: 'commonName', value: commonName }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(now - 60_000),
    notAfterDate: new Date(now + 86_400_000),
    ca: { cert: ca.cert, key: ca.key },
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', clientAuth: true },
    ],
  });
  return { cert: result.cert, key: result.private };
}

t.test('--client-ca-file: the API server must present a certificate signed by that CA', async (t) => {
  const clientCa = await generateCertificateAuthority({ commonName: 'kube-apiserver-client-ca', validityDays: 2 });
  const otherCa = await generateCertificateAuthority({ commonName: 'someone-else', validityDays: 2 });
  const dir = await tempDir(t, 'client-ca-');
  await writeFile(join(dir, 'client-ca.crt'), clientCa.cert);
  const good = await clientCertificate(clientCa, 'kube-apiserver');
  const stranger = await clientCertificate(otherCa, 'kube-apiserver');
  const s = await started(t, { 'client-ca-file': join(dir, 'client-ca.crt') });
  const port = s.server.webhookPort;

  const assertEnforced = async (when: string) => {
    await t.rejects(post(port, { ca: s.ca }, review({ uid: 'anon' })), `${when}: a client without a certificate is refused`);
    await t.rejects(post(port, { ca: s.ca, cert: stranger.cert, key: stranger.key }, review({ uid: 'stranger' })), `${when}: a certificate from another CA is refused`);
    const served = await post(port, { ca: s.ca, cert: good.cert, key: good.key }, review({ uid: 'apiserver' }));
    t.equal(served.status, 200, `${when}: a certificate signed by the client CA is served`);
    t.equal(served.json.response.uid, 'apiserver');
  };
  await assertEnforced('at start');
  // A reload must keep the client CA (setSecureContext resets what it is not given).
  await rotateServingCertificate(s);
  await assertEnforced('after reload');
  await assertModernTlsOnly(t, port, s.ca, 'with client certificates', { cert: good.cert, key: good.key });
});

t.test('timeouts and the client CA are settings, from flags, environment and file', async (t) => {
  t.equal(DEFAULT_CONFIG.headersTimeoutMs, 10_000);
  t.equal(DEFAULT_CONFIG.requestTimeoutMs, 10_000);
  t.equal(DEFAULT_CONFIG.clientCaFile, undefined);
  const fromEnv = buildConfig({ env: { MESH_ADMISSION_HEADERS_TIMEOUT_MS: '2500', MESH_ADMISSION_CLIENT_CA_FILE: '/etc/ca/ca.crt' } });
  t.equal(fromEnv.headersTimeoutMs, 2500);
  t.equal(fromEnv.clientCaFile, '/etc/ca/ca.crt');
  const fromFile = buildConfig({ file: { path: 'c.yaml', text: 'headersTimeoutMs: 700\nclientCaFile: /x/ca.pem\n' } });
  t.equal(fromFile.headersTimeoutMs, 700);
  t.equal(fromFile.clientCaFile, '/x/ca.pem');
  t.equal(buildConfig({ flags: { 'headers-timeout-ms': '300' } }).headersTimeoutMs, 300);
  t.throws(() => buildConfig({ flags: { 'headers-timeout-ms': '0' } }), /invalid setting "--headers-timeout-ms": must be a positive integer/);
  t.throws(() => buildConfig({ env: { MESH_ADMISSION_CLIENT_CA_FILE: ' ' } }), /MESH_ADMISSION_CLIENT_CA_FILE/);
});

// ---------------------------------------------------------------------------------------------
// Logs
// ---------------------------------------------------------------------------------------------

t.test('the log of a serve run holds names and decisions, never keys, certificates or object contents', async (t) => {
  const certDir = await tempDir(t, 'log-hygiene-');
  const child = spawn(process.execPath, ['src/cli.ts', 'serve', '--port', '0', '--probe-port', '0', '--host', '127.0.0.1', '--probe-host', '127.0.0.1', '--cert-dir', certDir, '--log-level', 'debug'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => { child.kill('SIGKILL'); });
  let output = '';
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  const logs = followServeLogs(child);
  const waitFor = (match: (line: Record<string, unknown>) => boolean) => logs.waitFor(match, 10_000);
  const { webhookPort } = await logs.serving(10_000);
  const ca = await readFile(join(certDir, 'ca.crt'), 'utf8');
  const key = await readFile(join(certDir, 'tls.key'), 'utf8');
  const caKey = await readFile(join(certDir, 'ca.key'), 'utf8');
  const options = { ca };

  // Markers that appear only inside object contents, never in a name.
  const secretPort = 'zz-secret-port-name';
  const annotated = (object: ReturnType<typeof service>) => ({ ...object, metadata: { ...object.metadata, annotations: { note: 'ANNOTATION-SECRET-VALUE' } } });
  const denied = await post(webhookPort, options, review({ uid: 'uid-denied', object: annotated(service('svc-denied', [{ name: secretPort, port: 12345 }])) }));
  t.equal(denied.json.response.allowed, false);
  const mutated = await post(webhookPort, { ...options, path: '/mutate' }, review({ uid: 'uid-mutated', object: annotated(service('svc-mutated', [{ name: 'web', port: 8080, appProtocol: undefined }, { name: 'metrics-zz-secret', port: 9102 }])) }));
  t.equal(mutated.status, 200);
  const labelled = await post(webhookPort, { ...options, path: '/mutate' }, review({ uid: 'uid-ns', kind: 'Namespace', namespace: '', object: namespace('team-log', { 'label-secret': 'LABEL-SECRET-VALUE' }) }));
  t.equal(labelled.status, 200);
  // A request error, with contents in the body.
  const broken = await new Promise<number>((resolve, reject) => {
    const payload = `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"BODY-SECRET-VALUE",`;
    const req = https.request({ host: '127.0.0.1', port: webhookPort, servername: 'localhost', ca, path: '/validate', method: 'POST', agent: false, headers: { 'content-type': 'application/json' } }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)); });
    req.on('error', reject);
    req.end(payload);
  });
  t.equal(broken, 400);

  // A certificate reload, then unusable files (an error that must not quote them).
  const next = await issueServingCertificate({ serviceName: 'mesh-admission', namespace: 'mesh-admission', validityDays: 30 }, { cert: ca, key: caKey });
  await writeFile(join(certDir, 'tls.key'), next.key);
  await writeFile(join(certDir, 'tls.crt'), next.cert);
  await waitFor((l) => l['msg'] === 'serving certificate reloaded');
  await writeFile(join(certDir, 'tls.crt'), `-----BEGIN CERTIFICATE-----\nTUlJQ0VSVC1TRUNSRVQ=\n-----END CERTIFICATE-----\n`);
  await waitFor((l) => typeof l['msg'] === 'string' && (l['msg'] as string).startsWith('refused the new certificate files'));

  child.kill('SIGTERM');
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  t.equal(code, 0);

  const log = output;
  t.notMatch(log, /-----BEGIN/, 'no PEM block');
  t.notMatch(log, /PRIVATE KEY/, 'no private key');
  for (const [label, pem] of [['serving key', key], ['CA key', caKey], ['new serving key', next.key], ['new certificate', next.cert], ['CA certificate', ca]] as const) {
    const bodyLines = pem.split('\n').filter((line) => line.length >= 16 && !line.startsWith('-----'));
    t.ok(bodyLines.length > 0);
    t.notOk(bodyLines.some((line) => log.includes(line)), `no line of the ${label}`);
  }
  t.notOk(log.includes('TUlJQ0VSVC1TRUNSRVQ'), 'not the corrupt file content either');
  for (const marker of [secretPort, 'zz-secret', 'ANNOTATION-SECRET-VALUE', 'LABEL-SECRET-VALUE', 'BODY-SECRET-VALUE', '12345', '9102']) {
    t.notOk(log.includes(marker), `object content ${marker} is not logged`);
  }

  const admissions = logs.lines.filter((l) => l['msg'] === 'admission');
  t.same(admissions.map((l) => [l['uid'], l['decision']]).filter(([uid]) => uid !== 'uid-allowed'), [['uid-denied', 'denied'], ['uid-mutated', 'mutated'], ['uid-ns', 'mutated']]);
  const allowedKeys = new Set(['level', 'time', 'pid', 'hostname', 'service', 'reqId', 'msg', 'webhook', 'uid', 'kind', 'namespace', 'name', 'operation', 'dryRun', 'decision', 'rules', 'durationMs']);
  for (const entry of admissions) {
    t.same(Object.keys(entry).filter((k) => !allowedKeys.has(k)), [], `admission line ${String(entry['uid'])} has only names, decision and rules`);
  }
  t.match(admissions[0], { kind: 'Service', namespace: 'default', rules: ['port-protocol'] });
  t.ok(logs.lines.some((l) => l['msg'] === 'serving certificate reloaded'), 'the reload is logged');
});

/** Writes raw bytes on a connection and resolves with whatever comes back once it closes. */
function sendRaw(socket: net.Socket, bytes: string): Promise<string> {
  return new Promise((resolve) => {
    let answer = '';
    socket.on('data', (chunk: Buffer) => { answer += chunk.toString(); });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(answer));
    socket.write(bytes);
  });
}

t.test('at trace level a request the HTTP parser rejects is logged by size, never by its bytes (webhook and probe port)', async (t) => {
  const certDir = await tempDir(t, 'log-trace-');
  const child = spawn(process.execPath, ['src/cli.ts', 'serve', '--port', '0', '--probe-port', '0', '--host', '127.0.0.1', '--probe-host', '127.0.0.1', '--cert-dir', certDir, '--log-level', 'trace'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => { child.kill('SIGKILL'); });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  const logs = followServeLogs(child);
  const { webhookPort, probePort } = await logs.serving(10_000);
  const ca = await readFile(join(certDir, 'ca.crt'), 'utf8');

  // Content-Length together with chunked encoding is refused (request smuggling); the parser
  // error then carries everything it read: the headers and a 57 KB body.
  const marker = 'RAW-REQUEST-BYTES-';
  const request = `POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Note: HEADER-BYTES-MARKER\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n${marker.repeat(3200)}`;
  const tlsSocket = tls.connect({ host: '127.0.0.1', port: webhookPort, servername: 'localhost', ca, ALPNProtocols: ['http/1.1'] });
  await new Promise((resolve) => tlsSocket.once('secureConnect', resolve));
  t.match(await sendRaw(tlsSocket, request), /^HTTP\/1\.1 400/, 'the webhook port answers 400');
  t.match(await sendRaw(net.connect(probePort, '127.0.0.1'), request.replace('/validate', '/metrics')), /^HTTP\/1\.1 400/, 'the probe port answers 400');
  const clientErrors = () => logs.lines.filter((l) => l['msg'] === 'client error');
  await logs.waitFor(() => clientErrors().length >= 2, 10_000);

  child.kill('SIGTERM');
  t.equal(await new Promise<number | null>((resolve) => child.on('exit', resolve)), 0);
  // Neither as text nor as the byte values pino would print for a Buffer.
  const asBytes = (text: string) => [...Buffer.from(text)].join(',');
  t.notOk(output.includes(marker) || output.includes(asBytes(marker)), 'no byte of the request body is logged');
  t.notOk(output.includes('HEADER-BYTES-MARKER') || output.includes(asBytes('HEADER-BYTES-MARKER')), 'nor of its headers');
  const longest = Math.max(...output.split('\n').map((line) => line.length));
  t.ok(longest < 4096, `every log line is short (longest ${longest} characters)`);
  for (const line of clientErrors()) {
    t.match(line, { level: 10, err: { code: 'HPE_INVALID_TRANSFER_ENCODING' } }, 'the parser error is logged at trace, with its code');
    t.ok(Number((line['err'] as Record<string, unknown>)['rawPacketBytes']) >= 16_384, 'and the size of what it read');
  }
});

// ---------------------------------------------------------------------------------------------
// scripts/audit.sh: findings fail, a registry outage warns
// ---------------------------------------------------------------------------------------------

function audit(report: string, npmExitCode: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return tempDir(t, 'audit-').then(async (dir) => {
    const file = join(dir, 'report.json');
    await writeFile(file, report);
    return new Promise((resolve) => {
      const child = spawn('bash', ['scripts/audit.sh'], { env: { ...process.env, AUDIT_JSON_FILE: file, AUDIT_EXIT_CODE: String(npmExitCode) }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
      child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
      child.on('exit', (code) => resolve({ code, stdout, stderr }));
    });
  });
}

const auditReport = (counts: Record<string, number>, vulnerabilities: Record<string, unknown> = {}) =>
  JSON.stringify({ auditReportVersion: 2, vulnerabilities, metadata: { vulnerabilities: { info: 0, low: 0, moderate: 0, high: 0, critical: 0, ...counts }, dependencies: { prod: 120 } } });

t.test('scripts/audit.sh tells findings (exit 1) from a registry outage (WARNING, exit 0)', async (t) => {
  const clean = await audit(auditReport({ low: 1 }, { foo: { name: 'foo', severity: 'low', range: '<1.2.3', fixAvailable: true } }), 0);
  t.equal(clean.code, 0, 'no high or critical findings');
  t.match(clean.stdout, /no high or critical findings \(info 0, low 1, moderate 0, high 0, critical 0; 120 production dependencies\)/);

  const findings = await audit(auditReport({ high: 1, critical: 1 }, { bar: { name: 'bar', severity: 'high', range: '<2' }, baz: { name: 'baz', severity: 'critical', range: '*' } }), 1);
  t.equal(findings.code, 1, 'high and critical findings fail');
  t.match(findings.stdout, /2 high or critical finding\(s\)[\s\S]*high +bar \(<2\)[\s\S]*critical baz/);
  t.notMatch(findings.stdout, /WARNING/);

  for (const [label, report] of [
    ['DNS failure', JSON.stringify({ error: { code: 'ENOTFOUND', summary: 'request to https://registry.npmjs.org failed', detail: '' } })],
    ['connection refused', JSON.stringify({ error: { code: 'ECONNREFUSED', summary: 'connect ECONNREFUSED', detail: '' } })],
    ['HTTP 503 from the audit endpoint', JSON.stringify({ message: '503 Service Unavailable - POST https://registry.npmjs.org/-/npm/v1/security/advisories/bulk', statusCode: 503, uri: 'https://registry.npmjs.org/-/npm/v1/security/advisories/bulk', error: { summary: '', detail: '' } })],
  ] as const) {
    const outage = await audit(report, 1);
    t.equal(outage.code, 0, `${label}: not a failure`);
    t.match(outage.stdout, /^WARNING: npm audit could not run \(.+\); production dependencies were NOT checked/m, `${label}: a WARNING line`);
  }

  const broken = await audit('npm error code ENOLOCK\nnpm error audit This command requires an existing lockfile.\n', 1);
  t.equal(broken.code, 2, 'a broken audit setup is neither a pass nor an outage');
  t.match(broken.stderr, /not a registry outage[\s\S]*ENOLOCK/);
});
