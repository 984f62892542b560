/**
 * Load generators: autocannon for HTTP/1.1 keep-alive (one request mix cycled by every
 * connection) and h2load for HTTP/2 (h2load takes one body per run, so one h2load process per
 * request kind runs at the same time: the server sees the four kinds interleaved, like the API
 * server's traffic). Latencies are exact per request (autocannon's own histogram has 1 ms
 * buckets): from autocannon's response events and from h2load's --log-file.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import type { BenchRequest } from './fixtures.ts';

export interface LoadResult {
  readonly requests: number;
  readonly seconds: number;
  readonly rps: number;
  /** Milliseconds. */
  readonly mean: number;
  readonly p50: number;
  readonly p99: number;
  /** Connection errors, timeouts and non-2xx answers. */
  readonly errors: number;
}

export interface LoadOptions {
  readonly port: number;
  readonly requests: readonly BenchRequest[];
  readonly seconds: number;
  /** Requests in flight: HTTP/1.1 connections, or HTTP/2 streams over all connections. */
  readonly concurrency: number;
}

export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] as number;
}

class Samples {
  private data = new Float64Array(1 << 16);
  private size = 0;
  push(value: number): void {
    if (this.size === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.size++] = value;
  }
  mean(): number {
    let sum = 0;
    for (let i = 0; i < this.size; i++) sum += this.data[i] as number;
    return this.size === 0 ? NaN : sum / this.size;
  }
  sorted(): Float64Array {
    return this.data.subarray(0, this.size).sort();
  }
}

/** HTTP/1.1 keep-alive over TLS; every connection cycles through the request mix in order. */
export async function runAutocannon(options: LoadOptions): Promise<LoadResult> {
  const latencies = new Samples();
  let errors = 0;
  const started = performance.now();
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: `https://127.0.0.1:${options.port}`,
        connections: options.concurrency,
        pipelining: 1,
        duration: options.seconds,
        timeout: 10,
        requests: options.requests.map((r) => ({
          method: 'POST' as const,
          path: r.path,
          headers: { 'content-type': 'application/json', accept: 'application/json' },
          body: r.body,
        })),
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
      else errors++;
    });
  });
  const seconds = (performance.now() - started) / 1000;
  const mean = latencies.mean();
  const sorted = latencies.sorted();
  return {
    requests: sorted.length,
    seconds,
    rps: sorted.length / seconds,
    mean,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    // result.errors counts connection errors and timeouts; `errors` the answers that were not 2xx.
    errors: errors + result.errors,
  };
}

function run(command: string, args: string[], timeoutMs: number): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? ((error as { code: number }).code) : 1) : 0;
      resolve({ stdout, stderr, code });
    });
  });
}

interface H2loadRun {
  readonly body: string;
  /** Paths the streams cycle through, in order (h2load assigns them round-robin). */
  readonly paths: readonly string[];
  readonly connections: number;
  /** Streams in flight per connection. */
  readonly streams: number;
}

/** h2load processes started at once, one per run; their totals and exact latencies combined. */
async function h2loadAll(port: number, seconds: number, runs: readonly H2loadRun[]): Promise<LoadResult> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mesh-admission-h2load-'));
  try {
    const outputs = await Promise.all(
      runs.map(async (h2run, index) => {
        const bodyFile = path.join(dir, `body-${index}.json`);
        const logFile = path.join(dir, `log-${index}.tsv`);
        await writeFile(bodyFile, h2run.body);
        const output = await run(
          'h2load',
          [
            '-c', String(h2run.connections),
            '-m', String(h2run.streams),
            '-D', String(seconds),
            '-d', bodyFile,
            '-H', 'content-type: application/json',
            '-H', 'accept: application/json',
            '--log-file', logFile,
            ...h2run.paths.map((requestPath) => `https://127.0.0.1:${port}${requestPath}`),
          ],
          (seconds + 20) * 1000,
        );
        return { output, logFile };
      }),
    );
    const latencies = new Samples();
    let errors = 0;
    let rps = 0;
    for (const { output, logFile } of outputs) {
      const text = output.stdout;
      const summary = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(text);
      const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(text);
      const rate = /finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(text);
      if (output.code !== 0 || !summary || !codes || !rate) {
        throw new Error(`h2load failed (exit ${output.code}):\n${text}\n${output.stderr}`);
      }
      // Completed without a 2xx, or failed (reset, errored, timed out): never both counted.
      errors += Math.max(Number(summary[3]) - Number(codes[1]), Number(summary[5]));
      rps += Number(rate[1]);
      for (const line of (await readFile(logFile, 'utf8')).split('\n')) {
        const [, status, micros] = line.split('\t');
        if (status === undefined || micros === undefined) continue;
        if (status.startsWith('2')) latencies.push(Number(micros) / 1000);
      }
    }
    const mean = latencies.mean();
    const sorted = latencies.sorted();
    return { requests: sorted.length, seconds, rps, mean, p50: percentile(sorted, 50), p99: percentile(sorted, 99), errors };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * HTTP/2 over TLS: one h2load process per request kind, all at once, each with one connection
 * and `concurrency / kinds` streams.
 */
export function runH2load(options: LoadOptions): Promise<LoadResult> {
  const streams = Math.max(1, Math.round(options.concurrency / options.requests.length));
  return h2loadAll(
    options.port,
    options.seconds,
    options.requests.map((request) => ({ body: request.body, paths: [request.path], connections: 1, streams })),
  );
}

export interface H2loadPathsOptions {
  readonly port: number;
  readonly body: string;
  readonly paths: readonly string[];
  readonly connections: number;
  readonly streams: number;
  readonly seconds: number;
}

/** HTTP/2 over TLS the way the API server calls: one body, `connections` × `streams` in flight, cycling through `paths`. */
export function runH2loadPaths(options: H2loadPathsOptions): Promise<LoadResult> {
  return h2loadAll(options.port, options.seconds, [{ body: options.body, paths: options.paths, connections: options.connections, streams: options.streams }]);
}
