// The Helm chart against a real kube-apiserver (test/e2e/control-plane.ts): install, upgrade
// and uninstall in each certificate mode. There are no nodes, so Deployments never get pods:
// what is checked is that every object is accepted and stored, that a replica run with the
// chart's arguments installs the webhooks (then a call to them fails with failurePolicy Fail,
// as no pod answers), that helm-mode
// certificates survive an upgrade, and, for self mode, that `serve` running with the chart's
// arguments and ServiceAccount token (so with exactly the chart's RBAC) creates its certificate
// Secret and sets the caBundle of both webhook configurations, also when two replicas start
// together, and that the caBundle survives `helm upgrade`.
//
// Run: PATH=$PWD/node_modules/.bin:$PATH tap --timeout 600 test/e2e/helm.e2e.ts
// Skips when the control-plane binaries are unavailable, unless E2E_REQUIRED=1.
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { findBinaries, startControlPlane, type ControlPlane, skipOrFail } from './control-plane.ts';
import { serviceAccountKubeconfig, startChartReplica, type ChartReplica } from './chart-replica.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHART = path.join(REPO, 'charts', 'mesh-admission');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command without tap's NODE_OPTIONS hooks (see test/dockerfile.test.ts). */
function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env, input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile('env', ['-u', 'NODE_OPTIONS', command, ...args], { env, maxBuffer: 32 * 1024 * 1024, timeout: 180_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    child.stdin?.end(input ?? '');
  });
}

type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; uid?: string; annotations?: Record<string, string>; ownerReferences?: any[] }; [key: string]: any };

const found = await findBinaries({ log: (line) => t.comment(line) });
const helmLookup = await run('bash', [path.join(REPO, 'scripts', 'helm.sh')]);
const helmBin = helmLookup.stdout.trim().split('\n').pop() ?? '';

if (!found.binDir || helmLookup.code !== 0) {
  const reason = !found.binDir ? `kube-apiserver/etcd/kubectl unavailable: ${found.reason ?? 'unknown'}` : `helm unavailable: ${helmLookup.stderr}`;
  skipOrFail(t, reason);
} else {
  const binDir = found.binDir;
  let cp: ControlPlane;
  let work: string;
  let helmEnv: NodeJS.ProcessEnv;

  t.before(async () => {
    cp = await startControlPlane({ binDir, log: (line) => t.comment(line) });
    work = await mkdtemp(path.join(os.tmpdir(), 'mesh-admission-helm-e2e-'));
    helmEnv = {
      ...process.env,
      KUBECONFIG: cp.kubeconfigPath,
      HELM_CACHE_HOME: path.join(work, 'helm-cache'),
      HELM_CONFIG_HOME: path.join(work, 'helm-config'),
      HELM_DATA_HOME: path.join(work, 'helm-data'),
    };
    for (const ns of ['mesh-helm', 'mesh-self', 'mesh-cm', 'apps']) await cp.kubectl(['create', 'namespace', ns]);
    // No cert-manager or Istio here: stand-in CRDs for their kinds, so the objects can be
    // stored and RBAC for them resolved.
    const crd = (kind: string, plural: string, group = 'cert-manager.io') => ({
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: `${plural}.${group}` },
      spec: {
        group,
        scope: 'Namespaced',
        names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
        versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
      },
    });
    await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [
      crd('Issuer', 'issuers'),
      crd('Certificate', 'certificates'),
      crd('Gateway', 'gateways', 'networking.istio.io'),
      crd('ServiceEntry', 'serviceentries', 'networking.istio.io'),
      crd('DestinationRule', 'destinationrules', 'networking.istio.io'),
      crd('VirtualService', 'virtualservices', 'networking.istio.io'),
    ] }) });
    await cp.kubectl(['wait', '--for=condition=Established', 'crd/issuers.cert-manager.io', 'crd/certificates.cert-manager.io', 'crd/gateways.networking.istio.io',
      'crd/serviceentries.networking.istio.io', 'crd/destinationrules.networking.istio.io', 'crd/virtualservices.networking.istio.io', '--timeout=60s']);
  });
  t.teardown(async () => {
    await cp?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  // The chart renders only with an image repository; no nodes pull it here.
  const helm = async (...args: string[]): Promise<string> => {
    if (args[0] === 'install') args.push('--set', 'image.repository=registry.invalid/mesh-admission');
    const result = await run(helmBin, args, helmEnv);
    if (result.code !== 0) throw new Error(`helm ${args.join(' ')} failed (${result.code}):\n${result.stderr}`);
    return result.stdout;
  };
  const getJson = async (...args: string[]): Promise<any> => JSON.parse((await cp.kubectl(['get', ...args, '-o', 'json'])).stdout);
  const exists = async (...args: string[]): Promise<boolean> => (await cp.kubectl(['get', ...args], { allowFailure: true })).code === 0;
  const manifest = async (release: string, namespace: string): Promise<K8sObject[]> =>
    parseAllDocuments(await helm('get', 'manifest', release, '-n', namespace))
      .map((d) => d.toJS())
      .filter((o): o is K8sObject => o !== null && typeof o === 'object');

  /** Every object of the release's manifest is stored in the API server. */
  const assertAllStored = async (tt: Test, release: string, namespace: string): Promise<K8sObject[]> => {
    const objects = await manifest(release, namespace);
    tt.ok(objects.length >= 8, `${release}: the manifest has its objects (${objects.length})`);
    for (const object of objects) {
      const args = [`${object.kind.toLowerCase()}.${object.apiVersion.includes('/') ? object.apiVersion.split('/')[0] : ''}`.replace(/\.$/, ''), object.metadata.name];
      if (object.metadata.namespace) args.push('-n', object.metadata.namespace);
      tt.ok(await exists(...args), `${object.kind} ${object.metadata.name} exists`);
    }
    return objects;
  };

  const caBundles = async (name: string): Promise<string[]> => {
    const validating = await getJson('validatingwebhookconfiguration', name);
    const mutating = await getJson('mutatingwebhookconfiguration', name);
    // An empty list is not stored: no webhooks, no field.
    return [...(validating.webhooks ?? []), ...(mutating.webhooks ?? [])].map((w: any) => w.clientConfig.caBundle ?? '');
  };

  t.test('helm mode: install, registration, stable certificates across upgrade, uninstall', async (t) => {
    const release = 'ma-helm';
    const ns = 'mesh-helm';
    const fullname = 'ma-helm-mesh-admission';
    await helm('install', release, CHART, '-n', ns, '--set', 'certificates.mode=helm');
    await assertAllStored(t, release, ns);
    const secret = await getJson('secret', `${fullname}-tls`, '-n', ns);
    t.equal(secret.type, 'kubernetes.io/tls');
    t.same(await caBundles(fullname), [], 'no webhooks until a replica serves');
    const early = await cp.kubectl(['create', 'service', 'clusterip', 'early', '--tcp=8080:8080', '-n', 'apps'], { allowFailure: true });
    t.equal(early.code, 0, `no replica serves, so nothing is refused: ${early.stderr}`);

    // A replica as the pod runs it: the Secret mounted as its cert dir, the chart's RBAC.
    const certDir = path.join(work, 'helm-certs');
    await mkdir(certDir);
    for (const file of ['ca.crt', 'tls.crt', 'tls.key']) await writeFile(path.join(certDir, file), Buffer.from(secret.data[file], 'base64'));
    const replicaDir = path.join(work, 'helm-replica');
    await mkdir(replicaDir);
    const kubeconfig = await serviceAccountKubeconfig(cp, ns, fullname, path.join(work, 'helm-sa-kubeconfig'));
    const replica = await startChartReplica({ objects: await manifest(release, ns), namespace: ns, kubeconfig, dir: replicaDir, certDir });
    t.teardown(() => void replica.stop());
    for (const kind of ['validating', 'mutating']) await replica.follow.waitFor((l) => l['msg'] === `webhooks of ${kind} configuration "${fullname}" installed: enforcement is on`);
    t.same(await caBundles(fullname), [secret.data['ca.crt'], secret.data['ca.crt']], 'both webhooks are installed trusting the CA of the Secret');

    // failurePolicy Fail, and no pod can answer (no nodes): a Service outside the excluded
    // namespaces is rejected by the API server's call to the webhook; the release namespace
    // and the opt-out label are not sent to it.
    const denied = await cp.kubectl(['create', 'service', 'clusterip', 'probe', '--tcp=8080:8080', '-n', 'apps'], { allowFailure: true });
    t.not(denied.code, 0, 'the registered webhook is called for a Service in "apps"');
    t.match(denied.stderr, /failed calling webhook "(mutate|validate)\.mesh-admission\.io"/);
    const inRelease = await cp.kubectl(['create', 'service', 'clusterip', 'probe', '--tcp=8080:8080', '-n', ns], { allowFailure: true });
    t.equal(inRelease.code, 0, `the release namespace is excluded: ${inRelease.stderr}`);
    const optOut = await cp.kubectl(['apply', '-f', '-'], {
      allowFailure: true,
      input: JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'opt-out', namespace: 'apps', labels: { 'mesh-admission.io/ignore': 'true' } }, spec: { ports: [{ port: 8080 }] } }),
    });
    t.equal(optOut.code, 0, `an object labelled mesh-admission.io/ignore=true is not sent: ${optOut.stderr}`);

    await helm('upgrade', release, CHART, '-n', ns, '--reuse-values', '--set', 'replicaCount=3');
    const after = await getJson('secret', `${fullname}-tls`, '-n', ns);
    t.same(after.data, secret.data, 'helm upgrade keeps the certificates (lookup of the existing Secret)');
    t.same(await caBundles(fullname), [secret.data['ca.crt'], secret.data['ca.crt']], '... and the caBundle');
    t.equal((await getJson('deployment', fullname, '-n', ns)).spec.replicas, 3, 'the upgrade itself was applied');

    // The autoscaler switched on: the API server stores it (autoscaling/v2) with the chart's PDB.
    await helm('upgrade', release, CHART, '-n', ns, '--reuse-values', '--set', 'autoscaling.enabled=true', '--set', 'autoscaling.minReplicas=2', '--set', 'autoscaling.maxReplicas=4');
    const hpa = await getJson('horizontalpodautoscaler', fullname, '-n', ns);
    t.same(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: fullname }, 'the autoscaler targets the webhook Deployment');
    t.same([hpa.spec.minReplicas, hpa.spec.maxReplicas, hpa.spec.metrics[0].resource.target.averageUtilization], [2, 4, 75]);
    t.equal((await getJson('poddisruptionbudget', fullname, '-n', ns)).spec.minAvailable, 1, 'the PDB leaves a pod evictable at minReplicas');
    t.equal((await getJson('deployment', fullname, '-n', ns)).spec.replicas, 3, 'switching it on keeps the live count (no drop to the default of 1)');
    // What the autoscaler does: a change through the scale subresource.
    await cp.kubectl(['scale', 'deployment', fullname, '-n', ns, '--replicas=4']);
    await helm('upgrade', release, CHART, '-n', ns, '--reuse-values', '--set', 'autoscaling.targetCPUUtilizationPercentage=60');
    t.equal((await getJson('deployment', fullname, '-n', ns)).spec.replicas, 4, 'a later upgrade keeps the count the autoscaler set');
    t.equal(await replica.stop(), 0, 'the replica stops cleanly');

    await helm('uninstall', release, '-n', ns, '--wait', '--timeout', '60s');
    t.notOk(await exists('validatingwebhookconfiguration', fullname), 'uninstall removes the ValidatingWebhookConfiguration');
    t.notOk(await exists('mutatingwebhookconfiguration', fullname), 'uninstall removes the MutatingWebhookConfiguration');
    const allowed = await cp.kubectl(['create', 'service', 'clusterip', 'probe', '--tcp=8080:8080', '-n', 'apps'], { allowFailure: true });
    t.equal(allowed.code, 0, `after uninstall nothing calls the webhook: ${allowed.stderr}`);
  });

  t.test('self mode: serve with the chart RBAC creates the Secret and sets both caBundles; upgrade keeps them', async (t) => {
    const release = 'ma-self';
    const ns = 'mesh-self';
    const fullname = 'ma-self-mesh-admission';
    const secretName = `${fullname}-self-tls`;
    const account = `system:serviceaccount:${ns}:${fullname}`;
    // Ignore: the webhook has no pod here and must not block the rest of this suite.
    await helm('install', release, CHART, '-n', ns, '--set', 'webhook.failurePolicy=Ignore', '--set', 'trafficChecks.enabled=true');
    const objects = await assertAllStored(t, release, ns);
    t.same(await caBundles(fullname), [], 'no webhooks (so no caBundle) until a replica installs them');
    t.notOk(await exists('secret', secretName, '-n', ns), 'the Secret is the webhook\'s to create');

    // The chart's RBAC, as the API server evaluates it for the webhook's ServiceAccount.
    const can = async (...args: string[]) => (await cp.kubectl(['auth', 'can-i', ...args, `--as=${account}`], { allowFailure: true })).stdout.trim();
    t.equal(await can('get', `secret/${secretName}`, '-n', ns), 'yes');
    t.equal(await can('update', `secret/${secretName}`, '-n', ns), 'yes');
    t.equal(await can('create', 'secrets', '-n', ns), 'yes');
    t.equal(await can('get', 'secret/other', '-n', ns), 'no', 'no other Secret');
    t.equal(await can('list', 'secrets', '-n', ns), 'no', 'Secrets cannot be listed');
    t.equal(await can('create', 'secrets', '-n', 'apps'), 'no', 'no Secret outside its namespace');
    t.equal(await can('patch', `validatingwebhookconfiguration/${fullname}`), 'yes');
    t.equal(await can('patch', `mutatingwebhookconfiguration/${fullname}`), 'yes');
    t.equal(await can('patch', 'validatingwebhookconfiguration/someone-else'), 'no', 'no other webhook configuration');
    t.equal(await can('watch', 'services', '-A'), 'yes', 'trafficChecks: Services may be watched');
    t.equal(await can('get', 'services', '-n', 'apps'), 'no', '... but only listed and watched');
    t.equal(await can('list', 'namespaces'), 'no', 'Namespaces are never listed');

    // Run `serve` as two replicas would: the Deployment's arguments and config file, the
    // ServiceAccount's token (so nothing beyond the chart's RBAC), started at the same time.
    const saKubeconfig = await serviceAccountKubeconfig(cp, ns, fullname, path.join(work, 'sa-kubeconfig'));
    const replicas: ChartReplica[] = [];
    const startReplica = async (index: number) => {
      const dir = path.join(work, `replica-${index}`);
      await mkdir(dir);
      const replica = await startChartReplica({ objects, namespace: ns, kubeconfig: saKubeconfig, dir });
      replicas.push(replica);
      return replica;
    };
    t.teardown(() => {
      for (const replica of replicas) if (replica.child.exitCode === null) replica.child.kill('SIGKILL');
    });
    await Promise.all([startReplica(1), startReplica(2)]);

    // The traffic caches (list/watch of Services, Gateways, ServiceEntries, DestinationRules,
    // VirtualServices) sync with the chart's RBAC alone.
    for (let i = 0; i < 120 && !replicas.every((r) => r.logs.some((l) => l.msg === 'traffic caches synced')); i++) await new Promise((r) => setTimeout(r, 250));
    for (const replica of replicas) {
      const synced = replica.logs.find((l) => l.msg === 'traffic caches synced');
      t.ok(synced, 'the traffic caches synced with the chart RBAC');
      t.same(synced?.absent, [], '... every kind, none absent or forbidden');
      t.notOk(replica.logs.some((l) => l.msg === 'traffic cache failed'), 'no cache failed');
    }

    const secret = await getJson('secret', secretName, '-n', ns);
    t.equal(secret.type, 'kubernetes.io/tls', 'the webhook created its Secret');
    const caPem = Buffer.from(secret.data['ca.crt'], 'base64').toString();
    for (const replica of replicas) {
      t.equal(await readFile(path.join(replica.certDir, 'ca.crt'), 'utf8'), caPem, 'both replicas use the one CA of the Secret');
      t.equal(await readFile(path.join(replica.certDir, 'tls.crt'), 'utf8'), Buffer.from(secret.data['tls.crt'], 'base64').toString());
    }
    const bundles = await caBundles(fullname);
    for (const bundle of bundles) t.equal(Buffer.from(bundle, 'base64').toString(), caPem, 'caBundle = the CA of the Secret');
    const validating = await getJson('validatingwebhookconfiguration', fullname);
    t.match(validating.metadata.annotations['mesh-admission.io/ca-generation'], /^[0-9a-f-]+\/\d+$/, 'the published generation is recorded');
    t.same(
      secret.metadata.ownerReferences?.map((r: any) => [r.kind, r.name, r.uid]),
      [['ValidatingWebhookConfiguration', fullname, validating.metadata.uid]],
      'the Secret is owned by the webhook configuration (deleted with it by the garbage collector)',
    );

    await helm('upgrade', release, CHART, '-n', ns, '--reuse-values', '--set', 'replicaCount=3');
    t.same(await caBundles(fullname), bundles, 'helm upgrade leaves the caBundle the webhook set');

    const codes = await Promise.all(replicas.map((replica) => replica.stop()));
    t.same(codes, [0, 0], 'both replicas stop cleanly on SIGTERM');

    await helm('uninstall', release, '-n', ns, '--wait', '--timeout', '60s');
    t.notOk(await exists('validatingwebhookconfiguration', fullname), 'uninstall removes the ValidatingWebhookConfiguration');
    t.notOk(await exists('mutatingwebhookconfiguration', fullname), 'uninstall removes the MutatingWebhookConfiguration');
  });

  t.test('cert-manager mode with traffic checks: Issuers, Certificates and Istio rules are accepted', async (t) => {
    const release = 'ma-cm';
    const ns = 'mesh-cm';
    const fullname = 'ma-cm-mesh-admission';
    await helm('install', release, CHART, '-n', ns, '--set', 'certificates.mode=cert-manager', '--set', 'trafficChecks.enabled=true', '--set', 'webhook.failurePolicy=Ignore');
    await assertAllStored(t, release, ns);
    const validating = await getJson('validatingwebhookconfiguration', fullname);
    t.notOk(validating.metadata.annotations['cert-manager.io/inject-ca-from'], 'no cainjector: the replica publishes ca.crt of the Secret');
    t.ok(JSON.parse(validating.metadata.annotations['mesh-admission.io/webhooks'])[0].rules.some((r: any) => r.apiGroups.includes('networking.istio.io')), 'the Istio rule is planned');
    const certificate = await getJson('certificate.cert-manager.io', fullname, '-n', ns);
    t.equal(certificate.spec.secretName, `${fullname}-tls`);
    const can = async (...args: string[]) => (await cp.kubectl(['auth', 'can-i', ...args, `--as=system:serviceaccount:${ns}:${fullname}`], { allowFailure: true })).stdout.trim();
    t.equal(await can('watch', 'services', '-A'), 'yes', 'traffic checks may watch Services');
    t.equal(await can('list', 'gateways.networking.istio.io', '-A'), 'yes', 'traffic checks may list Istio Gateways');
    t.equal(await can('watch', 'serviceentries.networking.istio.io', '-A'), 'yes', '... and ServiceEntries');
    t.equal(await can('watch', 'destinationrules.networking.istio.io', '-A'), 'yes', '... and DestinationRules');
    t.equal(await can('watch', 'virtualservices.networking.istio.io', '-A'), 'yes', '... and VirtualServices');
    t.equal(await can('get', 'secrets', '-n', ns), 'no', 'no Secret access in cert-manager mode');
    t.equal(await can('patch', `validatingwebhookconfiguration/${fullname}`), 'yes', 'the webhook installs its webhooks and sets the caBundle');
    t.equal(await can('patch', 'validatingwebhookconfiguration/someone-else'), 'no', '... of its own configurations only');
    await helm('uninstall', release, '-n', ns, '--wait', '--timeout', '60s');
    t.notOk(await exists('validatingwebhookconfiguration', fullname));
    t.notOk(await exists('mutatingwebhookconfiguration', fullname));
  });
}
