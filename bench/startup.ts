/**
 * Time from spawning `node dist/cli.js serve` to the first 200 from `/readyz`, with the
 * certificates already in the cert dir and with an empty cert dir (CA + serving certificate
 * generated). Runs alternate between the two cases; the median is reported.
 */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort, spawnWebhook, waitReady } from './processes.ts';

export interface StartupResult {
  readonly case: 'existing certificates' | 'generating certificates';
  /** Milliseconds, sorted. */
  readonly samples: readonly number[];
  readonly median: number;
}

async function timeStartup(certDir: string): Promise<number> {
  const [port, probePort] = [await freePort(), await freePort()];
  const started = performance.now();
  const child = spawnWebhook({ certDir, port, probePort });
  try {
    return await waitReady(probePort, child, started, { intervalMs: 2, timeoutMs: 20_000 });
  } finally {
    await child.stop();
  }
}

/** `certDir` must hold certificates (ca.crt, ca.key, tls.crt, tls.key). */
export async function runStartup(certDir: string, runs = 5): Promise<StartupResult[]> {
  const existing: number[] = [];
  const generating: number[] = [];
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'mesh-admission-bench-startup-'));
  try {
    for (let i = 0; i < runs; i++) {
      const withCerts = path.join(scratch, `existing-${i}`);
      await cp(certDir, withCerts, { recursive: true });
      existing.push(await timeStartup(withCerts));
      generating.push(await timeStartup(path.join(scratch, `empty-${i}`)));
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  const summary = (name: StartupResult['case'], samples: number[]): StartupResult => {
    const sorted = [...samples].sort((a, b) => a - b);
    return { case: name, samples: sorted, median: sorted[Math.floor(sorted.length / 2)] as number };
  };
  return [summary('existing certificates', existing), summary('generating certificates', generating)];
}
