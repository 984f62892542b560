/**
 * Does a /metrics flood on the probe port slow the webhook down? Against the built webhook
 * (loopback only): a steady webhook load (one keep-alive HTTP/1.1 client, a request every
 * 5 ms) is measured alone, then while a second client asks the probe port for /metrics
 * FLOOD_RATE times a second (default 1,000) over 20 keep-alive connections. Prints the
 * webhook's p50/p99 in both phases and how many /metrics answers the flood got.
 *
 *   npm run build && node bench/probe-flood.ts
 *   PROBE_FLOOD_CLI=path/to/cli.ts node bench/probe-flood.ts   (another build of the server)
 *
 * Bounded: two phases of FLOOD_SECONDS (default 8) each, then the server is stopped.
 */
import https from 'node:https';
import path from 'node:path';
import autocannon from 'autocannon';
import { percentile } from './load.ts';
import { nextShot, REPO_ROOT, send, sleep, startWebhook } from './soak-lib.ts';

const SECONDS = Number(process.env['FLOOD_SECONDS'] ?? 8);
const RATE = Number(process.env['FLOOD_RATE'] ?? 1000);
const WEBHOOK_INTERVAL_MS = 5;
const cli = process.env['PROBE_FLOOD_CLI'] ?? path.join(REPO_ROOT, 'dist', 'cli.js');

/** Sends one admission every WEBHOOK_INTERVAL_MS for `seconds`; the sorted latencies and failures. */
async function webhookLoad(port: number, ca: string, seconds: number): Promise<{ latencies: number[]; failed: number }> {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  const latencies: number[] = [];
  let failed = 0;
  const end = performance.now() + seconds * 1000;
  for (let i = 0; performance.now() < end; i++) {
    const next = performance.now() + WEBHOOK_INTERVAL_MS;
    const result = await send(port, ca, agent, nextShot(i));
    if (result.ok) latencies.push(result.ms);
    else failed++;
    const wait = next - performance.now();
    if (wait > 0) await sleep(wait);
  }
  agent.destroy();
  return { latencies: latencies.sort((a, b) => a - b), failed };
}

function flood(probePort: number, seconds: number): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon({ url: `http://127.0.0.1:${probePort}/metrics`, connections: 20, overallRate: RATE, duration: seconds, timeout: 10 }, (error, result) =>
      error ? reject(error) : resolve(result),
    );
  });
}

const webhook = await startWebhook([], cli);
try {
  await webhookLoad(webhook.webhookPort, webhook.ca, 1); // warm-up
  const alone = await webhookLoad(webhook.webhookPort, webhook.ca, SECONDS);
  const [flooded, metrics] = await Promise.all([webhookLoad(webhook.webhookPort, webhook.ca, SECONDS), flood(webhook.probePort, SECONDS)]);
  const row = (name: string, run: { latencies: number[]; failed: number }) =>
    `| ${name} | ${run.latencies.length} | ${run.failed} | ${percentile(run.latencies, 50).toFixed(2)} | ${percentile(run.latencies, 99).toFixed(2)} |`;
  console.log(`server: ${path.relative(process.cwd(), cli) || cli}`);
  console.log('| webhook load (a request every 5 ms) | answered | failed | p50 ms | p99 ms |');
  console.log('|---|---:|---:|---:|---:|');
  console.log(row('alone', alone));
  console.log(row(`during a /metrics flood of ${RATE}/s`, flooded));
  console.log(`/metrics flood: ${metrics.requests.total} requests (${(metrics.requests.total / SECONDS).toFixed(0)}/s), 2xx ${metrics['2xx']}, non-2xx ${metrics.non2xx}, errors ${metrics.errors}, p50 ${metrics.latency.p50} ms`);
} finally {
  webhook.child.kill('SIGTERM');
  await webhook.exited;
}
