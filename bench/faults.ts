/**
 * Faults under load, against the built webhook (`node dist/cli.js serve`, loopback only):
 *
 * 1. Certificates replaced mid-load — by atomic rename (what `serve` and cert-manager do), by
 *    a Kubernetes Secret-style `..data` symlink swap, and as a corrupt file written in place
 *    (ignored; the current pair stays) — with 0 failed requests, and new connections
 *    presenting each new certificate soon after.
 * 2. SIGTERM mid-load: readiness goes false first, requests in flight complete, exit code 0.
 *
 *   npm run faults          (builds first)
 *
 * Prints what it measured; exit 1 when a criterion fails.
 */
import { mkdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import path from 'node:path';
import { issueServingCertificate } from '../src/tls/generate.ts';
import { writeCertificateFiles } from '../src/tls/certificate-files.ts';
import { latencySummary, loadLoop, newStats, nextShot, send, sleep, startWebhook, type Webhook } from './soak-lib.ts';

const CONNECTIONS = Number(process.env['FAULTS_CONNECTIONS'] ?? 32);
const failures: string[] = [];
const check = (ok: boolean, what: string) => {
  console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
};

async function newServingPair(webhook: Webhook) {
  const ca = { cert: webhook.ca, key: await readFile(path.join(webhook.certDir, 'ca.key'), 'utf8') };
  const pair = await issueServingCertificate({ serviceName: 'mesh-admission', namespace: 'mesh-admission', validityDays: 30 }, ca);
  return { ...pair, fingerprint: new X509Certificate(pair.cert).fingerprint256 };
}

/** Probes with a new connection each time until it presents `fingerprint`; the time it took. */
async function timeUntilServed(webhook: Webhook, fingerprint: string, since: number): Promise<number | undefined> {
  while (performance.now() - since < 10_000) {
    const result = await send(webhook.webhookPort, webhook.ca, false, nextShot(3));
    if (result.fingerprint === fingerprint) return performance.now() - since;
    await sleep(20);
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// 1. Certificate rotation under load
// ---------------------------------------------------------------------------------------------

console.log(`certificate rotation under load (${CONNECTIONS} keep-alive connections + a new connection every 20 ms)`);
{
  const webhook = await startWebhook(['--log-level', 'info']);
  const stats = newStats();
  const fresh = newStats();
  let stop = false;
  const load = loadLoop(webhook.webhookPort, webhook.ca, CONNECTIONS, () => stop, stats);
  // New connections throughout: each one's handshake must succeed whatever is on disk.
  const prober = (async () => {
    let i = 0;
    while (!stop) {
      const result = await send(webhook.webhookPort, webhook.ca, false, nextShot(i++));
      fresh.requests += 1;
      if (!result.ok) {
        fresh.errors += 1;
        fresh.problems.set(result.problem ?? '?', (fresh.problems.get(result.problem ?? '?') ?? 0) + 1);
      }
      await sleep(20);
    }
  })();
  await sleep(2000);

  // a) Atomic rename of both files, as `serve` itself and cert-manager's writers do.
  const renamed = await newServingPair(webhook);
  let since = performance.now();
  await writeCertificateFiles(webhook.certDir, { cert: renamed.cert, key: renamed.key });
  const renamedAfter = await timeUntilServed(webhook, renamed.fingerprint, since);
  check(renamedAfter !== undefined, `atomic rename: new connections present the new certificate after ${renamedAfter?.toFixed(0)} ms`);
  await sleep(1000);

  // b) A Secret volume update: kubelet writes a new timestamped directory and swaps the
  //    `..data` symlink that tls.crt and tls.key point through.
  const swapped = await newServingPair(webhook);
  const first = path.join(webhook.certDir, '..2024_01_01_00_00_00.000000001');
  await mkdir(first);
  await writeFile(path.join(first, 'tls.crt'), renamed.cert);
  await writeFile(path.join(first, 'tls.key'), renamed.key);
  await symlink(path.basename(first), path.join(webhook.certDir, '..data_tmp'));
  await rename(path.join(webhook.certDir, '..data_tmp'), path.join(webhook.certDir, '..data'));
  for (const file of ['tls.crt', 'tls.key']) {
    await symlink(path.join('..data', file), path.join(webhook.certDir, `${file}.link`));
    await rename(path.join(webhook.certDir, `${file}.link`), path.join(webhook.certDir, file));
  }
  await sleep(1000);
  const second = path.join(webhook.certDir, '..2024_01_01_00_00_00.000000002');
  await mkdir(second);
  await writeFile(path.join(second, 'tls.crt'), swapped.cert);
  await writeFile(path.join(second, 'tls.key'), swapped.key);
  since = performance.now();
  await symlink(path.basename(second), path.join(webhook.certDir, '..data_tmp'));
  await rename(path.join(webhook.certDir, '..data_tmp'), path.join(webhook.certDir, '..data'));
  await rm(first, { recursive: true });
  const swappedAfter = await timeUntilServed(webhook, swapped.fingerprint, since);
  check(swappedAfter !== undefined, `..data symlink swap: new connections present the new certificate after ${swappedAfter?.toFixed(0)} ms`);
  await sleep(1000);

  // c) A corrupt certificate written in place: ignored, the current pair stays in use; a
  //    valid pair written afterwards is picked up.
  await rename(path.join(webhook.certDir, 'tls.crt'), path.join(webhook.certDir, 'tls.crt.bak'));
  await writeFile(path.join(webhook.certDir, 'tls.crt'), '-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n');
  await sleep(1000);
  const during = await send(webhook.webhookPort, webhook.ca, false, nextShot(7));
  check(during.ok && during.fingerprint === swapped.fingerprint, 'corrupt tls.crt: ignored, the current certificate is still served');
  const restored = await newServingPair(webhook);
  since = performance.now();
  await rm(path.join(webhook.certDir, 'tls.crt.bak'));
  await writeCertificateFiles(webhook.certDir, { cert: restored.cert, key: restored.key });
  const restoredAfter = await timeUntilServed(webhook, restored.fingerprint, since);
  check(restoredAfter !== undefined, `after the corrupt file, a valid pair is picked up after ${restoredAfter?.toFixed(0)} ms`);
  await sleep(1000);

  stop = true;
  await Promise.all([load, prober]);
  const logged = webhook.lines();
  const reloads = logged.filter((l) => l['msg'] === 'serving certificate reloaded').length;
  const ignored = logged.filter((l) => String(l['msg']).startsWith('refused the new certificate files')).length;
  console.log(`  keep-alive load: ${stats.requests} requests, ${stats.errors} errors; ${latencySummary(stats)}`);
  console.log(`  new connections: ${fresh.requests} requests, ${fresh.errors} errors; reloads logged ${reloads}, unusable files ignored ${ignored}`);
  check(stats.errors === 0, `0 failed keep-alive requests during rotations ${stats.errors ? JSON.stringify(Object.fromEntries(stats.problems)) : ''}`);
  check(fresh.errors === 0, `0 failed new-connection requests during rotations ${fresh.errors ? JSON.stringify(Object.fromEntries(fresh.problems)) : ''}`);
  check(reloads >= 3 && ignored >= 1, 'each rotation logged as a reload, the corrupt file as ignored');
  webhook.child.kill('SIGTERM');
  await webhook.exited;
}

// ---------------------------------------------------------------------------------------------
// 2. SIGTERM under load
// ---------------------------------------------------------------------------------------------

console.log(`\nSIGTERM under load (${CONNECTIONS} keep-alive connections + 8 requests held in flight)`);
{
  const webhook = await startWebhook(['--log-level', 'info']);
  const stats = newStats();
  let stop = false;
  let signalled = Infinity;
  // Load requests sent before the signal that failed: each was in flight when it came.
  const failedInFlight = new Map<string, number>();
  const load = loadLoop(webhook.webhookPort, webhook.ca, CONNECTIONS, () => stop, stats, (startedAt, result) => {
    if (!result.ok && startedAt < signalled) failedInFlight.set(result.problem ?? '?', (failedInFlight.get(result.problem ?? '?') ?? 0) + 1);
  });
  await sleep(2000);

  // Requests in flight when the signal arrives: headers and half the body sent.
  const held = Array.from({ length: 8 }, (_, i) => {
    const shot = nextShot(i);
    let finish = () => undefined as void;
    const answer = new Promise<{ status: number; uid?: string; error?: string }>((resolve) => {
      const req = https.request(
        { host: '127.0.0.1', port: webhook.webhookPort, servername: 'localhost', ca: webhook.ca, agent: false, path: shot.path, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(shot.body) } },
        (res) => {
          let text = '';
          res.on('data', (chunk) => { text += chunk; });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, uid: (JSON.parse(text) as { response?: { uid?: string } }).response?.uid }));
        },
      );
      req.on('error', (error: Error & { code?: string }) => resolve({ status: 0, error: error.code ?? error.message }));
      req.write(shot.body.slice(0, 40));
      finish = () => { req.end(shot.body.slice(40)); };
    });
    return { shot, answer, finish: () => finish() };
  });
  await sleep(300);

  const before = stats.requests;
  const beforeErrors = stats.errors;
  signalled = performance.now();
  webhook.child.kill('SIGTERM');
  let notReadyAfter: number | undefined;
  let readyProbes = 0;
  while (notReadyAfter === undefined && performance.now() - signalled < 5000) {
    const status = await fetch(`http://127.0.0.1:${webhook.probePort}/readyz`).then((r) => r.status, () => 0);
    if (status === 200) readyProbes += 1;
    else notReadyAfter = performance.now() - signalled;
    await sleep(5);
  }
  check(notReadyAfter !== undefined, `readiness false ${notReadyAfter?.toFixed(0)} ms after SIGTERM (${readyProbes} probes still ready before)`);
  await sleep(300);
  for (const h of held) h.finish();
  const answers = await Promise.all(held.map((h) => h.answer));
  const completed = answers.filter((a, i) => a.status === 200 && a.uid === held[i]?.shot.uid).length;
  check(completed === held.length, `${completed}/${held.length} requests in flight at SIGTERM completed with 200 and their uid ${completed < held.length ? JSON.stringify(answers) : ''}`);
  const code = await webhook.exited;
  const exitAfter = performance.now() - signalled;
  check(code === 0, `exit code ${code}, ${exitAfter.toFixed(0)} ms after SIGTERM`);
  stop = true;
  await load;
  console.log(`  load before SIGTERM: ${before} requests, ${beforeErrors} errors; after it, ${stats.requests - before} more, of which ${stats.errors - beforeErrors} refused or reset (expected once the listener closes: ${JSON.stringify(Object.fromEntries(stats.problems))})`);
  check(beforeErrors === 0, '0 failed requests before the signal');
  const inFlightFailures = [...failedInFlight.values()].reduce((a, b) => a + b, 0);
  check(inFlightFailures === 0, `0 failed load requests that were sent before the signal ${inFlightFailures ? JSON.stringify(Object.fromEntries(failedInFlight)) : ''}`);
  const log = webhook.lines().map((l) => l['msg']);
  check(log.includes('stopped'), 'the server logged "stopped"');
}

if (failures.length > 0) {
  console.error(`\nfaults FAILED: ${failures.join('; ')}`);
  process.exitCode = 1;
} else {
  console.log('\nfaults passed');
}
