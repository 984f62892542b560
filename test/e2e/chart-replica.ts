// Runs `serve` as a pod of an installed chart release would run it, for the e2e suites that
// install the chart (there are no nodes, so the Deployment never gets pods): the Deployment's
// arguments and ConfigMap, and the ServiceAccount's token, so nothing beyond the chart's RBAC.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { followServeLogs, type LogLine, type ServeLogs } from '../helpers/serve-logs.ts';
import type { ControlPlane } from './control-plane.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

type K8sObject = { kind: string; metadata: { name: string }; [key: string]: any };

export interface ChartReplica {
  readonly child: ChildProcess;
  readonly certDir: string;
  readonly logs: LogLine[];
  readonly follow: ServeLogs;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/** A kubeconfig holding a token of the release's ServiceAccount. */
export async function serviceAccountKubeconfig(cp: ControlPlane, namespace: string, account: string, file: string): Promise<string> {
  const token = (await cp.kubectl(['create', 'token', account, '-n', namespace])).stdout.trim();
  await writeFile(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'e2e', cluster: { server: cp.serverUrl, 'certificate-authority-data': Buffer.from(cp.caPem).toString('base64') } }],
      users: [{ name: 'webhook', user: { token } }],
      contexts: [{ name: 'e2e', context: { cluster: 'e2e', user: 'webhook' } }],
      'current-context': 'e2e',
    }),
    { mode: 0o600 },
  );
  return file;
}

export interface ReplicaOptions {
  /** The release's manifest (`helm get manifest`, parsed). */
  readonly objects: readonly K8sObject[];
  readonly namespace: string;
  readonly kubeconfig: string;
  /** Directory for the config file and the cert dir; one per replica. */
  readonly dir: string;
  /** Extra environment, e.g. MESH_ADMISSION_POD_IPS as the downward API would give it. */
  readonly env?: Record<string, string>;
  /** Fills the cert dir before start (a mounted Secret in cert-manager and helm mode). */
  readonly certDir?: string;
}

/** Starts one replica on loopback with ephemeral ports; resolves once it serves. */
export async function startChartReplica(options: ReplicaOptions): Promise<ChartReplica> {
  const deployment = options.objects.find((o) => o.kind === 'Deployment');
  const configMap = options.objects.find((o) => o.kind === 'ConfigMap');
  if (!deployment || !configMap) throw new Error('the manifest has no Deployment or ConfigMap');
  const container = deployment['spec'].template.spec.containers[0];
  const configFile = path.join(options.dir, 'config.yaml');
  await writeFile(configFile, configMap['data']['config.yaml']);
  const certDir = options.certDir ?? path.join(options.dir, 'certs');
  const args = (container.args as string[])
    .filter((a) => !/^--(config|cert-dir|port|probe-port)=/.test(a))
    .concat([`--config=${configFile}`, `--cert-dir=${certDir}`, '--port=0', '--probe-port=0', '--host=127.0.0.1', '--probe-host=127.0.0.1']);
  const child = spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, path.join(REPO, 'src', 'cli.ts'), ...args], {
    env: { PATH: process.env['PATH'] ?? '', KUBECONFIG: options.kubeconfig, MESH_ADMISSION_NAMESPACE: options.namespace, NODE_EXTRA_CA_CERTS: '', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const follow = followServeLogs(child);
  await follow.serving(30_000);
  return {
    child,
    certDir,
    logs: follow.lines,
    follow,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve(child.exitCode);
        child.on('exit', (code) => resolve(code));
        child.kill('SIGTERM');
      }),
  };
}
