/**
 * CPU profile of the production webhook under the benchmark's request mix:
 * `node --cpu-prof dist/cli.js serve`, driven by autocannon (HTTP/1.1) or h2load (HTTP/2), then
 * the functions with the most self time (and the totals by package) are printed. `--case` picks
 * the load: the four-kind mix (default), or with `--protocol h2` one case of the HTTP/2
 * comparison (`ready`: every answer allowed; `rename`: every answer a denial or a patch), sent
 * as `h2load -c 4 -m 16` to /validate and /mutate like `npm run bench` does. `--target echo`
 * profiles the bare echo of the HTTP/2 comparison under the same load instead: what the webhook
 * spends beyond the echo is the difference of the two tables.
 *
 *   npm run build && node bench/profile.ts [--seconds 8] [--protocol h1|h2] [--case mix|ready|rename] [--target webhook|echo] [--top 40] [--keep DIR]
 *
 * The .cpuprofile file opens in Chrome DevTools (Performance tab) or speedscope.
 */
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { H2_CASES, loadRequests, type H2Case } from './fixtures.ts';
import { runAutocannon, runH2load, runH2loadPaths, type LoadResult } from './load.ts';
import { freePort, imageEnvironment, spawnEcho, spawnWebhook, waitReady } from './processes.ts';
import { DEFAULT_CONFIG } from '../src/config.ts';
import { ensureCertificates } from '../src/tls/ensure.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/**
 * Self time per function and per package/area, as percentages of all samples and as µs per
 * request answered (comparable between the webhook and the echo under the same load).
 */
export function summarize(profile: CpuProfile, requests: number, top = 40): string {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfTime = new Map<number, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    selfTime.set(id, (selfTime.get(id) ?? 0) + delta);
    total += delta;
  });
  const byFunction = new Map<string, number>();
  const byArea = new Map<string, number>();
  for (const [id, time] of selfTime) {
    const frame = (byId.get(id) as ProfileNode).callFrame;
    const file = frame.url.replace(/^file:\/\//, '');
    const short = file.split('/').slice(-2).join('/');
    const key = `${frame.functionName || '(anonymous)'} ${short}${short ? `:${frame.lineNumber + 1}` : ''}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + time);
    const area = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file)?.[1] ?? (file.includes('/dist/') ? 'mesh-admission (dist)' : file.startsWith('node:') ? 'node core (js)' : file === '' ? `${frame.functionName || '(native)'}` : file);
    byArea.set(area, (byArea.get(area) ?? 0) + time);
  }
  const rows = (map: Map<string, number>, count: number) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, count)
      .map(([name, time]) => `| ${((100 * time) / total).toFixed(1)}% | ${(time / requests).toFixed(2)} | \`${name}\` |`);
  return [
    `${requests} requests answered, ${(total / 1e6).toFixed(1)} s sampled`,
    '',
    '| self | µs/request | function |',
    '|---:|---:|---|',
    ...rows(byFunction, top),
    '',
    '| self | µs/request | area |',
    '|---:|---:|---|',
    ...rows(byArea, 20),
  ].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '8' },
      protocol: { type: 'string', default: 'h1' },
      case: { type: 'string', default: 'mix' },
      top: { type: 'string', default: '40' },
      keep: { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      target: { type: 'string', default: 'webhook' },
    },
  });
  if (values.target !== 'webhook' && values.target !== 'echo') throw new Error(`--target ${values.target}: use webhook or echo`);
  const dir = values.keep ?? (await mkdtemp(path.join(os.tmpdir(), 'mesh-admission-profile-')));
  await mkdir(dir, { recursive: true });
  const certDir = path.join(dir, 'certs');
  const profiling = ['--cpu-prof', `--cpu-prof-dir=${dir}`];
  let server: { readonly port: number; stop(): Promise<unknown> };
  if (values.target === 'echo') {
    // The certificate the webhook would write for itself with its default settings.
    const { serviceName, namespace, certificates } = DEFAULT_CONFIG;
    await ensureCertificates(certDir, { serviceName, namespace, validityDays: certificates.validityDays, renewBeforeDays: certificates.renewBeforeDays });
    server = await spawnEcho(certDir, { nodeArgs: profiling, env: imageEnvironment() });
  } else {
    const [port, probePort] = [await freePort(), await freePort()];
    const webhook = spawnWebhook({ certDir, port, probePort, logFile: path.join(dir, 'webhook.log'), nodeArgs: profiling, args: ['--log-level', values['log-level']], env: imageEnvironment() });
    server = { port, stop: () => webhook.stop() };
    await waitReady(probePort, webhook, performance.now()).catch(async (error: unknown) => {
      await webhook.stop();
      throw error;
    });
  }
  const port = server.port;
  let result: LoadResult;
  try {
    const seconds = Number(values.seconds);
    if (values.case === 'mix') {
      const drive = values.protocol === 'h2' ? runH2load : runAutocannon;
      result = await drive({ port, requests: loadRequests(), seconds, concurrency: 16 });
    } else if (values.protocol === 'h2' && Object.hasOwn(H2_CASES, values.case)) {
      result = await runH2loadPaths({ port, body: H2_CASES[values.case as H2Case].body, paths: ['/validate', '/mutate'], connections: 4, streams: 16, seconds });
    } else {
      throw new Error(`--case ${values.case}: use mix, or ready / rename with --protocol h2`);
    }
    process.stderr.write(`${values.protocol}: ${result.rps.toFixed(0)} req/s, p50 ${result.p50.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms, ${result.errors} errors\n`);
  } finally {
    await server.stop(); // SIGTERM: a clean exit writes the profile
  }
  const file = (await readdir(dir)).find((name) => name.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no .cpuprofile written in ${dir}`);
  process.stdout.write(`${summarize(JSON.parse(await readFile(path.join(dir, file), 'utf8')) as CpuProfile, result.requests, Number(values.top))}\n`);
  if (values.keep) process.stderr.write(`profile: ${path.join(dir, file)}\n`);
  else await rm(dir, { recursive: true, force: true });
}

if (import.meta.main) await main();
