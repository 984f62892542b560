/**
 * Child processes of the benchmark: the production webhook (`node dist/cli.js serve`), the echo
 * server, readiness polling, and memory sampling from /proc. Every child is killed when the
 * benchmark exits, however it exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TLS_CIPHERS } from '../src/app.ts';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const DIST_CLI = path.join(REPO_ROOT, 'dist', 'cli.js');
const ECHO_SERVER = path.join(REPO_ROOT, 'bench', 'echo-server.mjs');

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface Child {
  readonly process: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

function manage(child: ChildProcess, name: string): Child {
  if (child.pid === undefined) throw new Error(`could not start ${name}`);
  children.add(child);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      children.delete(child);
      resolve(code);
    });
  });
  return {
    process: child,
    pid: child.pid,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

export interface WebhookOptions {
  readonly certDir: string;
  readonly port: number;
  readonly probePort: number;
  /** File the webhook's log (stdout) goes to; default /dev/null. */
  readonly logFile?: string;
  /** Extra node flags, e.g. --cpu-prof. */
  readonly nodeArgs?: readonly string[];
  readonly args?: readonly string[];
  readonly cwd?: string;
  /** Added to the benchmark's own environment. */
  readonly env?: NodeJS.ProcessEnv;
}

/** What the container image's ENV lines set for the process's runtime: Node's settings and glibc's allocator's. */
const IMAGE_RUNTIME_VARIABLES = ['NODE_ENV', 'NODE_OPTIONS', 'MALLOC_ARENA_MAX'] as const;

export type ImageEnvironment = Partial<Record<(typeof IMAGE_RUNTIME_VARIABLES)[number], string>>;

/**
 * The runtime environment the container image sets, read from the Dockerfile's ENV lines so the
 * benchmarks run the servers the way the image does.
 */
export function imageEnvironment(dockerfile = path.join(REPO_ROOT, 'Dockerfile')): ImageEnvironment {
  const text = readFileSync(dockerfile, 'utf8').replace(/\\\n/g, ' ');
  const value = (name: string) => new RegExp(`^ENV\\b.*?\\b${name}=("[^"]*"|\\S+)`, 'm').exec(text)?.[1]?.replace(/^"|"$/g, '');
  const environment: ImageEnvironment = {};
  for (const name of IMAGE_RUNTIME_VARIABLES) {
    const found = value(name);
    if (found !== undefined) environment[name] = found;
  }
  return environment;
}

/**
 * The image's allocator setting, given to every server the benchmarks start (the environment
 * of the benchmark itself can still override it): it changes how much of what was freed stays
 * resident, so memory figures without it are not the pod's.
 */
const { MALLOC_ARENA_MAX } = imageEnvironment();
export const IMAGE_ALLOCATOR_ENV: NodeJS.ProcessEnv = MALLOC_ARENA_MAX === undefined ? {} : { MALLOC_ARENA_MAX };

/**
 * Extra node flags for both servers (webhook and echo), e.g. `--max-semi-space-size=4`, from
 * BENCH_SERVER_NODE_ARGS (space-separated; empty for none); by default the image's, so the
 * memory measured is the memory a pod uses.
 */
export const SERVER_NODE_ARGS: readonly string[] = (process.env['BENCH_SERVER_NODE_ARGS'] ?? imageEnvironment().NODE_OPTIONS ?? '').split(' ').filter(Boolean);


/** `node dist/cli.js serve` on loopback, default log level (info), stdout to a file as a container runtime would take it. */
export function spawnWebhook(options: WebhookOptions): Child {
  const out = openSync(options.logFile ?? '/dev/null', 'a');
  try {
    const child = spawn(
      process.execPath,
      [
        ...SERVER_NODE_ARGS,
        ...(options.nodeArgs ?? []),
        DIST_CLI,
        'serve',
        '--host', '127.0.0.1',
        '--port', String(options.port),
        '--probe-host', '127.0.0.1',
        '--probe-port', String(options.probePort),
        '--cert-dir', options.certDir,
        ...(options.args ?? []),
      ],
      { stdio: ['ignore', out, 'inherit'], cwd: options.cwd ?? REPO_ROOT, env: { ...IMAGE_ALLOCATOR_ENV, ...process.env, ...options.env } },
    );
    return manage(child, 'mesh-admission serve');
  } finally {
    closeSync(out);
  }
}

/** GET a plain-HTTP URL; resolves with the status code, or 0 when nothing answers. */
export function httpStatus(url: string, timeoutMs = 1000): Promise<number> {
  return new Promise((resolve) => {
    const request = http.get(url, { timeout: timeoutMs, agent: false }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
    });
    request.on('timeout', () => request.destroy());
    request.on('error', () => resolve(0));
  });
}

/** Polls `/readyz` until it answers 200; resolves with the time it took from `since` (performance.now()). */
export async function waitReady(probePort: number, child: Child, since: number, options: { intervalMs?: number; timeoutMs?: number } = {}): Promise<number> {
  const deadline = since + (options.timeoutMs ?? 30_000);
  for (;;) {
    if (child.process.exitCode !== null || child.process.signalCode !== null) {
      throw new Error(`webhook exited (${child.process.exitCode ?? child.process.signalCode}) before it was ready`);
    }
    if ((await httpStatus(`http://127.0.0.1:${probePort}/readyz`, 500)) === 200) return performance.now() - since;
    if (performance.now() > deadline) throw new Error(`webhook not ready after ${options.timeoutMs ?? 30_000} ms`);
    await sleep(options.intervalMs ?? 5);
  }
}

export interface EchoServer extends Child {
  readonly port: number;
}

export async function spawnEcho(certDir: string, options: { readonly nodeArgs?: readonly string[]; readonly env?: NodeJS.ProcessEnv } = {}): Promise<EchoServer> {
  const child = spawn(process.execPath, [...SERVER_NODE_ARGS, ...(options.nodeArgs ?? []), ECHO_SERVER, '--cert-dir', certDir, '--ciphers', TLS_CIPHERS, '--port', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    cwd: REPO_ROOT,
    env: { ...IMAGE_ALLOCATOR_ENV, ...process.env, ...options.env },
  });
  const managed = manage(child, 'echo server');
  const port = await new Promise<number>((resolve, reject) => {
    let buffer = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const line = buffer.split('\n')[0];
      if (buffer.includes('\n') && line) resolve((JSON.parse(line) as { port: number }).port);
    });
    child.once('exit', (code) => reject(new Error(`echo server exited with ${code}`)));
  });
  return { ...managed, port };
}

/**
 * VmHWM (peak resident set), VmRSS and its anonymous part (heap, buffers: RssAnon; the rest is
 * mostly the node binary's own pages, shared and reclaimable) of a process, in bytes; undefined
 * once it is gone.
 */
export function memoryOf(pid: number): { hwm: number; rss: number; anon: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    return { hwm: kib('VmHWM'), rss: kib('VmRSS'), anon: kib('RssAnon') };
  } catch {
    return undefined;
  }
}

/** Samples VmRSS every `intervalMs` until stopped; reports the highest samples and the kernel's VmHWM. */
export function sampleMemory(pid: number, intervalMs = 100): { stop(): { maxRss: number; maxAnon: number; hwm: number } } {
  let maxRss = 0;
  let maxAnon = 0;
  const sample = () => {
    const memory = memoryOf(pid);
    if (memory) {
      maxRss = Math.max(maxRss, memory.rss);
      maxAnon = Math.max(maxAnon, memory.anon);
    }
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return { maxRss, maxAnon, hwm: memoryOf(pid)?.hwm ?? NaN };
    },
  };
}

/** CPU time (user + system) a process has used so far, in milliseconds (10 ms resolution). */
export function cpuTimeOf(pid: number): number {
  try {
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return NaN;
  }
}

/** USER_HZ: 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS_PER_SECOND = 100;
