// An install never blocks the cluster, against a real kube-apiserver: the chart installed with
// an image that can never start (registry.invalid) and the default failurePolicy Fail. There
// are no nodes, so no pod ever runs: Service and Namespace writes must go on working. Then
// `serve` runs as a replica would (chart arguments, ServiceAccount token, a pod IP): it waits
// while the Service does not route to it, installs the planned webhooks once an EndpointSlice
// lists its IP as ready, and from then on enforcement is on and fail-closed (the API server
// cannot reach a pod here, so its calls fail and writes are refused). Helm upgrades, both
// client-side and server-side, keep the installed webhooks; uninstall removes both configurations.
//
// Run: PATH=$PWD/node_modules/.bin:$PATH tap --timeout 600 test/e2e/install-safety.e2e.ts
// Skips when the control-plane binaries are unavailable, unless E2E_REQUIRED=1.
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { findBinaries, startControlPlane, type ControlPlane, skipOrFail } from './control-plane.ts';
import { serviceAccountKubeconfig, startChartReplica, type ChartReplica } from './chart-replica.ts';
import { holdsPlannedWebhooks, plannedWebhooks } from '../../src/kube/webhook-installation.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHART = path.join(REPO, 'charts', 'mesh-admission');
const RELEASE = 'guard';
const NS = 'mesh-guard';
const FULLNAME = 'guard-mesh-admission';
/** The replica's pod IP (EndpointSlices refuse loopback addresses; only the IP is compared). */
const POD_IP = '10.244.0.7';

function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('env', ['-u', 'NODE_OPTIONS', command, ...args], { env, maxBuffer: 32 * 1024 * 1024, timeout: 180_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const found = await findBinaries({ log: (line) => t.comment(line) });
const helmLookup = await run('bash', [path.join(REPO, 'scripts', 'helm.sh')], process.env);
const helmBin = helmLookup.stdout.trim().split('\n').pop() ?? '';

if (!found.binDir || helmLookup.code !== 0) {
  skipOrFail(t, !found.binDir ? `kube-apiserver/etcd/kubectl unavailable: ${found.reason ?? 'unknown'}` : `helm unavailable: ${helmLookup.stderr}`);
} else {
  const binDir = found.binDir;
  let cp: ControlPlane;
  let work: string;
  let helmEnv: NodeJS.ProcessEnv;
  const replicas: ChartReplica[] = [];

  t.before(async () => {
    cp = await startControlPlane({ binDir, log: (line) => t.comment(line) });
    work = await mkdtemp(path.join(os.tmpdir(), 'mesh-admission-install-safety-'));
    helmEnv = { ...process.env, KUBECONFIG: cp.kubeconfigPath, HELM_CACHE_HOME: path.join(work, 'hc'), HELM_CONFIG_HOME: path.join(work, 'hcfg'), HELM_DATA_HOME: path.join(work, 'hd') };
    for (const ns of [NS, 'apps']) await cp.kubectl(['create', 'namespace', ns]);
  });
  t.teardown(async () => {
    for (const replica of replicas) if (replica.child.exitCode === null) replica.child.kill('SIGKILL');
    await cp?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const helm = async (...args: string[]): Promise<string> => {
    const result = await run(helmBin, args, helmEnv);
    if (result.code !== 0) throw new Error(`helm ${args.join(' ')} failed (${result.code}):\n${result.stderr}`);
    return result.stdout;
  };
  const getJson = async (...args: string[]): Promise<any> => JSON.parse((await cp.kubectl(['get', ...args, '-o', 'json'])).stdout);
  const webhookNames = async (): Promise<string[]> => [
    ...((await getJson('validatingwebhookconfiguration', FULLNAME)).webhooks ?? []).map((w: any) => w.name),
    ...((await getJson('mutatingwebhookconfiguration', FULLNAME)).webhooks ?? []).map((w: any) => w.name),
  ];
  let probes = 0;
  /** `kubectl create service` in "apps" (with the name kubectl gives the port). */
  const createService = async () => cp.kubectl(['create', 'service', 'clusterip', `probe-${++probes}`, '--tcp=8080:8080', '-n', 'apps'], { allowFailure: true });
  const createNamespace = async () => cp.kubectl(['create', 'namespace', `team-${++probes}`], { allowFailure: true });

  t.test('an install whose pods never start blocks no write; a routed replica turns enforcement on', async (t) => {
    // The chart's defaults: self-managed certificates, failurePolicy Fail; an image no node can pull.
    await helm('install', RELEASE, CHART, '-n', NS, '--set', 'image.repository=registry.invalid/mesh-admission');
    t.same(await webhookNames(), [], 'both configurations exist with no webhooks');

    for (const round of [1, 2]) {
      const service = await createService();
      t.equal(service.code, 0, `kubectl create service succeeds while no replica serves (${round}): ${service.stderr}`);
      const namespace = await createNamespace();
      t.equal(namespace.code, 0, `kubectl create namespace succeeds (${round}): ${namespace.stderr}`);
    }

    // A replica with the chart's arguments and RBAC, and its pod IP as the downward API gives it.
    const objects = parseAllDocuments(await helm('get', 'manifest', RELEASE, '-n', NS)).map((d) => d.toJS()).filter(Boolean);
    const kubeconfig = await serviceAccountKubeconfig(cp, NS, FULLNAME, path.join(work, 'sa-kubeconfig'));
    const dir = path.join(work, 'replica-1');
    await mkdir(dir);
    const replica = await startChartReplica({ objects, namespace: NS, kubeconfig, dir, env: { MESH_ADMISSION_POD_IPS: POD_IP } });
    replicas.push(replica);
    await replica.follow.waitFor((l) => typeof l['msg'] === 'string' && (l['msg'] as string).startsWith("waiting for the webhook's Service to route"));
    t.same(await webhookNames(), [], 'serving, but the Service does not route to it: still nothing installed');
    const meanwhile = await createService();
    t.equal(meanwhile.code, 0, `writes still succeed: ${meanwhile.stderr}`);

    // The endpoints controller's part: an EndpointSlice of the Service listing the pod as ready.
    await cp.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { name: `${FULLNAME}-abcde`, namespace: NS, labels: { 'kubernetes.io/service-name': FULLNAME } },
        addressType: 'IPv4',
        ports: [{ name: 'https', port: 8443, protocol: 'TCP' }],
        endpoints: [{ addresses: [POD_IP], conditions: { ready: true } }],
      }),
    });
    for (const kind of ['validating', 'mutating']) {
      await replica.follow.waitFor((l) => l['msg'] === `webhooks of ${kind} configuration "${FULLNAME}" installed: enforcement is on`, 30_000);
    }
    t.same(await webhookNames(), ['validate.mesh-admission.io', 'mutate.mesh-admission.io'], 'the planned webhooks are installed');
    const secret = await getJson('secret', `${FULLNAME}-self-tls`, '-n', NS);
    for (const kind of ['validatingwebhookconfiguration', 'mutatingwebhookconfiguration']) {
      const live = await getJson(kind, FULLNAME);
      t.equal(live.webhooks[0].clientConfig.caBundle, secret.data['ca.crt'], `${kind}: installed with the CA of the Secret`);
      t.equal(live.webhooks[0].failurePolicy, 'Fail', `${kind}: the configured failurePolicy`);
      t.ok(holdsPlannedWebhooks(live, plannedWebhooks(live)!), `${kind}: as stored (with the API server's defaults) it holds the plan, so no replica installs again`);
    }

    const refused = await createService();
    t.not(refused.code, 0, 'enforcement is on: the API server calls the webhook');
    t.match(refused.stderr, /failed calling webhook "(mutate|validate)\.mesh-admission\.io"/, '... and fails closed when it cannot reach it');
    const released = await cp.kubectl(['create', 'service', 'clusterip', 'in-release', '--tcp=8080:8080', '-n', NS], { allowFailure: true });
    t.equal(released.code, 0, `the release namespace stays excluded (repairs stay possible): ${released.stderr}`);

    t.equal(await replica.stop(), 0, 'the replica stops cleanly');
    t.same(await webhookNames(), ['validate.mesh-admission.io', 'mutate.mesh-admission.io'], 'webhooks stay installed when replicas stop: fail-closed, as configured');
  });

  t.test('helm upgrade keeps the installed webhooks (client-side and server-side), uninstall removes them', async (t) => {
    const installed = await getJson('validatingwebhookconfiguration', FULLNAME);
    await helm('upgrade', RELEASE, CHART, '-n', NS, '--reuse-values', '--set', 'replicaCount=3');
    t.same(await webhookNames(), ['validate.mesh-admission.io', 'mutate.mesh-admission.io'], 'upgrade (method of the release) keeps them');
    for (const method of ['false', 'true']) {
      await helm('upgrade', RELEASE, CHART, '-n', NS, '--reuse-values', `--server-side=${method}`, ...(method === 'true' ? ['--force-conflicts'] : []));
      t.same(await webhookNames(), ['validate.mesh-admission.io', 'mutate.mesh-admission.io'], `upgrade with --server-side=${method} keeps them`);
    }
    const after = await getJson('validatingwebhookconfiguration', FULLNAME);
    t.same(after.webhooks, installed.webhooks, 'unchanged, caBundle included');
    t.equal((await getJson('deployment', FULLNAME, '-n', NS)).spec.replicas, 3, 'the upgrades themselves were applied');

    await helm('uninstall', RELEASE, '-n', NS, '--wait', '--timeout', '60s');
    for (const kind of ['validatingwebhookconfiguration', 'mutatingwebhookconfiguration']) {
      t.not((await cp.kubectl(['get', kind, FULLNAME], { allowFailure: true })).code, 0, `uninstall removes the ${kind}`);
    }
    const left = await cp.kubectl(['get', 'validatingwebhookconfigurations,mutatingwebhookconfigurations', '-o', 'name'], { allowFailure: true });
    t.equal(left.stdout.trim(), '', 'no webhook configuration is left behind');
    const service = await createService();
    t.equal(service.code, 0, `after uninstall writes succeed: ${service.stderr}`);
  });
}
