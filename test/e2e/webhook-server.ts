/**
 * Runs the real `mesh-admission serve` as a child process for the e2e suite and registers it
 * with the API server through `mesh-admission webhook-config | kubectl apply -f -`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ControlPlane } from './control-plane.ts';
import { followServeLogs } from '../helpers/serve-logs.ts';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = path.join(REPO_ROOT, 'src', 'cli.ts');

export interface WebhookServer {
  readonly port: number;
  readonly probePort: number;
  readonly certDir: string;
  readonly logs: Record<string, unknown>[];
  /** The first log line (already written or still to come) that matches; rejects after timeoutMs or when serve exits. */
  waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Starts `serve` on loopback with free ports; resolves once it logs that it is serving. */
export async function startWebhook(args: string[] = [], options: { certDir?: string; env?: Record<string, string> } = {}): Promise<WebhookServer> {
  const certDir = options.certDir ?? (await mkdtemp(path.join(os.tmpdir(), 'mesh-admission-e2e-')));
  const child = spawn(
    process.execPath,
    [CLI, 'serve', '--host', '127.0.0.1', '--probe-host', '127.0.0.1', '--port', '0', '--probe-port', '0', '--cert-dir', certDir, ...args],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } },
  );
  running.add(child);
  const followed = followServeLogs(child);
  const ports = await followed.serving();
  const logs = followed.lines;
  return {
    port: ports.webhookPort,
    probePort: ports.probePort,
    certDir,
    logs,
    waitForLog: followed.waitFor,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        // 'close', not 'exit': the last log lines may still be in the pipe when the process exits.
        const exited = new Promise((resolve) => child.once('close', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      running.delete(child);
      if (!options.certDir) await rm(certDir, { recursive: true, force: true });
    },
  };
}

/** Prints both webhook configurations for the server with the real CLI and applies them with kubectl. */
export async function registerWebhook(cp: ControlPlane, server: WebhookServer, extraArgs: string[] = []): Promise<void> {
  const yaml = await runCli(['webhook-config', '--url', `https://127.0.0.1:${server.port}`, '--ca-file', path.join(server.certDir, 'ca.crt'), ...extraArgs]);
  await cp.kubectl(['apply', '-f', '-'], { input: yaml });
}

export async function unregisterWebhook(cp: ControlPlane, name = 'mesh-admission'): Promise<void> {
  await cp.kubectl(['delete', 'validatingwebhookconfiguration,mutatingwebhookconfiguration', name, '--ignore-not-found']);
}

/** Runs the CLI to completion and returns stdout; rejects with stderr on a non-zero exit. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<string> {
  return runCliWithStatus(args, env).then((r) => {
    if (r.code !== 0) throw new Error(`mesh-admission ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  });
}

export function runCliWithStatus(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
