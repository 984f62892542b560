/**
 * Shared by bench/soak.ts and bench/faults.ts: the webhook as a child process (the built
 * `node dist/cli.js serve`, loopback only), a keep-alive HTTPS load loop with per-request
 * checks, and readings of the child (RSS from /proc, metrics from its probe port).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import type { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { imageEnvironment } from './processes.ts';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST_CLI = path.join(REPO_ROOT, 'dist', 'cli.js');

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

export interface Webhook {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly webhookPort: number;
  readonly probePort: number;
  readonly certDir: string;
  readonly ca: string;
  /** The child's log file (its stdout). */
  readonly logFile: string;
  /** The log lines so far, parsed, without the per-request `admission` lines. */
  lines(): Record<string, unknown>[];
  readonly exited: Promise<number | null>;
}

function readLines(file: string): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  for (const text of readFileSync(file, 'utf8').split('\n')) {
    if (text === '' || text.includes('"msg":"admission"')) continue;
    try {
      lines.push(JSON.parse(text) as Record<string, unknown>);
    } catch {
      lines.push({ msg: text });
    }
  }
  return lines;
}

/**
 * Starts `node dist/cli.js serve` on loopback with a fresh cert dir; resolves once it serves.
 * Its stdout goes to a file, as a container's does: a pipe read by this (busy) load generator
 * would push back on the server's synchronous log writes and distort its event-loop delay.
 */
/**
 * Node flags of the server under test: by default those of the container image (the
 * Dockerfile's NODE_OPTIONS), so the soak measures the process as it runs in production.
 * SOAK_NODE_ARGS="" measures Node's defaults instead.
 */
const SERVER_NODE_ARGS = (process.env['SOAK_NODE_ARGS'] ?? imageEnvironment().NODE_OPTIONS ?? '').split(' ').filter((arg) => arg !== '');

export async function startWebhook(extraArgs: readonly string[] = [], cli = DIST_CLI): Promise<Webhook> {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  const certDir = await mkdtemp(path.join(tmpdir(), 'mesh-admission-soak-'));
  const logFile = path.join(certDir, '..', `${path.basename(certDir)}.log`);
  const log = openSync(logFile, 'w');
  const child = spawn(
    process.execPath,
    [...SERVER_NODE_ARGS, cli, 'serve', '--port', '0', '--probe-port', '0', '--host', '127.0.0.1', '--probe-host', '127.0.0.1', '--cert-dir', certDir, ...extraArgs],
    { cwd: REPO_ROOT, stdio: ['ignore', log, 'pipe'] },
  );
  closeSync(log);
  children.add(child);
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => {
    children.delete(child);
    exitCode = code;
    resolve(code);
  }));
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  let serving: Record<string, unknown> | undefined;
  for (let waited = 0; !serving; waited += 50) {
    if (exitCode !== undefined) throw new Error(`serve exited with ${exitCode} before serving\n${stderr}`);
    if (waited > 30_000) throw new Error(`serve did not start within 30 s\n${stderr}`);
    await sleep(50);
    serving = readLines(logFile).find((line) => line['msg'] === 'mesh-admission serving');
  }
  return {
    child,
    pid: child.pid as number,
    webhookPort: serving['webhookPort'] as number,
    probePort: serving['probePort'] as number,
    certDir,
    ca: readFileSync(path.join(certDir, 'ca.crt'), 'utf8'),
    logFile,
    lines: () => readLines(logFile),
    exited,
  };
}

/** Resident set size of a process, in bytes (Linux /proc). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!match) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]) * 1024;
}

/**
 * Prometheus samples from the child's probe port (one scrape). A name alone picks the first
 * series of that metric; `name{label="value"}` picks that series.
 */
export async function scrape(probePort: number, series: readonly string[]): Promise<Record<string, number | undefined>> {
  const text = await (await fetch(`http://127.0.0.1:${probePort}/metrics`)).text();
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return Object.fromEntries(
    series.map((name) => {
      const pattern = name.includes('{') ? escape(name) : `${escape(name)}(?:\\{[^}]*\\})?`;
      const match = new RegExp(`^${pattern} ([0-9.eE+-]+)$`, 'm').exec(text);
      return [name, match ? Number(match[1]) : undefined];
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

export interface Shot {
  readonly path: '/validate' | '/mutate';
  readonly body: string;
  readonly uid: string;
  /** What the answer must say. */
  readonly allowed: boolean;
  readonly patched: boolean;
}

let sequence = 0;

function shot(path: Shot['path'], object: unknown, kind: string, allowed: boolean, patched: boolean): Shot {
  sequence += 1;
  const uid = `soak-${sequence}`;
  const body = JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid, kind: { group: '', version: 'v1', kind }, operation: 'CREATE', namespace: kind === 'Namespace' ? undefined : 'shop', object },
  });
  return { path, body, uid, allowed, patched };
}

const svc = (name: string, ports: object[]) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'shop', labels: { app: name } }, spec: { selector: { app: name }, ports } });

/**
 * A realistic mix: most admissions are allowed untouched (quiet at info level); some are
 * denied, some mutated (one log line each).
 */
export function nextShot(i: number): Shot {
  switch (i % 10) {
    case 0:
      return shot('/validate', svc(`bad-${i}`, [{ name: 'data', port: 12345, protocol: 'TCP', targetPort: 12345 }]), 'Service', false, false);
    case 1:
      return shot('/mutate', svc(`web-${i}`, [{ name: 'web', port: 8080, protocol: 'TCP', targetPort: 8080 }]), 'Service', true, true);
    case 2:
      return shot('/mutate', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: `team-${i}` } }, 'Namespace', true, true);
    case 3:
    case 4:
    case 5:
      return shot('/mutate', svc(`ok-${i}`, [{ name: 'http-web', port: 80, protocol: 'TCP', targetPort: 8080 }, { name: 'grpc-api', port: 9090, protocol: 'TCP', targetPort: 9090 }]), 'Service', true, false);
    default:
      return shot('/validate', svc(`ok-${i}`, [{ name: 'http-web', port: 80, protocol: 'TCP', targetPort: 8080 }, { name: 'grpc-api', port: 9090, protocol: 'TCP', targetPort: 9090 }]), 'Service', true, false);
  }
}

export interface Result {
  readonly ok: boolean;
  /** Why the answer is wrong, or the transport error. */
  readonly problem?: string;
  readonly ms: number;
  readonly fingerprint?: string;
}

/** Sends one review and checks the answer: 200, JSON, the uid echoed, the expected verdict. */
export function send(port: number, ca: string, agent: https.Agent | false, s: Shot): Promise<Result> {
  return new Promise((resolve) => {
    const started = performance.now();
    const req = https.request(
      { host: '127.0.0.1', port, servername: 'localhost', ca, agent, path: s.path, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s.body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', (error) => resolve({ ok: false, problem: `response: ${error.message}`, ms: performance.now() - started }));
        res.on('end', () => {
          const ms = performance.now() - started;
          const fingerprint = (res.socket as TLSSocket | null)?.getPeerCertificate?.().fingerprint256;
          if (res.statusCode !== 200) return resolve({ ok: false, problem: `status ${res.statusCode}`, ms });
          try {
            const response = (JSON.parse(Buffer.concat(chunks).toString()) as { response: { uid: string; allowed: boolean; patch?: string } }).response;
            if (response.uid !== s.uid) return resolve({ ok: false, problem: `uid ${response.uid} for ${s.uid}`, ms });
            if (response.allowed !== s.allowed) return resolve({ ok: false, problem: `allowed ${response.allowed} for ${s.uid}`, ms });
            if ((response.patch !== undefined) !== s.patched) return resolve({ ok: false, problem: `patch ${response.patch !== undefined} for ${s.uid}`, ms });
            resolve({ ok: true, ms, ...(fingerprint ? { fingerprint } : {}) });
          } catch (error) {
            resolve({ ok: false, problem: `body: ${(error as Error).message}`, ms });
          }
        });
      },
    );
    req.on('error', (error: Error & { code?: string }) => resolve({ ok: false, problem: error.code ?? error.message, ms: performance.now() - started }));
    req.end(s.body);
  });
}

export interface LoadStats {
  requests: number;
  errors: number;
  readonly problems: Map<string, number>;
  readonly latency: RecordableHistogram;
}

export function newStats(): LoadStats {
  return { requests: 0, errors: 0, problems: new Map(), latency: createHistogram() };
}

export function record(stats: LoadStats, result: Result): void {
  stats.requests += 1;
  stats.latency.record(Math.max(1, Math.round(result.ms * 1000)));
  if (!result.ok) {
    stats.errors += 1;
    const key = result.problem ?? 'unknown';
    stats.problems.set(key, (stats.problems.get(key) ?? 0) + 1);
  }
}

/**
 * `connections` workers, each sending its next review as soon as the last is answered, over a
 * keep-alive agent, until `until()` says stop.
 */
export async function loadLoop(
  port: number,
  ca: string,
  connections: number,
  until: () => boolean,
  stats: LoadStats,
  onResult?: (startedAt: number, result: Result) => void,
): Promise<void> {
  const agent = new https.Agent({ keepAlive: true, maxSockets: connections });
  let i = 0;
  const worker = async () => {
    while (!until()) {
      const startedAt = performance.now();
      const result = await send(port, ca, agent, nextShot(i++));
      record(stats, result);
      onResult?.(startedAt, result);
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
  agent.destroy();
}

export function latencySummary(stats: LoadStats): string {
  const ms = (us: number) => (us / 1000).toFixed(2);
  return `p50 ${ms(stats.latency.percentile(50))} ms, p99 ${ms(stats.latency.percentile(99))} ms, max ${ms(stats.latency.max)} ms`;
}
