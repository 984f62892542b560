/**
 * Soak: the built webhook (`node dist/cli.js serve`, a child process on loopback) under
 * constant high-concurrency load. Passes when no request fails, RSS grows less than 10 %
 * between the warm-up mark and the end, and reports the server's event-loop delay p99 (its
 * own `nodejs_eventloop_lag_p99_seconds`, measured with perf_hooks.monitorEventLoopDelay).
 *
 *   npm run soak                      # 60 s, 64 connections (builds first)
 *   SOAK_SECONDS=20 SOAK_CONNECTIONS=32 node bench/soak.ts
 *
 * Prints a summary and a JSON line; exit 1 when a criterion fails.
 */
import { latencySummary, loadLoop, newStats, rssBytes, scrape, sleep, startWebhook } from './soak-lib.ts';

const SECONDS = Number(process.env['SOAK_SECONDS'] ?? 60);
const CONNECTIONS = Number(process.env['SOAK_CONNECTIONS'] ?? 64);
/** RSS is compared from here (a third of the run, 20 s of 60) to the end: after warm-up. */
const BASELINE_AT = SECONDS / 3;
const MAX_RSS_GROWTH = 0.1;

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

const webhook = await startWebhook(['--log-level', 'info']);
console.log(`soak: ${SECONDS} s at ${CONNECTIONS} connections against pid ${webhook.pid} (https://127.0.0.1:${webhook.webhookPort})`);

const stats = newStats();
const started = performance.now();
const elapsed = () => (performance.now() - started) / 1000;
const load = loadLoop(webhook.webhookPort, webhook.ca, CONNECTIONS, () => elapsed() >= SECONDS, stats);

const SAMPLE_EVERY_S = 5;
const NEW_SPACE = 'nodejs_heap_space_size_total_bytes{space="new"}';
interface Sample {
  readonly at: number;
  readonly rss: number;
  readonly requests: number;
  readonly lagP99: number | undefined;
  readonly heapUsed: number | undefined;
  readonly heapTotal: number | undefined;
}
const samples: Sample[] = [];
let baseline: Sample | undefined;
const takeSample = async (): Promise<Sample> => {
  // Each scrape resets prom-client's event-loop histogram: every sample covers its interval.
  const metrics = await scrape(webhook.probePort, ['nodejs_eventloop_lag_p99_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_heap_size_total_bytes', 'nodejs_external_memory_bytes', NEW_SPACE]);
  const lagP99 = metrics['nodejs_eventloop_lag_p99_seconds'];
  const sample = { at: elapsed(), rss: rssBytes(webhook.pid), requests: stats.requests, lagP99, heapUsed: metrics['nodejs_heap_size_used_bytes'], heapTotal: metrics['nodejs_heap_size_total_bytes'] };
  samples.push(sample);
  if (!baseline && sample.at >= BASELINE_AT - 0.5) baseline = sample;
  const newSpace = metrics[NEW_SPACE];
  const heap = sample.heapUsed === undefined || sample.heapTotal === undefined ? '?' : `${mib(sample.heapUsed)} / ${mib(sample.heapTotal)} (new space ${newSpace === undefined ? '?' : mib(newSpace)}), external ${mib(metrics['nodejs_external_memory_bytes'] ?? 0)}`;
  console.log(`  ${sample.at.toFixed(0).padStart(3)} s  rss ${mib(sample.rss)}  heap ${heap}  requests ${sample.requests}  errors ${stats.errors}  loop p99 ${lagP99 === undefined ? '?' : `${(lagP99 * 1000).toFixed(1)} ms`}`);
  return sample;
};
for (let next = SAMPLE_EVERY_S; next < SECONDS; next += SAMPLE_EVERY_S) {
  await sleep(Math.max(0, next * 1000 - (performance.now() - started)));
  await takeSample();
}
await sleep(Math.max(0, SECONDS * 1000 - (performance.now() - started) - 100));
// The end sample, taken while the load still runs.
const end = await takeSample();
await load;
const base = baseline ?? end;
const growth = (end.rss - base.rss) / base.rss;
const steady = samples.filter((s) => s.at >= BASELINE_AT && s.lagP99 !== undefined).map((s) => s.lagP99 as number);
const lagP99Max = steady.length > 0 ? Math.max(...steady) : undefined;
const throughput = (end.requests - base.requests) / Math.max(1, end.at - base.at);

webhook.child.kill('SIGTERM');
const code = await webhook.exited;

const summary = {
  seconds: SECONDS,
  connections: CONNECTIONS,
  requests: stats.requests,
  errors: stats.errors,
  problems: Object.fromEntries(stats.problems),
  requestsPerSecond: Math.round(throughput),
  latencyMs: { p50: stats.latency.percentile(50) / 1000, p99: stats.latency.percentile(99) / 1000, max: stats.latency.max / 1000 },
  rss: { atBaselineMiB: +(base.rss / 2 ** 20).toFixed(1), atEndMiB: +(end.rss / 2 ** 20).toFixed(1), baselineAtSeconds: Math.round(base.at), growthPercent: +(growth * 100).toFixed(2) },
  heapUsedMiB: { atBaseline: base.heapUsed === undefined ? null : +(base.heapUsed / 2 ** 20).toFixed(1), atEnd: end.heapUsed === undefined ? null : +(end.heapUsed / 2 ** 20).toFixed(1) },
  eventLoopDelayP99Ms: lagP99Max === undefined ? null : +(lagP99Max * 1000).toFixed(2),
  exitCode: code,
};
console.log(`\nrequests ${stats.requests}, errors ${stats.errors}, ${summary.requestsPerSecond} req/s after warm-up; latency ${latencySummary(stats)}`);
console.log(`RSS ${mib(base.rss)} at ${base.at.toFixed(0)} s → ${mib(end.rss)} at ${end.at.toFixed(0)} s: ${(growth * 100).toFixed(2)} % (limit ${MAX_RSS_GROWTH * 100} %)`);
console.log(`server event-loop delay p99 (worst ${SAMPLE_EVERY_S} s window after warm-up): ${summary.eventLoopDelayP99Ms ?? '?'} ms; exit code after SIGTERM ${code}`);
console.log(JSON.stringify(summary));

const failures = [
  stats.errors > 0 ? `${stats.errors} failed requests: ${JSON.stringify(summary.problems)}` : undefined,
  growth >= MAX_RSS_GROWTH ? `RSS grew ${(growth * 100).toFixed(1)} %` : undefined,
  code !== 0 ? `exit code ${code} after SIGTERM` : undefined,
].filter((f) => f !== undefined);
if (failures.length > 0) {
  console.error(`soak FAILED: ${failures.join('; ')}`);
  process.exitCode = 1;
} else {
  console.log('soak passed');
}
