/**
 * The webhook as the API server calls it, side by side with a bare echo in one run: HTTP/2 over
 * TLS (`h2load -c 4 -m 16`, streams alternating /validate and /mutate) with a 1–2 KB Service
 * AdmissionReview in two cases — a Service already ready for the mesh (every answer allowed, no
 * patch) and one with ports to rename (every answer a denial or a patch) — then the HTTP/1.1
 * mix (autocannon, 32 connections), and the peak RSS of both processes over all of it. Both
 * servers run with the container image's Node settings (NODE_ENV, NODE_OPTIONS from the
 * Dockerfile), fresh for this section so their peaks are this load's.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { postHttp2, type Answer } from './clients.ts';
import { H2_CASES, loadRequests, type H2Case } from './fixtures.ts';
import { runAutocannon, runH2loadPaths, type LoadResult } from './load.ts';
import { aggregate, check, fmt, type Aggregate, type WindowResult as Window } from './summary.ts';
import { cpuTimeOf, freePort, imageEnvironment, memoryOf, REPO_ROOT, sampleMemory, spawnEcho, spawnWebhook, waitReady } from './processes.ts';

export interface ComparisonOptions {
  readonly certDir: string;
  readonly scratch: string;
  /** Length of each alternating run. */
  readonly seconds: number;
  readonly rounds: number;
  readonly progress: (line: string) => void;
}

type Target = 'webhook' | 'echo';
type Row = H2Case | 'http1-mix';

export interface ComparisonReport {
  readonly rows: Record<Row, Record<Target, Window[]>>;
  /** VmHWM once the HTTP/2 cases were done, and at the end (after the HTTP/1.1 mix too). */
  readonly peakRssHttp2: Record<Target, number>;
  readonly peakRss: Record<Target, number>;
  readonly peakAnon: Record<Target, number>;
  readonly environment: string;
  readonly bodyBytes: Record<H2Case, number>;
}

const H2_CONNECTIONS = 4;
const H2_STREAMS = 16;
const HTTP1_CONNECTIONS = 32;
const PATHS = ['/validate', '/mutate'] as const;

/** What the webhook must answer for each case and path; the echo always answers allowed. */
const EXPECTED: Record<H2Case, Record<(typeof PATHS)[number], (answer: Answer) => boolean>> = {
  ready: {
    '/validate': (a) => a.body.response?.allowed === true && a.body.response.status === undefined && a.body.response.warnings === undefined,
    '/mutate': (a) => a.body.response?.allowed === true && a.body.response.patch === undefined,
  },
  rename: {
    '/validate': (a) => a.body.response?.allowed === false && a.body.response.status?.code === 403,
    '/mutate': (a) => a.body.response?.allowed === true && typeof a.body.response.patch === 'string',
  },
};

async function preflight(target: Target, port: number, ca: string): Promise<void> {
  for (const [name, { body }] of Object.entries(H2_CASES) as [H2Case, (typeof H2_CASES)[H2Case]][]) {
    for (const requestPath of PATHS) {
      const answer = await postHttp2(port, ca, { path: requestPath, body });
      const ok = answer.status === 200 && (target === 'echo' ? answer.body.response?.allowed === true : EXPECTED[name][requestPath](answer));
      if (!ok) throw new Error(`${target} answered the ${name} Service on ${requestPath} wrongly: ${answer.status} ${JSON.stringify(answer.body).slice(0, 400)}`);
    }
  }
}

export async function runComparison(options: ComparisonOptions): Promise<ComparisonReport> {
  const env = imageEnvironment();
  const [port, probePort] = [await freePort(), await freePort()];
  const webhook = spawnWebhook({ certDir: options.certDir, port, probePort, logFile: path.join(options.scratch, 'webhook-h2.log'), env });
  await waitReady(probePort, webhook, performance.now());
  const echo = await spawnEcho(options.certDir, { env });
  try {
    const ca = await readFile(path.join(options.certDir, 'ca.crt'), 'utf8');
    await preflight('webhook', port, ca);
    await preflight('echo', echo.port, ca);
    const ports: Record<Target, number> = { webhook: port, echo: echo.port };
    const pids: Record<Target, number> = { webhook: webhook.pid, echo: echo.pid };
    const memory = { webhook: sampleMemory(webhook.pid), echo: sampleMemory(echo.pid) };
    const mix = loadRequests();
    const drivers: Record<Row, (target: Target, seconds: number) => Promise<LoadResult>> = {
      ready: (target, seconds) => runH2loadPaths({ port: ports[target], body: H2_CASES.ready.body, paths: PATHS, connections: H2_CONNECTIONS, streams: H2_STREAMS, seconds }),
      rename: (target, seconds) => runH2loadPaths({ port: ports[target], body: H2_CASES.rename.body, paths: PATHS, connections: H2_CONNECTIONS, streams: H2_STREAMS, seconds }),
      'http1-mix': (target, seconds) => runAutocannon({ port: ports[target], requests: mix, seconds, concurrency: HTTP1_CONNECTIONS }),
    };
    const rows = {} as Record<Row, Record<Target, Window[]>>;
    const peakRssHttp2: Record<Target, number> = { webhook: NaN, echo: NaN };
    for (const row of Object.keys(drivers) as Row[]) {
      if (row === 'http1-mix') {
        peakRssHttp2.webhook = memoryOf(webhook.pid)?.hwm ?? NaN;
        peakRssHttp2.echo = memoryOf(echo.pid)?.hwm ?? NaN;
      }
      for (const target of ['webhook', 'echo'] as const) {
        options.progress(`${row} warm-up: ${target}`);
        await drivers[row](target, 2);
      }
      rows[row] = { webhook: [], echo: [] };
      for (let round = 1; round <= options.rounds; round++) {
        for (const target of ['webhook', 'echo'] as const) {
          const cpuBefore = cpuTimeOf(pids[target]);
          const load = await drivers[row](target, options.seconds);
          const result = { ...load, cpuMicrosPerRequest: ((cpuTimeOf(pids[target]) - cpuBefore) * 1000) / load.requests };
          rows[row][target].push(result);
          options.progress(
            `${row} round ${round} ${target}: ${result.rps.toFixed(0)} req/s, mean ${result.mean.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms, ` +
              `${result.errors} errors, ${result.cpuMicrosPerRequest.toFixed(0)} µs CPU/request`,
          );
        }
      }
    }
    const webhookMemory = memory.webhook.stop();
    const echoMemory = memory.echo.stop();
    return {
      rows,
      peakRssHttp2,
      peakRss: { webhook: webhookMemory.hwm, echo: echoMemory.hwm },
      peakAnon: { webhook: webhookMemory.maxAnon, echo: echoMemory.maxAnon },
      environment: Object.entries(env).map(([name, value]) => `${name}=${value}`).join(' '),
      bodyBytes: { ready: Buffer.byteLength(H2_CASES.ready.body), rename: Buffer.byteLength(H2_CASES.rename.body) },
    };
  } finally {
    await echo.stop();
    await webhook.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Report

const MiB = 1024 * 1024;
const thousands = (value: number) => (Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : 'n/a');

/** The chart's memory request and limit for the webhook's container, as written in values.yaml. */
function chartMemory(): { request: string; limit: string } {
  const values = parseYaml(readFileSync(path.join(REPO_ROOT, 'charts', 'mesh-admission', 'values.yaml'), 'utf8')) as {
    resources?: { requests?: { memory?: string }; limits?: { memory?: string } };
  };
  return { request: values.resources?.requests?.memory ?? 'none', limit: values.resources?.limits?.memory ?? 'none' };
}

export function comparisonTables(report: ComparisonReport): { table: string; notes: string; goals: string[] } {
  const s = Object.fromEntries(
    (Object.keys(report.rows) as Row[]).map((row) => [row, { webhook: aggregate(report.rows[row].webhook), echo: aggregate(report.rows[row].echo) }]),
  ) as Record<Row, Record<Target, Aggregate>>;
  const h2Row = (row: H2Case) => {
    const { webhook, echo } = s[row];
    return `| ${H2_CASES[row].title} | ${thousands(webhook.rps)} req/s, mean ${fmt(webhook.mean)} ms | ${thousands(echo.rps)} req/s, mean ${fmt(echo.mean)} ms | ${fmt(webhook.rps / echo.rps)}× rps, ${fmt(webhook.mean / echo.mean)}× latency |`;
  };
  const h1 = s['http1-mix'];
  const chart = chartMemory();
  const table = [
    '| case | webhook | echo | ratio |',
    '|---|---|---|---|',
    h2Row('ready'),
    h2Row('rename'),
    `| HTTP/1.1 mix (autocannon, ${HTTP1_CONNECTIONS} connections) | ${thousands(h1.webhook.rps)} req/s, p99 ${fmt(h1.webhook.p99)} ms | ${thousands(h1.echo.rps)} req/s, p99 ${fmt(h1.echo.p99)} ms | ${fmt(h1.webhook.rps / h1.echo.rps)}× rps, ${fmt(h1.webhook.p99 / h1.echo.p99)}× p99 |`,
    `| peak RSS during the run (after the HTTP/2 cases; after all) | ${fmt(report.peakRssHttp2.webhook / MiB, 1)}; ${fmt(report.peakRss.webhook / MiB, 1)} MiB | ${fmt(report.peakRssHttp2.echo / MiB, 1)}; ${fmt(report.peakRss.echo / MiB, 1)} MiB | chart: request ${chart.request}, limit ${chart.limit} |`,
  ];
  const perRound = [
    '',
    '<details><summary>per run (req/s, mean / p99 ms, server CPU per request)</summary>',
    '',
    '| case | round | webhook | echo | rps ratio |',
    '|---|---:|---|---|---:|',
  ];
  for (const row of Object.keys(report.rows) as Row[]) {
    report.rows[row].webhook.forEach((w, i) => {
      const e = report.rows[row].echo[i] as Window;
      const cell = (x: Window) => `${thousands(x.rps)} (${fmt(x.mean)} / ${fmt(x.p99)}, ${fmt(x.cpuMicrosPerRequest, 0)} µs)`;
      perRound.push(`| ${row} | ${i + 1} | ${cell(w)} | ${cell(e)} | ${fmt(w.rps / e.rps)} |`);
    });
  }
  perRound.push('', '</details>');
  const notes =
    `HTTP/2: \`h2load -c ${H2_CONNECTIONS} -m ${H2_STREAMS}\`, the streams alternating /validate and /mutate, one body per case ` +
    `(${report.bodyBytes.ready} and ${report.bodyBytes.rename} bytes: a Service as a Helm release creates it). HTTP/1.1 mix: the four request kinds of the request-mix section (6–8 KiB each). ` +
    `Runs of ${report.rows.ready.webhook[0]?.seconds ?? 'n/a'} s alternate webhook, echo, webhook, echo… after a 2 s warm-up of each; each cell is the median of the runs. ` +
    `Both servers run with the image's settings (${report.environment || 'none found in the Dockerfile'}), started for this section. ` +
    `Peak RSS: VmHWM over each process's life (start-up, warm-ups and every run above); the anonymous part (heap, buffers) peaked at ` +
    `${fmt(report.peakAnon.webhook / MiB, 1)} MiB for the webhook and ${fmt(report.peakAnon.echo / MiB, 1)} MiB for the echo. ` +
    `Server CPU per request (median, webhook / echo): ready ${fmt(s.ready.webhook.cpu, 0)} / ${fmt(s.ready.echo.cpu, 0)} µs, ` +
    `rename ${fmt(s.rename.webhook.cpu, 0)} / ${fmt(s.rename.echo.cpu, 0)} µs, HTTP/1.1 mix ${fmt(h1.webhook.cpu, 0)} / ${fmt(h1.echo.cpu, 0)} µs.`;
  const errors = s.ready.webhook.errors + s.rename.webhook.errors + h1.webhook.errors;
  const goals = [
    `| HTTP/2 rps ≥ 0.85 × echo, Service ready (allowed) | ${fmt(s.ready.webhook.rps / s.ready.echo.rps)} | ${check(s.ready.webhook.rps / s.ready.echo.rps >= 0.85)} |`,
    `| HTTP/2 rps ≥ 0.7 × echo, every answer a denial or a patch | ${fmt(s.rename.webhook.rps / s.rename.echo.rps)} | ${check(s.rename.webhook.rps / s.rename.echo.rps >= 0.7)} |`,
    ...(['ready', 'rename'] as const).map((row) => {
      const ratio = s[row].webhook.mean / s[row].echo.mean;
      return `| HTTP/2 mean latency ≤ 1.3 × echo, ${row} | ${fmt(ratio)} | ${check(ratio <= 1.3)} |`;
    }),
    `| peak RSS under the HTTP/2 load < 100 MiB (image settings) | ${fmt(report.peakRssHttp2.webhook / MiB, 1)} MiB (echo ${fmt(report.peakRssHttp2.echo / MiB, 1)} MiB) | ${check(report.peakRssHttp2.webhook < 100 * MiB)} |`,
    `| errors = 0 (HTTP/2 cases and HTTP/1.1 mix) | ${errors} | ${check(errors === 0)} |`,
  ];
  return { table: [...table, ...perRound].join('\n'), notes, goals };
}
