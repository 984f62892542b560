// Renamed Services across a deploy lifecycle, as users redeploy them: the second and third
// `kubectl apply` of an unchanged manifest, server-side apply (what Flux and Argo CD send),
// `kubectl replace`, `kubectl diff`, and a Helm chart installed and upgraded twice — all
// against a real kube-apiserver with the real `mesh-admission serve` registered.
// Run: npm run test:e2e. Skips when the binaries are unavailable, unless E2E_REQUIRED=1.
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { binariesOrSkip, startControlPlane, type ControlPlane } from './control-plane.ts';
import { registerWebhook, startWebhook, type WebhookServer } from './webhook-server.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The manifest a developer keeps in Git: ports named without a protocol prefix. */
function manifest(name: string, ports: { name: string; port: number }[], labels: Record<string, string> = {}): string {
  const items = ports.map((p) => `  - name: ${p.name}\n    port: ${p.port}\n    targetPort: ${p.port}`).join('\n');
  const labelLines = Object.entries(labels).map(([k, v]) => `\n    ${k}: ${v}`).join('');
  return `apiVersion: v1\nkind: Service\nmetadata:\n  name: ${name}\n  namespace: default\n  labels:\n    app: ${name}${labelLines}\nspec:\n  selector:\n    app: ${name}\n  ports:\n${items}\n`;
}

const WEB_PORTS = [{ name: 'web', port: 8080 }, { name: 'metrics', port: 9102 }];
const RENAMED = ['http-web', 'http-metrics'];

async function portNames(cp: ControlPlane, name: string): Promise<string[]> {
  const svc = JSON.parse((await cp.kubectl(['get', 'service', name, '-o', 'json'])).stdout);
  return svc.spec.ports.map((p: { name: string }) => p.name);
}

function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('env', ['-u', 'NODE_OPTIONS', command, ...args], { env, timeout: 180_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const binDir = await binariesOrSkip(t);
if (binDir) {
  const cp = await startControlPlane({ binDir, log: (line) => t.comment(line) });
  t.teardown(() => cp.stop());
  let webhook: WebhookServer = await startWebhook();
  await registerWebhook(cp, webhook);
  t.teardown(() => webhook.stop());

  t.test('kubectl apply three times: created renamed, then unchanged, never denied', async (t) => {
    const file = manifest('shop', WEB_PORTS);
    const first = await cp.kubectl(['apply', '-f', '-'], { input: file });
    t.equal(first.stdout.trim(), 'service/shop created');
    t.match(first.stderr, /^Warning: Service default\/shop: spec\.ports\[0\] \(port 8080\): renamed "web" to "http-web"/m, 'the warning names its object');
    for (const round of [2, 3]) {
      const again = await cp.kubectl(['apply', '-f', '-'], { input: file, allowFailure: true });
      t.equal(again.code, 0, `apply ${round} succeeds: ${again.stderr}`);
      t.notMatch(again.stderr, /denied/);
      t.same(await portNames(cp, 'shop'), RENAMED, `apply ${round} keeps the names`);
    }
  });

  t.test('kubectl diff of the unchanged manifest shows no difference (exit 0)', async (t) => {
    const diff = await cp.kubectl(['diff', '-f', '-'], { input: manifest('shop', WEB_PORTS), allowFailure: true });
    t.equal(diff.code, 0, `kubectl diff: ${diff.stdout}${diff.stderr}`);
  });

  t.test('server-side apply three times with a field manager, as GitOps tools apply', async (t) => {
    const file = manifest('ssa', WEB_PORTS);
    for (const round of [1, 2, 3]) {
      const r = await cp.kubectl(['apply', '--server-side', '--field-manager=gitops', '-f', '-'], { input: file, allowFailure: true });
      t.equal(r.code, 0, `server-side apply ${round}: ${r.stderr}`);
      t.same(await portNames(cp, 'ssa'), RENAMED, `server-side apply ${round} keeps the names`);
    }
  });

  t.test('kubectl replace of the manifest keeps the names', async (t) => {
    const r = await cp.kubectl(['replace', '-f', '-'], { input: manifest('shop', WEB_PORTS), allowFailure: true });
    t.equal(r.code, 0, `kubectl replace: ${r.stderr}`);
    t.same(await portNames(cp, 'shop'), RENAMED);
  });

  t.test('other fields changed: labels and an added port; the names stay', async (t) => {
    const r = await cp.kubectl(['apply', '-f', '-'], { input: manifest('shop', [...WEB_PORTS, { name: 'api', port: 9000 }], { team: 'payments' }), allowFailure: true });
    t.equal(r.code, 0, r.stderr);
    t.same(await portNames(cp, 'shop'), [...RENAMED, 'http-api']);
  });

  t.test('a rename in the manifest is honoured; a new unclassifiable port is denied', async (t) => {
    const renamed = await cp.kubectl(['apply', '-f', '-'], { input: manifest('shop', [{ name: 'frontend', port: 8080 }, { name: 'metrics', port: 9102 }, { name: 'api', port: 9000 }]), allowFailure: true });
    t.not(renamed.code, 0, 'frontend has no hint: it is treated as a new name and denied');
    t.match(renamed.stderr, /spec\.ports\[0\] \(port 8080, name "frontend"\)/);
    const explicit = await cp.kubectl(['apply', '-f', '-'], { input: manifest('shop', [{ name: 'grpc-frontend', port: 8080 }, { name: 'metrics', port: 9102 }, { name: 'api', port: 9000 }]), allowFailure: true });
    t.equal(explicit.code, 0, explicit.stderr);
    t.same(await portNames(cp, 'shop'), ['grpc-frontend', 'http-metrics', 'http-api']);
    const added = await cp.kubectl(['apply', '-f', '-'], { input: manifest('shop', [{ name: 'grpc-frontend', port: 8080 }, { name: 'metrics', port: 9102 }, { name: 'api', port: 9000 }, { name: 'stream', port: 7000 }]), allowFailure: true });
    t.not(added.code, 0);
    t.match(added.stderr, /denied the request: .*spec\.ports\[3\] \(port 7000, name "stream"\)/s);
  });

  t.test('helm install and two helm upgrades of a chart holding such a Service', async (t) => {
    const helm = await run('bash', [path.join(REPO, 'scripts', 'helm.sh')], process.env);
    const helmBin = helm.stdout.trim().split('\n').pop() ?? '';
    t.equal(helm.code, 0, `helm available: ${helm.stderr}`);
    const work = await mkdtemp(path.join(os.tmpdir(), 'mesh-admission-redeploy-'));
    t.teardown(() => rm(work, { recursive: true, force: true }));
    const chart = path.join(work, 'shop-chart');
    await mkdir(path.join(chart, 'templates'), { recursive: true });
    await writeFile(path.join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: shop\nversion: 1.0.0\n');
    await writeFile(path.join(chart, 'templates', 'service.yaml'), manifest('helm-shop', WEB_PORTS));
    const env = {
      ...process.env,
      KUBECONFIG: cp.kubeconfigPath,
      HELM_CACHE_HOME: path.join(work, 'cache'),
      HELM_CONFIG_HOME: path.join(work, 'config'),
      HELM_DATA_HOME: path.join(work, 'data'),
    };
    const install = await run(helmBin, ['install', 'shop', chart, '-n', 'default'], env);
    t.equal(install.code, 0, `helm install: ${install.stderr}`);
    t.same(await portNames(cp, 'helm-shop'), RENAMED);
    for (const round of [1, 2]) {
      const upgrade = await run(helmBin, ['upgrade', 'shop', chart, '-n', 'default'], env);
      t.equal(upgrade.code, 0, `helm upgrade ${round}: ${upgrade.stderr}`);
      t.same(await portNames(cp, 'helm-shop'), RENAMED, `helm upgrade ${round} keeps the names`);
    }
    const status = await run(helmBin, ['status', 'shop', '-n', 'default', '-o', 'json'], env);
    t.equal(JSON.parse(status.stdout).info.status, 'deployed');
  });

  t.test('warn enforcement: re-applying keeps the renamed name', async (t) => {
    await webhook.stop();
    webhook = await startWebhook(['--enforcement', 'warn']);
    await registerWebhook(cp, webhook);
    const ssa = await cp.kubectl(['apply', '--server-side', '--field-manager=gitops', '-f', '-'], { input: manifest('ssa', WEB_PORTS), allowFailure: true });
    t.equal(ssa.code, 0, ssa.stderr);
    t.same(await portNames(cp, 'ssa'), RENAMED);
    for (const round of [1, 2]) {
      const r = await cp.kubectl(['apply', '-f', '-'], { input: manifest('warned', WEB_PORTS), allowFailure: true });
      t.equal(r.code, 0, r.stderr);
      t.same(await portNames(cp, 'warned'), RENAMED, `apply ${round} in warn mode`);
    }
  });
}
