// The Service rules as ValidatingAdmissionPolicies (`mesh-admission policies`) against the
// validating webhook, on a real kube-apiserver: the same corpus of Services is written into a
// namespace only the policies judge and one only the webhook judges, and each write must get the
// same verdict (allowed, warned or denied) — creates, and updates of Services stored before
// either was installed (grandfathering).
// Run: npm run test:e2e. Skips when the binaries are unavailable, unless E2E_REQUIRED=1.
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { binariesOrSkip, startControlPlane, type ControlPlane } from './control-plane.ts';
import { runCli, startWebhook } from './webhook-server.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const POLICY_NAMESPACE = 'parity-policies';
const WEBHOOK_NAMESPACE = 'parity-webhook';

interface PortSpec {
  readonly name?: string;
  readonly port: number;
  readonly protocol?: string;
  readonly appProtocol?: string;
}

interface Case {
  readonly title: string;
  readonly ports: readonly PortSpec[];
  readonly type?: string;
  readonly labels?: Record<string, string>;
}

/** Every branch of Istio's classification, the skips, ExternalName and duplicates. */
const CORPUS: readonly Case[] = [
  { title: 'prefixed names', ports: [{ name: 'http-web', port: 80 }, { name: 'grpc-api', port: 9090 }, { name: 'tcp-db', port: 5432 }] },
  // Port names are lower-case DNS labels (the API server rejects others), appProtocol values
  // need not be: the case-insensitive branches are reached through appProtocol.
  { title: 'bare protocol names', ports: [{ name: 'http', port: 80 }, { name: 'https', port: 443 }, { name: 'tls', port: 8443 }, { name: 'redis', port: 6379 }] },
  { title: 'unprefixed names', ports: [{ name: 'web', port: 8080 }, { name: 'metrics', port: 9102 }] },
  { title: 'an unnamed port', ports: [{ port: 8080 }] },
  { title: 'a grpc-web prefix', ports: [{ name: 'grpc-webx', port: 8080 }] },
  { title: 'a grpc-web prefix in capitals', ports: [{ name: 'a', port: 8080, appProtocol: 'GRPC-WEBx' }] },
  { title: 'http2 and mongo prefixes', ports: [{ name: 'http2-b', port: 8081 }, { name: 'mongo-x', port: 27018 }] },
  { title: 'http_proxy', ports: [{ name: 'a', port: 3128, appProtocol: 'HTTP_PROXY' }] },
  { title: 'a word only in part', ports: [{ name: 'httpx', port: 8080 }] },
  { title: 'server-first ports unnamed', ports: [{ name: 'smtp', port: 25 }, { name: 'dns', port: 53 }, { name: 'mysqlx', port: 3306 }, { name: 'db', port: 27017 }] },
  { title: 'UDP is classified whatever its name', ports: [{ name: 'dns', port: 5353, protocol: 'UDP' }] },
  { title: 'SCTP goes by its name', ports: [{ name: 'sig', port: 3868, protocol: 'SCTP' }] },
  { title: 'SCTP with a prefix', ports: [{ name: 'tcp-sig', port: 3868, protocol: 'SCTP' }] },
  { title: 'Kubernetes appProtocol values', ports: [{ name: 'a', port: 80, appProtocol: 'kubernetes.io/h2c' }, { name: 'b', port: 81, appProtocol: 'kubernetes.io/ws' }, { name: 'c', port: 82, appProtocol: 'kubernetes.io/wss' }] },
  { title: 'a Kubernetes appProtocol value in capitals', ports: [{ name: 'a', port: 80, appProtocol: 'kubernetes.io/H2C' }] },
  { title: 'appProtocol overrides a good name', ports: [{ name: 'http-web', port: 80, appProtocol: 'web' }] },
  { title: 'appProtocol rescues a bad name', ports: [{ name: 'web', port: 80, appProtocol: 'http' }] },
  { title: 'appProtocol in capitals, cut at its dash', ports: [{ name: 'web', port: 80, appProtocol: 'HTTPS-x' }, { name: 'db', port: 81, appProtocol: 'MySQL' }] },
  { title: 'a bad port among good ones', ports: [{ name: 'http-web', port: 80 }, { name: 'admin', port: 9000 }] },
  { title: 'ExternalName with a prefixed port', type: 'ExternalName', ports: [{ name: 'tcp-pg', port: 5432 }] },
  { title: 'ExternalName with a bare tcp port', type: 'ExternalName', ports: [{ name: 'tcp', port: 5432 }] },
  { title: 'ExternalName with an unprefixed port', type: 'ExternalName', ports: [{ name: 'pg', port: 5432 }] },
  { title: 'Istio control plane label', labels: { istio: 'pilot' }, ports: [{ name: 'web', port: 8080 }] },
  { title: 'release: istio', labels: { release: 'istio' }, ports: [{ name: 'web', port: 8080 }] },
  { title: 'a waypoint istiod manages', labels: { 'gateway.istio.io/managed': 'istio.io-mesh-controller' }, ports: [{ name: 'mesh', port: 15008, appProtocol: 'hbone' }] },
  { title: 'some other manager', labels: { 'gateway.istio.io/managed': 'someone-else' }, ports: [{ name: 'mesh', port: 15008, appProtocol: 'hbone' }] },
  { title: 'opted out', labels: { 'mesh-admission.io/ignore': 'true' }, ports: [{ name: 'web', port: 8080 }] },
];

function service(name: string, namespace: string, spec: Case): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace, labels: { app: name, ...spec.labels } },
    spec: spec.type === 'ExternalName'
      ? { type: 'ExternalName', externalName: 'db.example.com', ports: spec.ports }
      : { selector: { app: name }, ports: spec.ports.map((p) => ({ ...p, targetPort: p.port })) },
  };
}

type Verdict = 'allowed' | 'warned' | 'denied';

function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { env, timeout: 180_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** What kubectl reports for one write: denied (non-zero exit), warned (a Warning line) or allowed. */
async function write(cp: ControlPlane, verb: 'create' | 'replace', object: Record<string, unknown>): Promise<{ verdict: Verdict; output: string }> {
  const r = await cp.kubectl([verb, '--dry-run=server', '-f', '-'], { input: JSON.stringify(object), allowFailure: true });
  const output = `${r.stdout}${r.stderr}`.trim();
  if (r.code !== 0) return { verdict: 'denied', output };
  return { verdict: /^Warning: /m.test(r.stderr) ? 'warned' : 'allowed', output };
}

const binDir = await binariesOrSkip(t);
if (binDir) {
  const cp = await startControlPlane({ binDir, log: (line) => t.comment(line) });
  t.teardown(() => cp.stop());
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'mesh-admission-policies-'));
  t.teardown(() => rm(scratch, { recursive: true, force: true }));
  for (const namespace of [POLICY_NAMESPACE, WEBHOOK_NAMESPACE]) await cp.kubectl(['create', 'namespace', namespace]);

  // Stored before either judge exists: what an UPDATE must grandfather.
  const LEGACY: Case = { title: 'legacy', ports: [{ name: 'web', port: 8080 }] };
  for (const namespace of [POLICY_NAMESPACE, WEBHOOK_NAMESPACE]) {
    await cp.kubectl(['create', '-f', '-'], { input: JSON.stringify(service('legacy', namespace, LEGACY)) });
  }

  // Each judge sees one namespace only: the webhook's configuration leaves out the policies'
  // namespace, and the policies exempt the webhook's.
  const configFile = path.join(scratch, 'config.yaml');
  await writeFile(configFile, `exemptNamespaces: [${WEBHOOK_NAMESPACE}]\n`);
  const policiesYaml = await runCli(['policies', '--config', configFile]);
  await cp.kubectl(['apply', '-f', '-'], { input: policiesYaml });
  const webhook = await startWebhook();
  t.teardown(() => webhook.stop());
  const configurations = await runCli(['webhook-config', '--url', `https://127.0.0.1:${webhook.port}`, '--ca-file', path.join(webhook.certDir, 'ca.crt'), '--exclude-namespace', POLICY_NAMESPACE]);
  const validating = parseAllDocuments(configurations).map((d) => d.toJS() as { kind: string }).filter((d) => d.kind === 'ValidatingWebhookConfiguration');
  await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: validating }) });

  // The policies are loaded by the API server a moment after they are created.
  const probe = service('probe', POLICY_NAMESPACE, { title: 'probe', ports: [{ name: 'web', port: 8080 }] });
  for (const deadline = Date.now() + 30_000; (await write(cp, 'create', probe)).verdict !== 'denied'; ) {
    if (Date.now() > deadline) throw new Error('the policies did not take effect within 30 s');
    await new Promise((resolve) => setTimeout(resolve, 250));
  }

  t.test('creates: the same verdict from the policies and the webhook', async (t) => {
    const verdicts = new Set<Verdict>();
    for (const [index, spec] of CORPUS.entries()) {
      const name = `case-${index}`;
      const byPolicies = await write(cp, 'create', service(name, POLICY_NAMESPACE, spec));
      const byWebhook = await write(cp, 'create', service(name, WEBHOOK_NAMESPACE, spec));
      verdicts.add(byWebhook.verdict);
      t.equal(byPolicies.verdict, byWebhook.verdict, `${spec.title}: ${byWebhook.verdict}`, { policies: byPolicies.output, webhook: byWebhook.output });
    }
    t.ok(verdicts.has('allowed') && verdicts.has('denied'), 'the corpus holds allowed and denied Services');
  });

  t.test('a denial names the ports and the fix', async (t) => {
    const denied = await write(cp, 'create', service('named', POLICY_NAMESPACE, { title: 'named', ports: [{ name: 'web', port: 8080 }, { name: 'admin', port: 9000 }] }));
    t.match(denied.output, /Service parity-policies\/named is not ready for the Istio mesh: \[port-protocol\] Istio cannot tell the protocol of port 8080 "web", port 9000 "admin" and will sniff it/);
    t.match(denied.output, /"tcp-" otherwise/);
  });

  t.test('updates of a stored Service: a finding already stored warns, a new one denies', async (t) => {
    const updates: { title: string; ports: PortSpec[] }[] = [
      { title: 'unchanged bad port (label added)', ports: [{ name: 'web', port: 8080 }] },
      { title: 'a second bad port added', ports: [{ name: 'web', port: 8080 }, { name: 'admin', port: 9000 }] },
      { title: 'the bad port fixed', ports: [{ name: 'http-web', port: 8080 }] },
      { title: 'the bad port renamed to another bad name', ports: [{ name: 'site', port: 8080 }] },
    ];
    const expected: Verdict[] = ['warned', 'denied', 'allowed', 'denied'];
    for (const [index, update] of updates.entries()) {
      const results = [];
      for (const namespace of [POLICY_NAMESPACE, WEBHOOK_NAMESPACE]) {
        const stored = JSON.parse((await cp.kubectl(['get', 'service', 'legacy', '-n', namespace, '-o', 'json'])).stdout) as { metadata: Record<string, unknown>; spec: Record<string, unknown> };
        const changed = {
          ...stored,
          metadata: { ...stored.metadata, labels: { ...(stored.metadata['labels'] as object), touched: 'yes' } },
          spec: { ...stored.spec, ports: update.ports.map((p) => ({ ...p, protocol: 'TCP', targetPort: p.port })) },
        };
        results.push(await write(cp, 'replace', changed));
      }
      const [byPolicies, byWebhook] = results as [{ verdict: Verdict; output: string }, { verdict: Verdict; output: string }];
      t.equal(byPolicies.verdict, byWebhook.verdict, `${update.title}: the same verdict`, { policies: byPolicies.output, webhook: byWebhook.output });
      t.equal(byWebhook.verdict, expected[index], `${update.title}: ${expected[index]}`);
    }
  });

  t.test('helm install --set mode=policies enforces the rules with no pod, and uninstall removes them', async (t) => {
    await cp.kubectl(['delete', '-f', '-'], { input: policiesYaml });
    await cp.kubectl(['delete', 'validatingwebhookconfiguration', 'mesh-admission']);
    await cp.kubectl(['create', 'namespace', 'apps']);
    // No hint knows "site", so no rename rescues it.
    const bad = service('shop', 'apps', { title: 'bad', ports: [{ name: 'site', port: 8080 }] });
    /** The verdict on `bad` once it is `expected`, or the last one after 30 s (the API server loads and drops policies a moment after they change). */
    const settled = async (expected: Verdict) => {
      let last = await write(cp, 'create', bad);
      for (const deadline = Date.now() + 30_000; last.verdict !== expected && Date.now() < deadline; ) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        last = await write(cp, 'create', bad);
      }
      return last;
    };
    t.equal((await settled('allowed')).verdict, 'allowed', 'nothing judges Services before the install');

    const helm = await run('bash', [path.join(REPO, 'scripts', 'helm.sh')], process.env);
    t.equal(helm.code, 0, helm.stderr);
    const helmBin = helm.stdout.trim().split('\n').pop()!;
    const helmEnv = { ...process.env, KUBECONFIG: cp.kubeconfigPath, HELM_CACHE_HOME: path.join(scratch, 'helm-cache'), HELM_CONFIG_HOME: path.join(scratch, 'helm-config'), HELM_DATA_HOME: path.join(scratch, 'helm-data') };
    const install = await run(helmBin, ['install', 'platform', path.join(REPO, 'charts', 'mesh-admission'), '--namespace', 'mesh-system', '--create-namespace', '--set', 'mode=policies', '--wait', '--timeout', '60s'], helmEnv);
    t.equal(install.code, 0, `helm install: ${install.stderr}`);
    const denied = await settled('denied');
    t.equal(denied.verdict, 'denied', denied.output);
    t.match(denied.output, /ValidatingAdmissionPolicy 'platform-mesh-admission-service-ports'.*Service apps\/shop is not ready for the Istio mesh: \[port-protocol\]/s);
    t.equal((await write(cp, 'create', service('good', 'apps', { title: 'good', ports: [{ name: 'http-web', port: 8080 }] }))).verdict, 'allowed');
    // The API server serves MutatingAdmissionPolicy, so the chart installed the namespace label too.
    const labelsOfNew = async () => {
      const r = await cp.kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-a' } }) });
      return (JSON.parse(r.stdout) as { metadata: { labels?: Record<string, string> } }).metadata.labels ?? {};
    };
    let labels = await labelsOfNew();
    for (const deadline = Date.now() + 30_000; labels['istio-injection'] === undefined && Date.now() < deadline; ) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      labels = await labelsOfNew();
    }
    t.equal(labels['istio-injection'], 'enabled', 'a new namespace gets istio-injection=enabled');
    const renamedPorts = async () => {
      const r = await cp.kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], { input: JSON.stringify(service('web', 'apps', { title: 'renamed', ports: [{ name: 'web', port: 8080 }] })), allowFailure: true });
      return r.code === 0 ? (JSON.parse(r.stdout) as { spec: { ports: { name: string }[] } }).spec.ports.map((p) => p.name) : [];
    };
    let ports = await renamedPorts();
    for (const deadline = Date.now() + 30_000; ports[0] !== 'http-web' && Date.now() < deadline; ) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      ports = await renamedPorts();
    }
    t.same(ports, ['http-web'], 'a port with a hint is renamed, not denied');
    const workloads = JSON.parse((await cp.kubectl(['get', 'deployments,pods,services', '-n', 'mesh-system', '-o', 'json'])).stdout) as { items: unknown[] };
    t.same(workloads.items, [], 'no Deployment, Pod or Service: nothing that can be down');

    // helm upgrade to enforcement warn: the same bad Service is now admitted with a warning.
    const upgrade = await run(helmBin, ['upgrade', 'platform', path.join(REPO, 'charts', 'mesh-admission'), '--namespace', 'mesh-system', '--reuse-values', '--set', 'config.enforcement=warn', '--wait', '--timeout', '60s'], helmEnv);
    t.equal(upgrade.code, 0, `helm upgrade: ${upgrade.stderr}`);
    const warned = await settled('warned');
    t.equal(warned.verdict, 'warned', warned.output);
    t.match(warned.output, /Warning: .*Service apps\/shop is not ready for the Istio mesh: \[port-protocol\]/);

    const uninstall = await run(helmBin, ['uninstall', 'platform', '--namespace', 'mesh-system', '--wait'], helmEnv);
    t.equal(uninstall.code, 0, uninstall.stderr);
    t.equal((await settled('allowed')).verdict, 'allowed', 'after helm uninstall nothing judges Services');
  });

  t.test('the namespace injection label: the same namespace from the MutatingAdmissionPolicy and the mutating webhook', async (t) => {
    interface NamespaceCase { readonly title: string; readonly labels?: Record<string, string> }
    const cases: readonly NamespaceCase[] = [
      { title: 'a plain namespace' },
      { title: 'opted out with istio-injection=disabled', labels: { 'istio-injection': 'disabled' } },
      { title: 'a revision chosen', labels: { 'istio.io/rev': 'canary' } },
      { title: 'ambient opted out', labels: { 'istio.io/dataplane-mode': 'none' } },
      { title: 'labelled to be ignored', labels: { 'mesh-admission.io/ignore': 'true' } },
      { title: 'other labels only', labels: { team: 'shop' } },
    ];
    const byPolicy = cases.map((_, index) => `ns-policy-${index}`);
    const byWebhook = cases.map((_, index) => `ns-webhook-${index}`);
    const configFile = path.join(scratch, 'mutations.yaml');
    await writeFile(configFile, `exemptNamespaces: [${byWebhook.join(', ')}]\n`);
    const mutating = parseAllDocuments(await runCli(['policies', '--config', configFile, '--mutations'])).map((d) => d.toJS() as { kind: string }).filter((d) => d.kind.startsWith('Mutating'));
    t.same(mutating.map((d) => `${d.kind} ${(d as unknown as { metadata: { name: string } }).metadata.name}`), [
      'MutatingAdmissionPolicy mesh-admission-service-port-names',
      'MutatingAdmissionPolicyBinding mesh-admission-service-port-names',
      'MutatingAdmissionPolicy mesh-admission-namespace-injection',
      'MutatingAdmissionPolicyBinding mesh-admission-namespace-injection',
    ]);
    await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: mutating }) });
    const webhookConfigs = await runCli(['webhook-config', '--url', `https://127.0.0.1:${webhook.port}`, '--ca-file', path.join(webhook.certDir, 'ca.crt'), ...byPolicy.flatMap((name) => ['--exclude-namespace', name])]);
    const mutatingWebhook = parseAllDocuments(webhookConfigs).map((d) => d.toJS() as { kind: string }).filter((d) => d.kind === 'MutatingWebhookConfiguration');
    await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: mutatingWebhook }) });
    t.teardown(() => cp.kubectl(['delete', 'mutatingwebhookconfiguration', 'mesh-admission', '--ignore-not-found']));

    const created = async (name: string, labels: Record<string, string> = {}) => {
      const r = await cp.kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } }), allowFailure: true });
      if (r.code !== 0) return `refused: ${r.stderr}`;
      const labelsAfter = (JSON.parse(r.stdout) as { metadata: { labels?: Record<string, string> } }).metadata.labels ?? {};
      return Object.fromEntries(Object.entries(labelsAfter).filter(([key]) => key !== 'kubernetes.io/metadata.name'));
    };
    // The policy takes effect a moment after it is created.
    for (const deadline = Date.now() + 30_000; JSON.stringify(await created(byPolicy[0]!)) !== JSON.stringify({ 'istio-injection': 'enabled' }) && Date.now() < deadline; ) {
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    for (const [index, spec] of cases.entries()) {
      const fromPolicy = await created(byPolicy[index]!, spec.labels);
      const fromWebhook = await created(byWebhook[index]!, spec.labels);
      t.same(fromPolicy, fromWebhook, `${spec.title}: ${JSON.stringify(fromWebhook)}`);
    }
    t.same(await created(byPolicy[0]!), { 'istio-injection': 'enabled' }, 'a plain namespace gets the label');
    t.same(await created('istio-system'), {}, 'istio-system is never labelled');
  });

  t.test('port renames: the same Service from the MutatingAdmissionPolicy and the mutating webhook, on create and on every redeploy', async (t) => {
    const byPolicies = 'renames-policies';
    const byWebhook = 'renames-webhook';
    for (const namespace of [byPolicies, byWebhook]) await cp.kubectl(['create', 'namespace', namespace]);
    await cp.kubectl(['delete', 'mutatingadmissionpolicies,mutatingadmissionpolicybindings', '-l', 'app.kubernetes.io/managed-by=mesh-admission']);
    const configFile = path.join(scratch, 'renames.yaml');
    await writeFile(configFile, `exemptNamespaces: [${byWebhook}]\n`);
    const policies = await runCli(['policies', '--config', configFile, '--mutations']);
    await cp.kubectl(['apply', '-f', '-'], { input: policies });
    t.teardown(() => cp.kubectl(['delete', '-f', '-'], { input: policies }));
    const configurations = await runCli(['webhook-config', '--url', `https://127.0.0.1:${webhook.port}`, '--ca-file', path.join(webhook.certDir, 'ca.crt'), '--exclude-namespace', byPolicies]);
    await cp.kubectl(['apply', '-f', '-'], { input: configurations });
    t.teardown(() => cp.kubectl(['delete', 'mutatingwebhookconfiguration,validatingwebhookconfiguration', 'mesh-admission', '--ignore-not-found']));

    interface Written { readonly verdict: Verdict; readonly ports: string; readonly output: string }
    const portsOf = (json: string) => JSON.stringify((JSON.parse(json) as { spec: { ports?: { name?: string; port: number; protocol: string }[] } }).spec.ports?.map((p) => [p.name ?? '', p.port, p.protocol]) ?? []);
    /** A write through kubectl: the verdict and the ports the API server answers with. */
    const written = async (args: string[], object: Record<string, unknown>): Promise<Written> => {
      const r = await cp.kubectl([...args, '-o', 'json', '-f', '-'], { input: JSON.stringify(object), allowFailure: true });
      const output = `${r.stdout}${r.stderr}`.trim();
      if (r.code !== 0) return { verdict: 'denied', ports: '', output };
      return { verdict: /^Warning: /m.test(r.stderr) ? 'warned' : 'allowed', ports: portsOf(r.stdout), output };
    };
    /**
     * The same ports, and denied by both or by neither. A policy cannot return warnings, so where
     * the webhook explains each rename in a warning the policy renames silently.
     */
    const sameOutcome = (t: Test, title: string, fromPolicies: Written, fromWebhook: Written) => {
      const outcome = (w: Written) => (w.verdict === 'denied' ? 'denied' : `admitted ${w.ports}`);
      t.equal(outcome(fromPolicies), outcome(fromWebhook), `${title}: ${outcome(fromWebhook).slice(0, 300)}`, { policies: fromPolicies.output.slice(0, 2000), webhook: fromWebhook.output.slice(0, 2000) });
      if (fromWebhook.verdict === 'warned') t.match(fromWebhook.output, /Warning: .*(renamed|named the unnamed port|kept)/, `${title}: the webhook explains the rename`);
    };
    const renamed = (namespace: string, name: string, ports: readonly PortSpec[]) => service(name, namespace, { title: name, ports });
    // The policies take effect a moment after they are created.
    const probe = (namespace: string) => written(['create', '--dry-run=server'], renamed(namespace, 'probe', [{ name: 'web', port: 8080 }]));
    for (const deadline = Date.now() + 30_000; (await probe(byPolicies)).ports !== JSON.stringify([['http-web', 8080, 'TCP']]); ) {
      if (Date.now() > deadline) throw new Error('the port rename policy did not take effect within 30 s');
      await new Promise((resolve) => setTimeout(resolve, 250));
    }

    const cases: { title: string; ports: PortSpec[] }[] = [
      { title: 'a name hint', ports: [{ name: 'web', port: 8080 }, { name: 'db', port: 5432 }] },
      { title: 'an unnamed port, by its number', ports: [{ port: 80 }] },
      { title: "the name's first word", ports: [{ name: 'metrics-app', port: 9102 }] },
      { title: 'the preferred name taken', ports: [{ name: 'http-web', port: 81 }, { name: 'web', port: 8080 }] },
      { title: 'grpc read as grpc-web is skipped', ports: [{ name: 'webby', port: 50051 }] },
      { title: 'a name too long for the prefix', ports: [{ name: `admin-${'x'.repeat(55)}`, port: 9000 }] },
      { title: 'no hint: left for validation to deny', ports: [{ name: 'foo', port: 7000 }] },
      { title: 'an unknown appProtocol is not renamed', ports: [{ name: 'web', port: 8080, appProtocol: 'web' }] },
      { title: 'UDP and classified ports stay', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'grpc-api', port: 9090 }] },
      { title: 'capitals in the hint match', ports: [{ name: 'admin', port: 9000 }, { name: 'www-2', port: 8081 }] },
    ];
    // As many ports as the webhook judges: the policies must stay within the API server's CEL cost limits.
    const many = (name: (i: number) => string) => Array.from({ length: 1000 }, (_, i) => ({ name: name(i), port: 2000 + i }));
    cases.push(
      { title: '1,000 ports to rename', ports: many((i) => `web-${i}`) },
      { title: '1,000 ports without a hint', ports: many((i) => `site-${i}`) },
      { title: '1,000 prefixed ports', ports: many((i) => `http-${i}`) },
    );
    const verdicts = new Set<Verdict>();
    for (const [index, spec] of cases.entries()) {
      const fromPolicies = await written(['create', '--dry-run=server'], renamed(byPolicies, `case-${index}`, spec.ports));
      const fromWebhook = await written(['create', '--dry-run=server'], renamed(byWebhook, `case-${index}`, spec.ports));
      verdicts.add(fromWebhook.verdict);
      sameOutcome(t, spec.title, fromPolicies, fromWebhook);
    }
    t.ok(verdicts.has('denied') && [...verdicts].some((v) => v !== 'denied'), 'renamed and denied Services both occur');

    // A GitOps-style lifecycle with server-side apply: each step applies the manifest as written.
    const lifecycle: { title: string; ports: PortSpec[] }[] = [
      { title: 'first apply: renamed', ports: [{ name: 'http-web', port: 81 }, { name: 'web', port: 8080 }, { name: 'admin', port: 9000 }] },
      { title: 'the same manifest again: the stored names stay', ports: [{ name: 'http-web', port: 81 }, { name: 'web', port: 8080 }, { name: 'admin', port: 9000 }] },
      { title: 'the colliding port removed: the renamed port keeps the name it was given', ports: [{ name: 'web', port: 8080 }, { name: 'admin', port: 9000 }] },
      { title: 'a port renamed in the manifest to a name without a hint: denied', ports: [{ name: 'web', port: 8080 }, { name: 'site', port: 9000 }] },
      { title: 'a new port added beside the renamed ones', ports: [{ name: 'web', port: 8080 }, { name: 'admin', port: 9000 }, { name: 'api', port: 9001 }] },
    ];
    for (const step of lifecycle) {
      const results = [];
      for (const namespace of [byPolicies, byWebhook]) {
        results.push(await written(['apply', '--server-side', '--field-manager', 'gitops'], renamed(namespace, 'redeployed', step.ports)));
      }
      const [fromPolicies, fromWebhook] = results as [Written, Written];
      sameOutcome(t, step.title, fromPolicies, fromWebhook);
    }
    for (const title of ['a Service of 1,000 ports applied', 'and applied again']) {
      const results = [];
      for (const namespace of [byPolicies, byWebhook]) results.push(await written(['apply', '--server-side', '--field-manager', 'gitops'], renamed(namespace, 'big', many((i) => `web-${i}`))));
      sameOutcome(t, title, results[0]!, results[1]!);
    }
    const stored = JSON.parse((await cp.kubectl(['get', 'service', 'redeployed', '-n', byPolicies, '-o', 'json'])).stdout) as { spec: { ports: { name: string }[] } };
    t.same(stored.spec.ports.map((p) => p.name), ['http-8080', 'http-admin', 'http-api'], 'the names given on the first apply survive every redeploy');
  });

}
