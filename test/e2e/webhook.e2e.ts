// The webhook as users meet it: a real kube-apiserver + etcd, real kubectl, the real
// `mesh-admission serve`, registered with `mesh-admission webhook-config | kubectl apply -f -`.
// Run: npm run test:e2e. Skips when the binaries are unavailable, unless E2E_REQUIRED=1.
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { binariesOrSkip, startControlPlane, type ControlPlane } from './control-plane.ts';
import { serviceAccountKubeconfig } from './chart-replica.ts';
import { registerWebhook, runCli, runCliWithStatus, startWebhook, unregisterWebhook, type WebhookServer } from './webhook-server.ts';

const REPO = path.resolve(import.meta.dirname, '..', '..');

/** stdout of a command that must succeed. */
function execFileText(file: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { env: { ...process.env, ...env }, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => (error ? reject(new Error(`${file} ${args.join(' ')}: ${stderr}`)) : resolve(stdout)));
  });
}

const SEED_SERVICE = await readFile(new URL('../../examples/manifests/data-center-service.yaml', import.meta.url), 'utf8');

function serviceYaml(name: string, ports: { name: string; port: number }[], namespace = 'default'): string {
  const items = ports.map((p) => `  - name: ${p.name}\n    port: ${p.port}\n    targetPort: ${p.port}\n    protocol: TCP`).join('\n');
  return `apiVersion: v1\nkind: Service\nmetadata:\n  name: ${name}\n  namespace: ${namespace}\nspec:\n  selector:\n    app: ${name}\n  ports:\n${items}\n`;
}

async function portNames(cp: ControlPlane, name: string): Promise<string[]> {
  const svc = JSON.parse((await cp.kubectl(['get', 'service', name, '-o', 'json'])).stdout);
  return svc.spec.ports.map((p: { name: string }) => p.name);
}

async function labels(cp: ControlPlane, namespace: string): Promise<Record<string, string>> {
  return JSON.parse((await cp.kubectl(['get', 'namespace', namespace, '-o', 'json'])).stdout).metadata.labels;
}

const binDir = await binariesOrSkip(t);
if (binDir) {
  const cp = await startControlPlane({ binDir, log: (line) => t.comment(line) });
  t.teardown(() => cp.stop());
  t.comment(`kube-apiserver ${cp.version}`);
  console.log(`# e2e: ran against kube-apiserver ${cp.version}`);

  // Created before any webhook exists: a legacy Service with a port Istio cannot classify.
  await cp.kubectl(['apply', '-f', '-'], { input: serviceYaml('legacy', [{ name: 'data', port: 12345 }]) });

  let webhook: WebhookServer = await startWebhook();
  await registerWebhook(cp, webhook);
  t.teardown(async () => {
    await webhook.stop();
  });

  t.test('the seed Service applies cleanly, without warnings', async (t) => {
    const r = await cp.kubectl(['apply', '-f', '-'], { input: SEED_SERVICE });
    t.equal(r.stdout.trim(), 'service/data-center-service created');
    t.notMatch(r.stderr, /Warning/);
    t.same(await portNames(cp, 'data-center-service'), ['http-80', 'grpc-21000']);
  });

  t.test('a Service with a port named "data" is denied with the fix', async (t) => {
    const r = await cp.kubectl(['apply', '-f', '-'], { input: serviceYaml('data', [{ name: 'data', port: 12345 }]), allowFailure: true });
    t.not(r.code, 0);
    t.comment(`kubectl stderr:\n${r.stderr}`);
    t.match(r.stderr, /Error from server \(Forbidden\): error when creating "STDIN": admission webhook "validate\.mesh-admission\.io" denied the request: /);
    // Nothing hints at the protocol of "data": the denial states the choice instead of guessing one.
    t.match(r.stderr, /denied the request: Service default\/data is not ready for the Istio mesh: \[port-protocol\] spec\.ports\[0\] \(port 12345, name "data"\): Istio cannot tell its protocol and will sniff it; rename it "http-data" if it serves HTTP \("grpc-data" for gRPC\), else "tcp-data", or set appProtocol\.$/m);
    const get = await cp.kubectl(['get', 'service', 'data'], { allowFailure: true });
    t.not(get.code, 0, 'nothing was stored');
  });

  t.test('kubectl create service: the denial says how to name a port that command cannot name', async (t) => {
    const r = await cp.kubectl(['create', 'service', 'clusterip', 'quick', '--tcp=8080:8080'], { allowFailure: true });
    t.not(r.code, 0);
    t.match(r.stderr, /spec\.ports\[0\] \(port 8080, name "8080-8080"\): Istio would sniff it, and kubectl create\/expose cannot name ports: use --dry-run=client -o yaml, name it "http-8080" if it serves HTTP \("grpc-8080" for gRPC\), else "tcp-8080", then apply\./);
    // Following the advice works.
    const yaml = (await cp.kubectl(['create', 'service', 'clusterip', 'quick', '--tcp=8080:8080', '--dry-run=client', '-o', 'yaml'])).stdout;
    const applied = await cp.kubectl(['apply', '-f', '-'], { input: yaml.replace('name: 8080-8080', 'name: tcp-8080') });
    t.equal(applied.stdout.trim(), 'service/quick created');
  });

  t.test('a port named "web" is stored as "http-web" and kubectl shows why', async (t) => {
    const r = await cp.kubectl(['apply', '-f', '-'], { input: serviceYaml('web', [{ name: 'web', port: 8080 }]) });
    t.comment(`kubectl stderr:\n${r.stderr}`);
    t.match(r.stderr, /^Warning: Service default\/web: spec\.ports\[0\] \(port 8080\): renamed "web" to "http-web"/m);
    t.equal(r.stdout.trim(), 'service/web created');
    t.same(await portNames(cp, 'web'), ['http-web']);
  });

  t.test('an ambient waypoint Service that istiod manages is admitted as it is', async (t) => {
    const waypoint = 'apiVersion: v1\nkind: Service\nmetadata:\n  name: waypoint\n  namespace: default\n  labels:\n' +
      '    gateway.istio.io/managed: istio.io-mesh-controller\n    gateway.networking.k8s.io/gateway-name: waypoint\n' +
      'spec:\n  selector:\n    gateway.networking.k8s.io/gateway-name: waypoint\n  ports:\n  - name: mesh\n    port: 15008\n    appProtocol: hbone\n';
    const r = await cp.kubectl(['apply', '-f', '-'], { input: waypoint, allowFailure: true });
    t.equal(r.code, 0, r.stderr);
    t.notMatch(r.stderr, /Warning/);
    t.same(await portNames(cp, 'waypoint'), ['mesh']);
  });

  t.test('namespaces: injection label added, a user\'s label kept', async (t) => {
    await cp.kubectl(['create', 'namespace', 'team-a']);
    t.equal((await labels(cp, 'team-a'))['istio-injection'], 'enabled');
    await cp.kubectl(['apply', '-f', '-'], { input: 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: legacy-team\n  labels:\n    istio-injection: disabled\n' });
    t.equal((await labels(cp, 'legacy-team'))['istio-injection'], 'disabled');
  });

  t.test('--dry-run=server gets the same verdicts and stores nothing', async (t) => {
    const denied = await cp.kubectl(['apply', '--dry-run=server', '-f', '-'], { input: serviceYaml('dry-data', [{ name: 'data', port: 12345 }]), allowFailure: true });
    t.not(denied.code, 0);
    t.match(denied.stderr, /denied the request: .*spec\.ports\[0\] \(port 12345, name "data"\)/);
    const mutated = await cp.kubectl(['apply', '--dry-run=server', '-o', 'json', '-f', '-'], { input: serviceYaml('dry-web', [{ name: 'web', port: 8080 }]) });
    t.match(mutated.stderr, /Warning: Service default\/dry-web: spec\.ports\[0\] \(port 8080\): renamed "web" to "http-web"/);
    t.same(JSON.parse(mutated.stdout).spec.ports.map((p: { name: string }) => p.name), ['http-web']);
    t.not((await cp.kubectl(['get', 'service', 'dry-web'], { allowFailure: true })).code, 0, 'dry run stored nothing');
  });

  t.test('a legacy Service can still be updated; adding a new bad port is denied', async (t) => {
    const relabel = await cp.kubectl(['label', 'service', 'legacy', 'team=payments']);
    t.comment(`kubectl stderr:\n${relabel.stderr}`);
    t.match(relabel.stderr, /^Warning: Service default\/legacy: \[port-protocol\] spec\.ports\[0\] \(port 12345, name "data"\): Istio cannot tell its protocol and will sniff it; rename it "http-data" if it serves HTTP \("grpc-data" for gRPC\), else "tcp-data", or set appProtocol\.$/m);
    t.match(relabel.stderr, /^Warning: Service default\/legacy: this problem already existed before this update, so it does not block it; fix it when you can$/m);
    t.match(relabel.stdout, /service\/legacy labeled/);
    const addPort = await cp.kubectl(
      ['patch', 'service', 'legacy', '--type=json', '-p', '[{"op":"add","path":"/spec/ports/-","value":{"name":"stream","port":7000,"protocol":"TCP"}}]'],
      { allowFailure: true },
    );
    t.not(addPort.code, 0);
    t.match(addPort.stderr, /denied the request: .*spec\.ports\[1\] \(port 7000, name "stream"\)/s);
  });

  t.test('warn enforcement allows with warnings', async (t) => {
    await webhook.stop();
    webhook = await startWebhook(['--enforcement', 'warn']);
    await registerWebhook(cp, webhook);
    const r = await cp.kubectl(['apply', '-f', '-'], { input: serviceYaml('warned', [{ name: 'data', port: 12345 }]) });
    t.match(r.stderr, /Warning: Service default\/warned: \[port-protocol\] spec\.ports\[0\] \(port 12345, name "data"\)/);
    t.equal(r.stdout.trim(), 'service/warned created');
  });

  t.test('revision mode labels new namespaces with istio.io/rev', async (t) => {
    await webhook.stop();
    webhook = await startWebhook(['--injection-mode', 'revision', '--injection-revision', '1-24']);
    await registerWebhook(cp, webhook);
    await cp.kubectl(['create', 'namespace', 'team-rev']);
    const l = await labels(cp, 'team-rev');
    t.equal(l['istio.io/rev'], '1-24');
    t.equal(l['istio-injection'], undefined);
  });

  t.test('serve --register-* patches the caBundle, and the API server then trusts the webhook', async (t) => {
    await webhook.stop();
    // Registered first with a CA that did not sign the webhook's certificate: calls fail TLS.
    const strangerDir = await mkdtemp(path.join(os.tmpdir(), 'stranger-ca-'));
    t.teardown(() => rm(strangerDir, { recursive: true, force: true }));
    await runCli(['certs', '--dir', strangerDir]);
    const certDir = await mkdtemp(path.join(os.tmpdir(), 'registered-'));
    t.teardown(() => rm(certDir, { recursive: true, force: true }));
    await runCli(['certs', '--dir', certDir]);
    webhook = await startWebhook([], { certDir });
    await registerWebhook(cp, { ...webhook, certDir: strangerDir });
    const untrusted = await cp.kubectl(['apply', '--dry-run=server', '-f', '-'], { input: serviceYaml('tls-check', [{ name: 'data', port: 12345 }]), allowFailure: true });
    t.match(untrusted.stderr, /failed calling webhook .*x509|certificate signed by unknown authority/, 'the stranger CA is not trusted');
    await webhook.stop();

    webhook = await startWebhook(['--register-validating', 'mesh-admission', '--register-mutating', 'mesh-admission'], {
      certDir,
      env: { KUBECONFIG: cp.kubeconfigPath },
    });
    const ca = await readFile(path.join(certDir, 'ca.crt'), 'utf8');
    // Registration runs right after the server starts listening: wait for it (bounded).
    const bundleOf = async (kind: string) =>
      Buffer.from(JSON.parse((await cp.kubectl(['get', kind, 'mesh-admission', '-o', 'json'])).stdout).webhooks[0].clientConfig.caBundle, 'base64').toString();
    for (const kind of ['validatingwebhookconfiguration', 'mutatingwebhookconfiguration']) {
      let bundle = await bundleOf(kind);
      for (let attempt = 0; attempt < 50 && bundle !== ca; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        bundle = await bundleOf(kind);
      }
      t.equal(bundle, ca, `${kind} caBundle is the webhook's CA`);
    }
    // The URLs still point at the earlier port: point them at this server, keeping the patched caBundle.
    for (const kind of ['validatingwebhookconfiguration', 'mutatingwebhookconfiguration']) {
      const path = kind.startsWith('validating') ? 'validate' : 'mutate';
      await cp.kubectl(['patch', kind, 'mesh-admission', '--type=json', '-p', JSON.stringify([{ op: 'replace', path: '/webhooks/0/clientConfig/url', value: `https://127.0.0.1:${webhook.port}/${path}` }])]);
    }
    const denied = await cp.kubectl(['apply', '--dry-run=server', '-f', '-'], { input: serviceYaml('tls-check', [{ name: 'data', port: 12345 }]), allowFailure: true });
    t.match(denied.stderr, /admission webhook "validate\.mesh-admission\.io" denied the request/, 'the API server called the webhook through the registered bundle');
  });

  t.test('audit reports the live cluster\'s violations through the kubeconfig', async (t) => {
    const env = { KUBECONFIG: cp.kubeconfigPath };
    const json = await runCliWithStatus(['audit', '-o', 'json', '--context', 'e2e'], env);
    t.equal(json.code, 1, json.stderr);
    const violations = JSON.parse(json.stdout).violations as { kind: string; namespace: string; name: string; rule: string; field: string }[];
    t.ok(violations.some((v) => v.kind === 'Service' && v.namespace === 'default' && v.name === 'legacy' && v.rule === 'port-protocol' && v.field === 'spec.ports[0].name'), 'the legacy Service');
    t.ok(violations.some((v) => v.name === 'warned'), 'the Service let through in warn mode');
    t.notOk(violations.some((v) => v.name === 'data-center-service' || v.name === 'web'), 'clean Services are not reported');
    const text = await runCliWithStatus(['audit'], env);
    t.equal(text.code, 1);
    t.match(text.stdout, /^Error \[port-protocol\] \(Service default\/legacy\) spec\.ports\[0\]/m);
    const badContext = await runCliWithStatus(['audit', '--context', 'nope'], env);
    t.equal(badContext.code, 2);
    t.match(badContext.stderr, /no context "nope" in the kubeconfig \(known: e2e\)/);
  });

  t.test('audit as a user without RBAC: told which permission is missing, then the chart\'s audit ClusterRole makes it work', async (t) => {
    const work = await mkdtemp(path.join(os.tmpdir(), 'mesh-admission-e2e-auditor-'));
    t.teardown(() => rm(work, { recursive: true, force: true }));
    // A ServiceAccount token: authenticated, and allowed nothing (no binding yet).
    await cp.kubectl(['create', 'serviceaccount', 'auditor', '-n', 'default']);
    const kubeconfig = await serviceAccountKubeconfig(cp, 'default', 'auditor', path.join(work, 'kubeconfig'));
    const refused = await runCliWithStatus(['audit', '--kubeconfig', kubeconfig]);
    t.equal(refused.code, 2, refused.stderr);
    t.equal(refused.stdout, '');
    t.comment(refused.stderr);
    t.match(refused.stderr, /^mesh-admission audit: the API server at https:\/\/127\.0\.0\.1:\d+ refused to list (services|namespaces) \(core API group\) at the cluster scope for User "system:serviceaccount:default:auditor" \(HTTP 403 Forbidden\)\.\n/);
    t.notMatch(refused.stderr, /\n\s+at |HTTP-Code/, 'no stack trace, no raw client error');
    const checkRefused = await runCliWithStatus(['check', '-f', 'examples/istio/', '--cluster', '--kubeconfig', kubeconfig]);
    t.equal(checkRefused.code, 2, checkRefused.stderr);
    // The lists run in parallel: the first refusal to arrive names its kind, any of the kinds read.
    t.match(checkRefused.stderr, /refused to list (services \(core API group\)|(gateways|serviceentries|destinationrules|virtualservices) \(API group networking\.istio\.io\)) at the cluster scope for User "system:serviceaccount:default:auditor"/);

    // The chart's role, as `helm install` would create it, and the binding command the message printed.
    const helm = (await execFileText('bash', [path.join(REPO, 'scripts', 'helm.sh')])).trim().split('\n').pop()!;
    const rbac = await execFileText(helm, ['template', 'mesh-admission', path.join(REPO, 'charts', 'mesh-admission'), '--namespace', 'mesh-system', '--show-only', 'templates/rbac.yaml', '--set', 'image.repository=registry.example/mesh-admission'], {
      HELM_CACHE_HOME: path.join(work, 'helm-cache'), HELM_CONFIG_HOME: path.join(work, 'helm-config'), HELM_DATA_HOME: path.join(work, 'helm-data'),
    });
    const auditRole = rbac.split(/^---$/m).find((doc) => /kind: ClusterRole\n/.test(doc) && /name: mesh-admission-audit\n/.test(doc));
    t.ok(auditRole, 'the chart renders the ClusterRole the message names');
    await cp.kubectl(['apply', '-f', '-'], { input: auditRole! });
    const advice = /\n {2}(kubectl create clusterrolebinding .*)\n$/.exec(refused.stderr)?.[1];
    t.equal(advice, 'kubectl create clusterrolebinding mesh-admission-audit-default-auditor --clusterrole=mesh-admission-audit --serviceaccount=default:auditor');
    await cp.kubectl(advice!.split(' ').slice(1));
    t.teardown(() => cp.kubectl(['delete', 'clusterrolebinding', 'mesh-admission-audit-default-auditor', 'clusterrole', 'mesh-admission-audit', '--ignore-not-found']));

    // A Service in the webhook's own namespace: the webhook skips it, so it is stored as it is.
    await cp.kubectl(['create', 'namespace', 'mesh-admission']);
    await cp.kubectl(['apply', '-f', '-'], { input: serviceYaml('own', [{ name: 'data', port: 12345 }], 'mesh-admission') });
    // RBAC is evaluated at once, but give the authorizer's cache a moment on a busy machine.
    let granted = await runCliWithStatus(['audit', '-o', 'json', '--kubeconfig', kubeconfig]);
    for (let attempt = 0; attempt < 20 && granted.code === 2; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      granted = await runCliWithStatus(['audit', '-o', 'json', '--kubeconfig', kubeconfig]);
    }
    t.equal(granted.code, 1, `the bound role is enough to audit: ${granted.stderr}`);
    const reported = (stdout: string) => (JSON.parse(stdout).violations as { namespace: string; name: string }[]).map((v) => `${v.namespace}/${v.name}`);
    t.ok(reported(granted.stdout).includes('default/legacy'), 'the legacy Service is reported');
    t.notOk(reported(granted.stdout).includes('mesh-admission/own'), 'the webhook\'s own namespace is skipped, as the webhook skipped it');
    const elsewhere = await runCliWithStatus(['audit', '-o', 'json', '--kubeconfig', kubeconfig, '--webhook-namespace', 'mesh-system']);
    t.ok(reported(elsewhere.stdout).includes('mesh-admission/own'), 'with the webhook in another namespace, that Service is judged');
    await writeFile(path.join(work, 'config.yaml'), 'exemptNamespaces: [mesh-admission]\n');
    const exempt = await runCliWithStatus(['audit', '-o', 'json', '--kubeconfig', kubeconfig, '--webhook-namespace', 'mesh-system', '--config', path.join(work, 'config.yaml')]);
    t.notOk(reported(exempt.stdout).includes('mesh-admission/own'), 'a namespace of the config\'s exemptNamespaces is skipped');
    const checked = await runCliWithStatus(['check', '-f', 'examples/istio/', '--cluster', '--kubeconfig', kubeconfig]);
    t.not(checked.code, 2, `check --cluster reads the cluster with the same role: ${checked.stderr}`);
  });

  t.test('holdApplicationUntilProxyStarts: Pods of injected namespaces get it in proxy.istio.io/config, others do not', async (t) => {
    await webhook.stop();
    webhook = await startWebhook(['--hold-application-until-proxy-starts', 'true']);
    await registerWebhook(cp, webhook, ['--hold-application-until-proxy-starts']);
    const namespaceYaml = (name: string, labels: Record<string, string>) =>
      `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n  labels:\n${Object.entries(labels).map(([k, v]) => `    ${k}: "${v}"`).join('\n')}\n`;
    await cp.kubectl(['apply', '-f', '-'], {
      input: [
        namespaceYaml('hold-injected', { 'istio-injection': 'enabled' }),
        namespaceYaml('hold-revision', { 'istio.io/rev': '1-24' }),
        namespaceYaml('hold-disabled', { 'istio-injection': 'disabled', 'istio.io/rev': '1-24' }),
      ].join('---\n'),
    });
    // No scheduler or nodes: a server-side dry run still runs the whole admission chain.
    const createPod = async (namespace: string, meta: { labels?: Record<string, string>; annotations?: Record<string, string> } = {}) => {
      const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'app', namespace, ...meta }, spec: { containers: [{ name: 'app', image: 'app:1' }] } };
      const r = await cp.kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], { input: JSON.stringify(pod) });
      const created = JSON.parse(r.stdout) as { metadata: { annotations?: Record<string, string> } };
      return { proxyConfig: created.metadata.annotations?.['proxy.istio.io/config'], stderr: r.stderr };
    };

    const injected = await createPod('hold-injected');
    t.equal(injected.proxyConfig, 'holdApplicationUntilProxyStarts: true', 'istio-injection=enabled');
    t.comment(`kubectl stderr:\n${injected.stderr}`);
    t.match(injected.stderr, /^Warning: Pod [^:]+: set holdApplicationUntilProxyStarts: true in annotation proxy\.istio\.io\/config: the app containers start once the Istio sidecar is ready/m);
    t.equal((await createPod('hold-revision')).proxyConfig, 'holdApplicationUntilProxyStarts: true', 'istio.io/rev');
    const merged = await createPod('hold-injected', { annotations: { 'proxy.istio.io/config': '{"concurrency":2}' } });
    t.same(JSON.parse(merged.proxyConfig ?? ''), { concurrency: 2, holdApplicationUntilProxyStarts: true }, "the user's keys are kept");

    const unlabelled = await createPod('default');
    t.equal(unlabelled.proxyConfig, undefined, 'an unlabelled namespace is not injected: no annotation');
    t.notMatch(unlabelled.stderr, /holdApplicationUntilProxyStarts/);
    t.equal((await createPod('hold-disabled')).proxyConfig, undefined, 'istio-injection=disabled wins over istio.io/rev');
    t.equal((await createPod('hold-injected', { labels: { 'sidecar.istio.io/inject': 'false' } })).proxyConfig, undefined, 'a Pod opted out of injection');
    const userFalse = await createPod('hold-injected', { annotations: { 'proxy.istio.io/config': 'holdApplicationUntilProxyStarts: false' } });
    t.equal(userFalse.proxyConfig, 'holdApplicationUntilProxyStarts: false', "the user's explicit false is kept");
  });

  t.test('without the webhook registered, nothing is checked (control)', async (t) => {
    await unregisterWebhook(cp);
    const r = await cp.kubectl(['apply', '-f', '-'], { input: serviceYaml('unchecked', [{ name: 'data', port: 12345 }]) });
    t.equal(r.stdout.trim(), 'service/unchecked created');
  });
}
