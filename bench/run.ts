/**
 * `npm run bench` (through scripts/bench.sh, which builds first): the webhook's production build
 * against a bare Fastify echo with the same TLS settings, in one run, driven alternately
 * (webhook, echo, webhook, echo …): first HTTP/2 the way the API server calls (bench/h2-comparison.ts,
 * with the image's Node settings), then the same request mix over HTTP/1.1 (autocannon) and
 * HTTP/2 (h2load); then start-up time, per-object cost and the latency added to `create` by a
 * real API server. Prints markdown to stdout, progress to stderr. Bounded: stops itself after
 * BENCH_DEADLINE_S (default 290) seconds.
 *
 * Settings (environment): BENCH_H2_SECONDS (run of the HTTP/2 comparison, default 5),
 * BENCH_H2_ROUNDS (default 3), BENCH_SECONDS (window of the mix, default 4), BENCH_ROUNDS
 * (default 3), BENCH_CONCURRENCY (requests in flight in the mix, default 32), BENCH_SKIP (comma
 * list of micro,judge,h2,load,startup,apiserver), BENCH_SERVER_NODE_ARGS (node flags for both servers
 * in the mix; default the image's NODE_OPTIONS, empty for none).
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runApiServer, type ApiServerResult } from './apiserver.ts';
import { postHttp1, postHttp2, type Answer } from './clients.ts';
import { comparisonTables, runComparison } from './h2-comparison.ts';
import { loadRequests, REQUEST_KINDS, type BenchRequest, type RequestKind } from './fixtures.ts';
import { runAutocannon, runH2load } from './load.ts';
import { aggregate, check, fmt, type WindowResult } from './summary.ts';
import { microTable, runMicro, type MicroResult } from './micro.ts';
import { judgeTable, runJudgeTimeAsServer } from './judge-time.ts';
import { cpuTimeOf, DIST_CLI, freePort, sampleMemory, SERVER_NODE_ARGS, spawnEcho, spawnWebhook, waitReady } from './processes.ts';
import { runStartup, type StartupResult } from './startup.ts';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 4);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const CONCURRENCY = Number(process.env['BENCH_CONCURRENCY'] ?? 32);
const SKIP = new Set((process.env['BENCH_SKIP'] ?? '').split(',').filter(Boolean));
const DEADLINE_S = Number(process.env['BENCH_DEADLINE_S'] ?? 290);
const H2_SECONDS = Number(process.env['BENCH_H2_SECONDS'] ?? 5);
const H2_ROUNDS = Number(process.env['BENCH_H2_ROUNDS'] ?? 3);

const MiB = 1024 * 1024;
/** `resources.requests.memory` of the chart, in Mi. */
const CHART_MEMORY_REQUEST_MI = Number(
  /^(\d+)Mi$/.exec((parseYaml(readFileSync(new URL('../charts/mesh-admission/values.yaml', import.meta.url), 'utf8')) as { resources: { requests: { memory: string } } }).resources.requests.memory)?.[1],
);
const progress = (line: string) => process.stderr.write(`[bench +${(performance.now() / 1000).toFixed(1)}s] ${line}\n`);

const deadline = setTimeout(() => {
  progress(`deadline of ${DEADLINE_S} s reached: stopping`);
  process.exit(2);
}, DEADLINE_S * 1000);
deadline.unref();

// ---------------------------------------------------------------------------------------------
// Correctness first: a fast wrong answer is no result.

const EXPECTED: Record<RequestKind, (answer: Answer) => boolean> = {
  'validate-good-service': (a) => a.body.response?.allowed === true && a.body.response.patch === undefined,
  'validate-bad-service': (a) => a.body.response?.allowed === false && a.body.response.status?.code === 403,
  'mutate-service': (a) => a.body.response?.allowed === true && typeof a.body.response.patch === 'string',
  'mutate-namespace': (a) => a.body.response?.allowed === true && typeof a.body.response.patch === 'string',
};

async function preflight(name: string, port: number, ca: string, requests: readonly BenchRequest[], isEcho: boolean): Promise<void> {
  for (const post of [postHttp1, postHttp2]) {
    for (const request of requests) {
      const answer = await post(port, ca, request);
      const uid = (JSON.parse(request.body) as { request: { uid: string } }).request.uid;
      const ok = answer.status === 200 && answer.body.response?.uid === uid && (isEcho ? answer.body.response.allowed === true : EXPECTED[request.kind](answer));
      if (!ok) throw new Error(`${name} answered ${request.kind} over ${post.name} wrongly: ${answer.status} ${JSON.stringify(answer.body).slice(0, 400)}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Load: webhook (A) and echo (B) alternately.

type Protocol = 'HTTP/1.1' | 'HTTP/2';
type Target = 'webhook' | 'echo';


interface LoadSummary {
  readonly protocol: Protocol;
  readonly rounds: Record<Target, WindowResult[]>;
}

interface LoadReport {
  readonly summaries: LoadSummary[];
  readonly webhookMemory: { maxRss: number; maxAnon: number; hwm: number };
  readonly echoMemory: { maxRss: number; maxAnon: number; hwm: number };
  readonly logLines: number;
  /** Log lines of admissions, by decision: plain allows must not appear at info level. */
  readonly logDecisions: Record<string, number>;
  readonly bodyBytes: Record<RequestKind, number>;
}

const DRIVERS: Record<Protocol, typeof runAutocannon> = { 'HTTP/1.1': runAutocannon, 'HTTP/2': runH2load };

async function runLoad(certDir: string, scratch: string): Promise<LoadReport> {
  const requests = loadRequests();
  const logFile = path.join(scratch, 'webhook.log');
  const [port, probePort] = [await freePort(), await freePort()];
  const webhook = spawnWebhook({ certDir, port, probePort, logFile });
  await waitReady(probePort, webhook, performance.now());
  const echo = await spawnEcho(certDir);
  try {
    const ca = await readFile(path.join(certDir, 'ca.crt'), 'utf8');
    await preflight('webhook', port, ca, requests, false);
    await preflight('echo', echo.port, ca, requests, true);
    const ports: Record<Target, number> = { webhook: port, echo: echo.port };
    const pids: Record<Target, number> = { webhook: webhook.pid, echo: echo.pid };
    const webhookMemory = sampleMemory(webhook.pid);
    const echoMemory = sampleMemory(echo.pid);
    const summaries: LoadSummary[] = [];
    for (const protocol of ['HTTP/1.1', 'HTTP/2'] as const) {
      const drive = DRIVERS[protocol];
      for (const target of ['webhook', 'echo'] as const) {
        progress(`${protocol} warm-up: ${target}`);
        await drive({ port: ports[target], requests, seconds: 2, concurrency: CONCURRENCY });
      }
      const rounds: Record<Target, WindowResult[]> = { webhook: [], echo: [] };
      for (let round = 1; round <= ROUNDS; round++) {
        for (const target of ['webhook', 'echo'] as const) {
          const cpuBefore = cpuTimeOf(pids[target]);
          const load = await drive({ port: ports[target], requests, seconds: SECONDS, concurrency: CONCURRENCY });
          const result = { ...load, cpuMicrosPerRequest: ((cpuTimeOf(pids[target]) - cpuBefore) * 1000) / load.requests };
          rounds[target].push(result);
          progress(
            `${protocol} round ${round} ${target}: ${result.rps.toFixed(0)} req/s, p50 ${result.p50.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms, ` +
              `${result.errors} errors, ${result.cpuMicrosPerRequest.toFixed(0)} µs CPU/request`,
          );
        }
      }
      summaries.push({ protocol, rounds });
    }
    const logText = await readFile(logFile, 'utf8');
    const logDecisions: Record<string, number> = {};
    for (const line of logText.split('\n')) {
      const decision = /"msg":"admission"/.test(line) ? /"decision":"(\w+)"/.exec(line)?.[1] : undefined;
      if (decision) logDecisions[decision] = (logDecisions[decision] ?? 0) + 1;
    }
    return {
      summaries,
      webhookMemory: webhookMemory.stop(),
      echoMemory: echoMemory.stop(),
      logLines: logText.split('\n').filter(Boolean).length,
      logDecisions,
      bodyBytes: Object.fromEntries(requests.map((r) => [r.kind, Buffer.byteLength(r.body)])) as Record<RequestKind, number>,
    };
  } finally {
    await echo.stop();
    await webhook.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Report

function machine(): string {
  const cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  return `${os.availableParallelism()} CPUs (nproc), ${cpuModel}, ${Math.round(os.totalmem() / 1024 ** 3)} GiB RAM, Node ${process.version}, ${os.type()} ${os.release()}`;
}

const loadavg = () => os.loadavg().map((value) => value.toFixed(2)).join(' / ');

function loadTables(report: LoadReport): { table: string; goals: string[] } {
  const lines = [
    '| protocol | server | req/s | p50 ms | p99 ms | errors | req/s ratio | p50 ratio | p99 ratio | server CPU/request | peak RSS |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const goals: string[] = [];
  for (const summary of report.summaries) {
    const webhook = aggregate(summary.rounds.webhook);
    const echo = aggregate(summary.rounds.echo);
    const rpsRatio = webhook.rps / echo.rps;
    const p50Ratio = webhook.p50 / echo.p50;
    const p99Ratio = webhook.p99 / echo.p99;
    lines.push(
      `| ${summary.protocol} | mesh-admission | ${fmt(webhook.rps, 0)} | ${fmt(webhook.p50)} | ${fmt(webhook.p99)} | ${webhook.errors} | **${fmt(rpsRatio)}** | ${fmt(p50Ratio)} | **${fmt(p99Ratio)}** | ${fmt(webhook.cpu, 0)} µs | ${fmt(report.webhookMemory.hwm / MiB, 1)} MiB |`,
      `| ${summary.protocol} | Fastify echo | ${fmt(echo.rps, 0)} | ${fmt(echo.p50)} | ${fmt(echo.p99)} | ${echo.errors} | 1 | 1 | 1 | ${fmt(echo.cpu, 0)} µs | ${fmt(report.echoMemory.hwm / MiB, 1)} MiB |`,
    );
    goals.push(
      `| ${summary.protocol} throughput ≥ 0.85 × echo | ${fmt(rpsRatio)} | ${check(rpsRatio >= 0.85)} |`,
      `| ${summary.protocol} p99 ≤ 2 × echo | ${fmt(p99Ratio)} | ${check(p99Ratio <= 2)} |`,
      `| ${summary.protocol} errors = 0 | ${webhook.errors} | ${check(webhook.errors === 0)} |`,
    );
  }
  goals.push(
    `| peak RSS under load < 100 MiB | ${fmt(report.webhookMemory.hwm / MiB, 1)} MiB (anonymous ${fmt(report.webhookMemory.maxAnon / MiB, 1)} MiB; echo ${fmt(report.echoMemory.hwm / MiB, 1)} MiB) | ${check(report.webhookMemory.hwm < 100 * MiB)} |`,
    // A pod above its memory request is among the first evicted when its node runs short.
    `| peak RSS under load ≤ the chart's memory request (${CHART_MEMORY_REQUEST_MI} Mi) | ${fmt(report.webhookMemory.hwm / MiB, 1)} MiB | ${check(report.webhookMemory.hwm <= CHART_MEMORY_REQUEST_MI * MiB)} |`,
    `| plain allows log nothing at info level | ${report.logDecisions['allowed'] ?? 0} lines | ${check((report.logDecisions['allowed'] ?? 0) === 0)} |`,
  );
  const perRound = ['', '<details><summary>per round (req/s, p50 / p99 ms)</summary>', '', '| protocol | round | mesh-admission | echo | ratio |', '|---|---:|---|---|---:|'];
  for (const summary of report.summaries) {
    summary.rounds.webhook.forEach((w, i) => {
      const e = summary.rounds.echo[i] as WindowResult;
      perRound.push(`| ${summary.protocol} | ${i + 1} | ${fmt(w.rps, 0)} (${fmt(w.p50)} / ${fmt(w.p99)}) | ${fmt(e.rps, 0)} (${fmt(e.p50)} / ${fmt(e.p99)}) | ${fmt(w.rps / e.rps)} |`);
    });
  }
  perRound.push('', '</details>');
  return { table: [...lines, ...perRound].join('\n'), goals };
}

function startupTable(results: readonly StartupResult[]): { table: string; goals: string[] } {
  const limit = (name: StartupResult['case']) => (name === 'existing certificates' ? 500 : 1500);
  return {
    table: [
      '| start-up (spawn → first 200 from /readyz) | median | all runs |',
      '|---|---:|---|',
      ...results.map((r) => `| ${r.case} | ${fmt(r.median, 0)} ms | ${r.samples.map((s) => fmt(s, 0)).join(', ')} ms |`),
    ].join('\n'),
    goals: results.map((r) => `| ready < ${limit(r.case) / 1000} s, ${r.case} | ${fmt(r.median, 0)} ms | ${check(r.median < limit(r.case))} |`),
  };
}

function microGoals(results: readonly MicroResult[]): string[] {
  const big = results.find((r) => r.object.startsWith('Service, 500 ports'));
  return big ? [`| 500-port Service evaluated + patched < 5 ms | ${fmt(big.median, 3)} ms | ${check(big.median < 5)} |`] : [];
}

function apiServerTable(result: ApiServerResult): { table: string; goals: string[] } {
  const { stats, addedByWebhook, addedByEcho } = result;
  if (result.skipped || !stats || addedByWebhook === undefined || addedByEcho === undefined) {
    return { table: `API server: skipped (${result.skipped ?? 'no result'})`, goals: [] };
  }
  return {
    table: [
      `| \`create\` Service through kube-apiserver ${result.version} (one at a time, rotating) | creates | median | p99 | added (median) |`,
      '|---|---:|---:|---:|---:|',
      `| no webhook called | ${result.perMode} | ${fmt(stats.none.median)} ms | ${fmt(stats.none.p99)} ms | |`,
      `| **mesh-admission** called (mutating + validating) | ${result.perMode} | ${fmt(stats.webhook.median)} ms | ${fmt(stats.webhook.p99)} ms | **${fmt(addedByWebhook)} ms** |`,
      `| Fastify echo called the same way (the floor) | ${result.perMode} | ${fmt(stats.echo.median)} ms | ${fmt(stats.echo.p99)} ms | ${fmt(addedByEcho)} ms |`,
      `| no webhook: \`mesh-admission policies\` (ValidatingAdmissionPolicies; Services already prefixed) | ${result.perMode} | ${fmt(stats.policies.median)} ms | ${fmt(stats.policies.p99)} ms | ${fmt(result.addedByPolicies ?? NaN)} ms |`,
      ...(result.bySubset
        ? [
            '',
            `Medians by kind of Service: already fine (no patch) — none ${fmt(result.bySubset.fine.none)}, mesh-admission ${fmt(result.bySubset.fine.webhook)}, echo ${fmt(result.bySubset.fine.echo)} ms; ` +
              `ports renamed (mesh-admission patches, the API server applies the patch and relays 3 warnings; the echo patches nothing) — none ${fmt(result.bySubset.renamed.none)}, mesh-admission ${fmt(result.bySubset.renamed.webhook)}, echo ${fmt(result.bySubset.renamed.echo)} ms.`,
          ]
        : []),
    ].join('\n'),
    goals: [`| < 2 ms median added per \`create\` (real API server) | ${fmt(addedByWebhook)} ms (echo: ${fmt(addedByEcho)} ms) | ${check(addedByWebhook < 2)} |`],
  };
}

async function main(): Promise<void> {
  await stat(DIST_CLI).catch(() => {
    throw new Error(`${DIST_CLI} is missing: run \`npm run build\` first (scripts/bench.sh does)`);
  });
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'mesh-admission-bench-'));
  const certDir = path.join(scratch, 'certs');
  const sections: string[] = [];
  const goals: string[] = [];
  const loadBefore = loadavg();
  try {
    sections.push(`Machine: ${machine()}. Load average (1/5/15 min) at start: ${loadBefore}. Extra node flags of both servers: ${SERVER_NODE_ARGS.join(' ') || 'none'}.`);
    if (!SKIP.has('micro')) {
      progress('per-object cost (handleValidate + handleMutate)');
      const micro = runMicro();
      sections.push('### Per-object cost: handleValidate + handleMutate (median of many iterations)', microTable(micro));
      goals.push(...microGoals(micro));
    }
    if (!SKIP.has('h2')) {
      progress(`HTTP/2 as the API server calls: ${H2_ROUNDS} rounds × ${H2_SECONDS} s per case and server`);
      const comparison = comparisonTables(await runComparison({ certDir, scratch, seconds: H2_SECONDS, rounds: H2_ROUNDS, progress }));
      sections.push('### As the API server calls: HTTP/2, the webhook next to a bare echo (same transport, same image settings, alternating)', comparison.table, '', comparison.notes);
      goals.push(...comparison.goals);
    }
    if (!SKIP.has('judge')) {
      progress('longest single judgement of large VirtualServices and Gateways');
      sections.push('### Longest single judgement: large VirtualServices and Gateways', judgeTable(runJudgeTimeAsServer()));
    }
    if (!SKIP.has('load')) {
      progress(`load: ${ROUNDS} rounds × ${SECONDS} s per server and protocol, ${CONCURRENCY} requests in flight`);
      const report = await runLoad(certDir, scratch);
      const { table, goals: loadGoals } = loadTables(report);
      const sizes = REQUEST_KINDS.map((kind) => `${kind} ${(report.bodyBytes[kind] / 1024).toFixed(1)} KiB`).join(', ');
      sections.push(
        '### Throughput and latency: mesh-admission vs a bare Fastify echo (same TLS, same machine, alternating)',
        table,
        '',
        `Request mix (equal parts): ${sizes}. HTTP/1.1: autocannon, ${CONCURRENCY} keep-alive connections, each cycling through the mix. ` +
          `HTTP/2: four h2load processes at once (one per request kind, one connection, ${Math.round(CONCURRENCY / 4)} streams each). ` +
          `${ROUNDS} rounds × ${SECONDS} s per server and protocol after a 2 s warm-up; the medians of the rounds are shown. ` +
          `Server CPU/request: user + system time of the server process (all threads, from /proc) over the window, per answered request, ` +
          `which other load on the machine disturbs far less than req/s. Peak RSS: VmHWM of the process over its whole life (start-up, warm-up, all rounds); of it, the anonymous part ` +
          `(V8 heap, buffers) peaked at ${fmt(report.webhookMemory.maxAnon / MiB, 1)} MiB for mesh-admission and ${fmt(report.echoMemory.maxAnon / MiB, 1)} MiB ` +
          `for the echo, the rest being mostly pages of the node binary itself. ` +
          `The webhook wrote ${report.logLines} log lines at info level; admissions by decision: ` +
          `${Object.entries(report.logDecisions).map(([decision, count]) => `${decision} ${count}`).join(', ') || 'none'} ` +
          `(one line per denial or mutation; plain allows, a quarter of the mix, log nothing).`,
      );
      goals.push(...loadGoals);
    } else {
      // Start-up needs a cert dir with certificates.
      const [port, probePort] = [await freePort(), await freePort()];
      const child = spawnWebhook({ certDir, port, probePort });
      await waitReady(probePort, child, performance.now());
      await child.stop();
    }
    if (!SKIP.has('startup')) {
      progress('start-up time');
      const startup = await runStartup(certDir);
      const { table, goals: startupGoals } = startupTable(startup);
      sections.push('### Start-up', table);
      goals.push(...startupGoals);
    }
    if (!SKIP.has('apiserver')) {
      progress('API server: create latency with and without the webhook');
      const result = await runApiServer({ certDir, log: (line) => progress(`  ${line}`) });
      const { table, goals: apiGoals } = apiServerTable(result);
      sections.push('### Latency added to `create` through a real API server', table);
      goals.push(...apiGoals);
    }
    sections.push(`Load average at end: ${loadavg()}.`);
    const goalTable = ['| goal | measured | met |', '|---|---:|:-:|', ...goals].join('\n');
    process.stdout.write(`${[...sections, '### Goals', goalTable].join('\n\n')}\n`);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

await main();
