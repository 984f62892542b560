/**
 * The production webhook (`node dist/cli.js serve` with the image's Node flags) inside a memory
 * cgroup of the chart's limit, as the kubelet would run it: the process is OOM-killed if it
 * goes over, and the cgroup's own high-water mark says how close it came.
 *
 * cgroup v2 (`memory.max`, `memory.peak`) and v1 (`memory.limit_in_bytes`,
 * `memory.max_usage_in_bytes`) are both supported. Creating a cgroup needs root; without it
 * the suites fail under CI or as root (a missing cgroup there is a broken machine, not a
 * reason to pass) and are skipped otherwise.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { freePort, IMAGE_ALLOCATOR_ENV, imageEnvironment } from '../../bench/processes.ts';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The build under test: this checkout's dist/ unless LIMITS_CLI names another (e.g. an older build). */
export const CLI = process.env['LIMITS_CLI'] ?? path.join(REPO_ROOT, 'dist', 'cli.js');

/** `resources.limits.memory` of the chart, in bytes: the budget every case is held to. */
export const CHART_MEMORY_LIMIT = chartMemoryLimit();

/** The Node flags the image sets (NODE_OPTIONS in the Dockerfile). */
export const IMAGE_NODE_OPTIONS = imageEnvironment().NODE_OPTIONS ?? '';

function chartMemoryLimit(): number {
  const values = parseYaml(readFileSync(path.join(REPO_ROOT, 'charts', 'mesh-admission', 'values.yaml'), 'utf8')) as {
    resources: { limits: { memory: string } };
  };
  const match = /^(\d+)(Mi|Gi)$/.exec(values.resources.limits.memory);
  if (!match) throw new Error(`unexpected resources.limits.memory ${values.resources.limits.memory}`);
  return Number(match[1]) * (match[2] === 'Gi' ? 1024 ** 3 : 1024 ** 2);
}

interface CgroupFiles {
  readonly dir: string;
  readonly procs: string;
  readonly limit: string;
  readonly peak: string;
  /** Where the count of OOM kills is read. */
  readonly events: string;
  readonly version: 1 | 2;
}

function cgroupRoot(): { version: 1 | 2; root: string } | string {
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) {
    const controllers = readFileSync('/sys/fs/cgroup/cgroup.controllers', 'utf8');
    if (!controllers.split(/\s+/).includes('memory')) return 'cgroup v2 without the memory controller';
    return { version: 2, root: '/sys/fs/cgroup' };
  }
  if (existsSync('/sys/fs/cgroup/memory/memory.limit_in_bytes')) return { version: 1, root: '/sys/fs/cgroup/memory' };
  return 'no memory cgroup hierarchy under /sys/fs/cgroup';
}

/** Why cgroups cannot be used here, or undefined when they can. */
export function cgroupUnavailable(): string | undefined {
  const root = cgroupRoot();
  if (typeof root === 'string') return root;
  if (process.getuid?.() !== 0) return 'creating a memory cgroup needs root';
  return undefined;
}

/** Whether a missing cgroup must fail the suite (CI, or root: cgroups are expected there). */
export function cgroupsRequired(): boolean {
  return process.env['CI'] === 'true' || process.env['LIMITS_REQUIRED'] === '1' || process.getuid?.() === 0;
}

/** Clock ticks per second of /proc's CPU times. */
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

let created = 0;

function createCgroup(limitBytes: number): CgroupFiles {
  const root = cgroupRoot();
  if (typeof root === 'string') throw new Error(root);
  created += 1;
  const dir = path.join(root.root, `mesh-admission-limits-${process.pid}-${created}`);
  mkdirSync(dir);
  if (root.version === 2) {
    // The controller must be enabled for the root's children (it usually is where the kubelet runs).
    const control = path.join(root.root, 'cgroup.subtree_control');
    if (!readFileSync(control, 'utf8').includes('memory')) writeFileSync(control, '+memory');
    writeFileSync(path.join(dir, 'memory.max'), String(limitBytes));
    writeFileSync(path.join(dir, 'memory.swap.max'), '0');
    return { dir, version: 2, procs: path.join(dir, 'cgroup.procs'), limit: path.join(dir, 'memory.max'), peak: path.join(dir, 'memory.peak'), events: path.join(dir, 'memory.events') };
  }
  writeFileSync(path.join(dir, 'memory.limit_in_bytes'), String(limitBytes));
  // No swap: memsw is only there when the kernel accounts swap.
  const memsw = path.join(dir, 'memory.memsw.limit_in_bytes');
  if (existsSync(memsw)) writeFileSync(memsw, String(limitBytes));
  return { dir, version: 1, procs: path.join(dir, 'cgroup.procs'), limit: path.join(dir, 'memory.limit_in_bytes'), peak: path.join(dir, 'memory.max_usage_in_bytes'), events: path.join(dir, 'memory.oom_control') };
}

function oomKills(files: CgroupFiles): number {
  const text = readFileSync(files.events, 'utf8');
  const match = /^oom_kill (\d+)$/m.exec(text);
  return match ? Number(match[1]) : 0;
}

export function probeGet(port: number, urlPath: string, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, timeout: timeoutMs, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${urlPath} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

export interface LimitedServer {
  readonly port: number;
  readonly probePort: number;
  readonly ca: string;
  readonly limitBytes: number;
  /** The cgroup's high-water mark of memory use since start. */
  peakBytes(): number;
  /** The process is still running and was never OOM-killed. */
  alive(): boolean;
  /** What the process printed on stderr (start-up failures). */
  stderr(): string;
  /** CPU time (user + system, all threads) the process has used, in ms, from /proc. */
  cpuMs(): number;
  /** The longest event-loop block since the last call, from the webhook's own metric. */
  eventLoopLagMaxMs(): Promise<number>;
  stop(): Promise<void>;
}

export interface LimitedServerOptions {
  readonly limitBytes?: number;
  readonly args?: readonly string[];
}

export async function startLimitedServer(options: LimitedServerOptions = {}): Promise<LimitedServer> {
  const limitBytes = options.limitBytes ?? CHART_MEMORY_LIMIT;
  const files = createCgroup(limitBytes);
  const certDir = await mkdtemp(path.join(tmpdir(), 'limits-certs-'));
  const [port, probePort] = [await freePort(), await freePort()];
  // The shell joins the cgroup, then becomes node: every byte the server allocates is charged to it.
  const child: ChildProcess = spawn(
    'sh',
    ['-c', `echo $$ > ${files.procs} && exec "$0" "$@"`, process.execPath, CLI, 'serve', '--host', '127.0.0.1', '--probe-host', '127.0.0.1',
      '--port', String(port), '--probe-port', String(probePort), '--cert-dir', certDir, '--log-level', 'warn', ...(options.args ?? [])],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...IMAGE_ALLOCATOR_ENV, NODE_OPTIONS: IMAGE_NODE_OPTIONS, NODE_ENV: 'production' } },
  );
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-20_000)));
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => {
    exited = true;
    resolve();
  }));
  const stop = async () => {
    if (!exited) child.kill('SIGKILL');
    await exit;
    await rm(certDir, { recursive: true, force: true });
    // The cgroup can only be removed once empty; the kernel may take a moment to notice.
    for (let attempt = 0; attempt < 50 && existsSync(files.dir); attempt++) {
      try {
        rmdirSync(files.dir);
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  };
  try {
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (exited) throw new Error(`the server exited during start-up: ${stderr}`);
      const ready = await probeGet(probePort, '/readyz', 500).catch(() => undefined);
      if (ready?.status === 200) break;
      if (Date.now() > deadline) throw new Error(`the server was not ready within 15 s: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  const ca = await readFile(path.join(certDir, 'ca.crt'), 'utf8');
  return {
    port,
    probePort,
    ca,
    limitBytes,
    peakBytes: () => Number(readFileSync(files.peak, 'utf8').trim()),
    alive: () => !exited && oomKills(files) === 0,
    cpuMs: () => {
      // Fields 14 and 15 of /proc/PID/stat, after the parenthesised command name.
      const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
      return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
    },
    stderr: () => stderr,
    async eventLoopLagMaxMs() {
      const metrics = await probeGet(probePort, '/metrics', 5000);
      const match = /^nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(metrics.body);
      return match ? Number(match[1]) * 1000 : Number.NaN;
    },
    stop,
  };
}
