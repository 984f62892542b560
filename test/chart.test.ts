/**
 * The Helm chart: `helm lint`, and `helm template` for every certificate mode with traffic
 * checks on and off, each rendering checked against the invariants of a production install
 * (see charts/mesh-admission/README.md). Helm comes from scripts/helm.sh (cached download).
 * Installing against a real API server is in test/e2e/helm.e2e.ts.
 */
import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { pino } from 'pino';
import { buildConfig, SETTING_FLAGS, type Config } from '../src/config.ts';
import { CLUSTER_READER_ROLE, CLUSTER_READER_RULES } from '../src/kube/api-refusal.ts';
import { webhookConfigurations, MUTATING_WEBHOOK_NAME, OPT_OUT_LABEL, POD_WEBHOOKS, SYSTEM_NAMESPACES, VALIDATING_WEBHOOK_NAME } from '../src/webhook-config.ts';
import { startServer } from '../src/server.ts';
import { plannedWebhooks } from '../src/kube/webhook-installation.ts';
import { CLUSTER_READS } from '../src/policies/registry.ts';
import { validatingPolicies } from '../src/cel/validating-policies.ts';
import { mutatingPolicies } from '../src/cel/mutating-policies.ts';
import { CHART_POLICIES_TEMPLATE, chartPoliciesTemplate } from '../src/cel/chart-template.ts';
import { REPORT_APIS, REPORT_FORMATS } from '../src/check/policy-reports.ts';
import { REPORT_WRITER_ROLE, reportWriterRule } from '../src/kube/report-writer.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CHART = path.join(REPO, 'charts', 'mesh-admission');
// helm comes from scripts/helm.sh: installed by `npm ci`, downloaded here only if that failed.
t.setTimeout(120_000);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { maxBuffer: 32 * 1024 * 1024, env: options.env ?? process.env, timeout: 120_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? ((error as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const helmLookup = await run('bash', [path.join(REPO, 'scripts', 'helm.sh')]);
const HELM = helmLookup.stdout.trim().split('\n').pop() ?? '';
if (helmLookup.code !== 0 || !HELM) {
  t.fail(`scripts/helm.sh could not provide helm: ${helmLookup.stderr}`);
  process.exit(1);
}

type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }; [key: string]: any };

/** The chart renders only with an image repository; tests use one that names a registry. */
const IMAGE = { 'image.repository': 'registry.example/mesh-admission' };

async function template(sets: Record<string, string>, opts: { namespace?: string; release?: string; extraArgs?: string[] } = {}): Promise<K8sObject[]> {
  const args = ['template', opts.release ?? 'mesh-admission', CHART, '--namespace', opts.namespace ?? 'mesh-system'];
  for (const [key, value] of Object.entries({ ...IMAGE, ...sets })) args.push('--set', `${key}=${value}`);
  args.push(...(opts.extraArgs ?? []));
  const result = await run(HELM, args);
  if (result.code !== 0) throw new Error(`helm ${args.join(' ')} failed:\n${result.stderr}`);
  const docs = parseAllDocuments(result.stdout);
  for (const doc of docs) if (doc.errors.length > 0) throw new Error(`unparsable YAML from helm template: ${doc.errors[0]}`);
  return docs.map((doc) => doc.toJS()).filter((object): object is K8sObject => object !== null && typeof object === 'object');
}

function find(objects: readonly K8sObject[], kind: string, name?: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
}

function one(objects: readonly K8sObject[], kind: string, name?: string): K8sObject {
  const found = find(objects, kind, name);
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  return found[0]!;
}

/** The webhooks a rendered configuration plans: what a serving replica installs. */
function planned(config: K8sObject): any[] {
  return plannedWebhooks(config) ?? [];
}

function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.keys(selector).length > 0 && Object.entries(selector).every(([key, value]) => labels[key] === value);
}

/** `--flag=value` arguments as a record, as `serve` parses them. */
function flagsOf(args: readonly string[]): Record<string, string> {
  const flags: Record<string, string> = {};
  for (const arg of args) {
    const match = /^--([^=]+)=(.*)$/.exec(arg);
    if (match) flags[match[1]!] = match[2]!;
  }
  return flags;
}

interface Variant {
  readonly name: string;
  readonly sets: Record<string, string>;
  readonly mode: 'self' | 'cert-manager' | 'helm';
  readonly traffic: boolean;
  readonly namespace?: string;
  readonly release?: string;
}

const VARIANTS: Variant[] = [
  { name: 'defaults (self, no traffic checks)', sets: {}, mode: 'self', traffic: false },
  { name: 'self + traffic checks', sets: { 'trafficChecks.enabled': 'true' }, mode: 'self', traffic: true },
  { name: 'cert-manager', sets: { 'certificates.mode': 'cert-manager' }, mode: 'cert-manager', traffic: false },
  { name: 'cert-manager + traffic checks', sets: { 'certificates.mode': 'cert-manager', 'trafficChecks.enabled': 'true' }, mode: 'cert-manager', traffic: true },
  { name: 'helm', sets: { 'certificates.mode': 'helm' }, mode: 'helm', traffic: false, namespace: 'platform', release: 'edge' },
  { name: 'helm + traffic checks', sets: { 'certificates.mode': 'helm', 'trafficChecks.enabled': 'true' }, mode: 'helm', traffic: true },
];

const rendered = await Promise.all(VARIANTS.map((variant) => template(variant.sets, { namespace: variant.namespace, release: variant.release })));

t.test('helm lint passes (strict) for every certificate mode', async (t) => {
  for (const mode of ['self', 'cert-manager', 'helm']) {
    const result = await run(HELM, ['lint', CHART, '--strict', '--set', `image.repository=${IMAGE['image.repository']}`, '--set', `certificates.mode=${mode}`, '--set', 'trafficChecks.enabled=true', '--set', 'holdApplicationUntilProxyStarts.enabled=true']);
    t.equal(result.code, 0, `helm lint --strict (${mode}): ${result.stdout}${result.stderr}`);
  }
});

for (const [index, variant] of VARIANTS.entries()) {
  const objects = rendered[index]!;
  const namespace = variant.namespace ?? 'mesh-system';
  const fullname = variant.release === 'edge' ? 'edge-mesh-admission' : 'mesh-admission';
  const secretName = variant.mode === 'self' ? `${fullname}-self-tls` : `${fullname}-tls`;

  t.test(`${variant.name}: every invariant of a production install`, async (t) => {
    const deployment = one(objects, 'Deployment', fullname);
    const pod = deployment.spec.template;
    const podLabels = pod.metadata.labels;
    const container = pod.spec.containers[0];
    const containerPort = (name: string): number => container.ports.find((p: any) => p.name === name)?.containerPort;

    t.test('Deployment: replicas, spreading, priority, resources', async (t) => {
      t.equal(deployment.spec.replicas, 2, '2 replicas');
      t.ok(matches(deployment.spec.selector.matchLabels, podLabels), 'the selector matches the pod labels');
      const spread = pod.spec.topologySpreadConstraints;
      t.ok(Array.isArray(spread) && spread.length > 0, 'topologySpreadConstraints');
      for (const constraint of spread) t.ok(matches(constraint.labelSelector.matchLabels, podLabels), `spread over ${constraint.topologyKey} selects the webhook pods`);
      t.same(spread.map((c: any) => c.topologyKey), ['kubernetes.io/hostname', 'topology.kubernetes.io/zone']);
      t.equal(deployment.spec.strategy.rollingUpdate.maxUnavailable, 0, 'rollouts never drop below the replica count');
      t.notOk('priorityClassName' in pod.spec, 'no priorityClassName unless configured');
      for (const kind of ['requests', 'limits']) {
        t.ok(container.resources[kind]?.cpu && container.resources[kind]?.memory, `resources.${kind} has cpu and memory`);
      }
    });

    t.test('security context: non-root numeric user, read-only root, no privileges', async (t) => {
      const podSecurity = pod.spec.securityContext;
      const security = container.securityContext;
      t.equal(podSecurity.runAsNonRoot, true);
      t.equal(security.runAsNonRoot, true);
      t.ok(Number.isInteger(security.runAsUser) && security.runAsUser > 0, 'numeric non-zero runAsUser');
      t.equal(security.readOnlyRootFilesystem, true);
      t.equal(security.allowPrivilegeEscalation, false);
      t.same(security.capabilities.drop, ['ALL']);
      t.equal(podSecurity.seccompProfile.type, 'RuntimeDefault');
      t.equal(security.seccompProfile.type, 'RuntimeDefault');
      t.notOk(container.securityContext.capabilities.add, 'no capability added');
    });

    t.test('probes on the probe port 9090', async (t) => {
      t.equal(containerPort('probes'), 9090);
      t.same(container.livenessProbe.httpGet, { path: '/healthz', port: 'probes' });
      t.same(container.readinessProbe.httpGet, { path: '/readyz', port: 'probes' });
      t.equal(flagsOf(container.args)['probe-port'], '9090', 'the webhook listens for probes on that port');
    });

    t.test('arguments, environment and volumes', async (t) => {
      t.equal(container.args[0], 'serve');
      const flags = flagsOf(container.args);
      const service = one(objects, 'Service');
      t.equal(flags['service-name'], service.metadata.name, '--service-name is the chart Service name');
      const env = container.env.find((e: any) => e.name === 'MESH_ADMISSION_NAMESPACE');
      t.same(env?.valueFrom, { fieldRef: { fieldPath: 'metadata.namespace' } }, 'namespace from the downward API');
      const mounts = Object.fromEntries(container.volumeMounts.map((m: any) => [m.mountPath, m]));
      const volumes = Object.fromEntries(pod.spec.volumes.map((v: any) => [v.name, v]));
      t.same(volumes[mounts['/tmp'].name].emptyDir, { sizeLimit: '64Mi' }, 'an emptyDir /tmp');
      const certMount = mounts[flags['cert-dir']!];
      t.ok(certMount, 'the cert dir is a mounted volume');
      const certVolume = volumes[certMount.name];
      if (variant.mode === 'self') {
        t.ok(certVolume.emptyDir, 'self mode: the cert dir is an emptyDir the webhook fills');
        t.equal(certMount.readOnly, false);
        t.equal(flags['cert-secret'], secretName);
      } else {
        t.equal(certVolume.secret.secretName, secretName, 'the certificate Secret is mounted as the cert dir');
        t.equal(certMount.readOnly, true);
        t.notOk(flags['cert-secret'], 'no Secret store outside self mode');
      }
      t.equal(flags['register-validating'], fullname, 'every mode installs the webhooks and publishes the caBundle');
      t.equal(flags['register-mutating'], fullname);
      const podIps = container.env.find((e: any) => e.name === 'MESH_ADMISSION_POD_IPS');
      t.same(podIps?.valueFrom, { fieldRef: { fieldPath: 'status.podIPs' } }, 'the pod IPs from the downward API: installed once the Service routes to the pod');
      const configMount = Object.values(mounts).find((m: any) => flags['config']!.startsWith(`${m.mountPath}/`)) as any;
      t.ok(configMount, '--config points into a mounted volume');
      t.equal(volumes[configMount.name].configMap.name, one(objects, 'ConfigMap').metadata.name, '... the policy ConfigMap');
      t.equal(pod.spec.automountServiceAccountToken, true, 'the API token: every replica installs the webhooks');
    });

    t.test('the ConfigMap is a config file buildConfig accepts, and with the pod flags gives the intended config', async (t) => {
      const configMap = one(objects, 'ConfigMap');
      const text = configMap.data['config.yaml'];
      const flags = flagsOf(container.args);
      delete flags['config'];
      for (const flag of Object.keys(flags)) t.ok(SETTING_FLAGS.includes(flag), `--${flag} is a serve setting`);
      let config: Config | undefined;
      t.doesNotThrow(() => {
        config = buildConfig({ flags, env: { MESH_ADMISSION_NAMESPACE: namespace }, file: { path: 'config.yaml', text } });
      });
      t.equal(config?.enforcement, 'deny');
      t.equal(config?.injection.mode, 'istio-injection');
      t.equal(config?.namespace, namespace);
      t.equal(config?.serviceName, fullname);
      t.equal(config?.port, 8443);
      t.equal(config?.certificates.secretName, variant.mode === 'self' ? secretName : undefined);
      t.equal(config?.registration.validatingWebhook, fullname);
      t.equal(config?.registration.mutatingWebhook, fullname);
      t.equal(config?.certificates.renewBeforeDays, variant.mode === 'self' ? 30 : 1, 'mounted certificates are never renewed by the webhook');
      t.equal(config?.trafficChecks, variant.traffic, 'trafficChecks turns the cluster-aware checks on in the webhook too');
      t.equal(pod.metadata.annotations['checksum/config']?.length, 64, 'a config change rolls the pods');
    });

    t.test('Service 443 -> 8443, ServiceAccount, PodDisruptionBudget', async (t) => {
      const service = one(objects, 'Service', fullname);
      const port = service.spec.ports[0];
      t.equal(port.port, 443);
      t.equal(containerPort(port.targetPort), 8443, 'the target port is the container HTTPS port 8443');
      t.equal(flagsOf(container.args)['port'], '8443');
      t.ok(matches(service.spec.selector, podLabels), 'the Service selects the webhook pods');
      t.match(port.name, /^https(-|$)/, 'the port name carries the Istio protocol (the webhook would demand it)');
      const account = one(objects, 'ServiceAccount');
      t.equal(pod.spec.serviceAccountName, account.metadata.name);
      const pdb = one(objects, 'PodDisruptionBudget');
      t.equal(pdb.spec.minAvailable, 1);
      t.ok(matches(pdb.spec.selector.matchLabels, podLabels), 'the PDB covers the webhook pods');
    });

    t.test('RBAC: least privilege, by name, no wildcards', async (t) => {
      // The audit and report-writer roles are for people, not the webhook: checked on their own below.
      const peoplesRoles = [one(objects, 'ClusterRole', `${fullname}-audit`), one(objects, 'ClusterRole', `${fullname}-report-writer`)];
      const roles = [...find(objects, 'ClusterRole'), ...find(objects, 'Role')].filter((role) => !peoplesRoles.includes(role));
      const rules = roles.flatMap((role) => role.rules.map((rule: any) => ({ role: role.kind, ...rule })));
      const texts = JSON.stringify(rules);
      t.notMatch(texts, /\*/, "no '*' in any rule");
      const allows = (group: string, resource: string, verb: string) =>
        rules.filter((r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb));
      for (const resource of ['validatingwebhookconfigurations', 'mutatingwebhookconfigurations']) {
        const patch = allows('admissionregistration.k8s.io', resource, 'patch');
        t.equal(patch.length, 1, `the webhook may patch ${resource}`);
        t.same(patch[0].resourceNames, [fullname], '... only its own, by resourceNames');
        t.same(patch[0].verbs.sort(), ['get', 'patch']);
        t.equal(patch[0].role, 'ClusterRole');
      }
      const slices = allows('discovery.k8s.io', 'endpointslices', 'list');
      t.equal(slices.length, 1, 'EndpointSlices may be listed (is the Service routing to the replica?)');
      t.same(slices[0].verbs, ['list'], '... listed only');
      t.equal(slices[0].role, 'Role', '... in the release namespace only');
      const secretRules = rules.filter((r) => r.resources.includes('secrets'));
      if (variant.mode === 'self') {
        const byName = secretRules.find((r) => r.resourceNames);
        t.same(byName.resourceNames, [secretName], 'get/update of its own Secret by name');
        t.same(byName.verbs.sort(), ['get', 'update']);
        const create = secretRules.find((r) => r.verbs.includes('create'));
        t.same(create.verbs, ['create'], 'create alone (it cannot be limited by name)');
        t.ok(secretRules.every((r) => r.role === 'Role'), 'Secret access is namespaced (Role)');
        t.notOk(secretRules.some((r) => r.verbs.includes('list') || r.verbs.includes('watch')), 'Secrets are never listed');
      } else {
        t.equal(secretRules.length, 0, 'no Secret access outside self mode');
      }
      // What the policies read from the cluster (the registry), listed and watched only with traffic checks.
      for (const kind of CLUSTER_READS) {
        const readable = allows(kind.group, kind.resource, 'list').length > 0 && allows(kind.group, kind.resource, 'watch').length > 0;
        t.equal(readable, variant.traffic, `list/watch ${kind.resource} only with traffic checks`);
      }
      t.equal(allows('', 'namespaces', 'list').length, 0, 'namespaces are never listed');
      for (const format of REPORT_FORMATS) {
        const { group, namespaced } = REPORT_APIS[format];
        t.equal(allows(group, namespaced.plural, 'create').length, 0, `no ${namespaced.kind} writes without reports.interval`);
      }
      for (const binding of [...find(objects, 'ClusterRoleBinding'), ...find(objects, 'RoleBinding')]) {
        t.same(binding.subjects, [{ kind: 'ServiceAccount', name: pod.spec.serviceAccountName, namespace }], `${binding.kind} binds the webhook ServiceAccount only`);
        t.ok(roles.some((r) => r.kind === binding.roleRef.kind && r.metadata.name === binding.roleRef.name), `${binding.kind} refers to a rendered role`);
      }
    });

    t.test('the audit ClusterRole: what audit and check --cluster read, bound to nobody', async (t) => {
      const auditRole = one(objects, 'ClusterRole', `${fullname}-audit`);
      t.same(auditRole.rules, CLUSTER_READER_RULES, 'exactly the rules the "forbidden" message of audit and check --cluster states');
      t.notMatch(JSON.stringify(auditRole.rules), /watch|get|create|update|patch|delete|\*/, 'list only');
      const bindings = [...find(objects, 'ClusterRoleBinding'), ...find(objects, 'RoleBinding')];
      t.notOk(bindings.some((binding) => binding.roleRef.name === auditRole.metadata.name), 'the chart binds it to no one');
      if (fullname === 'mesh-admission') t.equal(auditRole.metadata.name, CLUSTER_READER_ROLE, 'the name the message gives, for the default release');
    });

    t.test('the report-writer ClusterRole: what audit --write-reports writes, either format, bound to nobody', async (t) => {
      const writerRole = one(objects, 'ClusterRole', `${fullname}-report-writer`);
      t.same(writerRole.rules, REPORT_FORMATS.map(reportWriterRule), 'exactly the calls of the report writer, on both formats\' reports');
      t.notMatch(JSON.stringify(writerRole.rules), /"get"|"watch"|"patch"|\*/, 'nothing the writer does not call');
      const bindings = [...find(objects, 'ClusterRoleBinding'), ...find(objects, 'RoleBinding')];
      t.notOk(bindings.some((binding) => binding.roleRef.name === writerRole.metadata.name), 'the chart binds it to no one');
      if (fullname === 'mesh-admission') t.equal(writerRole.metadata.name, REPORT_WRITER_ROLE, 'the name the writer\'s "forbidden" message gives, for the default release');
    });

    t.test('webhook configurations mirror src/webhook-config.ts', async (t) => {
      const validating = one(objects, 'ValidatingWebhookConfiguration', fullname);
      const mutating = one(objects, 'MutatingWebhookConfiguration', fullname);
      const reference = webhookConfigurations({ url: 'https://x', caPem: 'x', name: 'x', failurePolicy: 'Fail', timeoutSeconds: 5, excludedNamespaces: [], trafficChecks: variant.traffic });
      const [refValidating, refMutating] = reference as [any, any];
      const checks: [any, any, string, string][] = [
        [validating, refValidating, VALIDATING_WEBHOOK_NAME, '/validate'],
        [mutating, refMutating, MUTATING_WEBHOOK_NAME, '/mutate'],
      ];
      for (const [config, ref, webhookName, urlPath] of checks) {
        t.same(config.webhooks, [], 'no webhooks at install: nothing is called until a replica serves');
        t.equal(planned(config).length, 1, 'one webhook planned');
        const webhook = planned(config)[0];
        const refHook = ref.webhooks[0];
        t.equal(webhook.name, webhookName);
        t.equal(webhook.sideEffects, 'None');
        t.same(webhook.admissionReviewVersions, ['v1']);
        t.equal(webhook.timeoutSeconds, 5);
        t.equal(webhook.failurePolicy, 'Fail');
        t.equal(webhook.matchPolicy, refHook.matchPolicy);
        t.equal(webhook.reinvocationPolicy, refHook.reinvocationPolicy);
        t.same(webhook.clientConfig.service, { name: fullname, namespace, path: urlPath, port: 443 }, 'calls the chart Service');
        t.same(webhook.rules, refHook.rules, 'the same rules as webhook-config.ts');
        const istioRules = webhook.rules.filter((r: any) => r.apiGroups.includes('networking.istio.io'));
        if (variant.traffic && config.kind === 'ValidatingWebhookConfiguration') {
          t.equal(istioRules.length, 1);
          t.same(istioRules[0].resources, ['gateways', 'virtualservices', 'destinationrules']);
          t.same(istioRules[0].operations, ['CREATE', 'UPDATE']);
        } else {
          t.equal(istioRules.length, 0, 'no Istio rules');
        }
        const selector = webhook.namespaceSelector.matchExpressions[0];
        t.equal(selector.key, 'kubernetes.io/metadata.name');
        t.equal(selector.operator, 'NotIn');
        for (const ns of [...SYSTEM_NAMESPACES, namespace]) t.ok(selector.values.includes(ns), `namespace ${ns} is excluded`);
        t.same(webhook.objectSelector, { matchExpressions: [{ key: OPT_OUT_LABEL, operator: 'NotIn', values: ['true'] }] }, 'the opt-out label');
        t.notOk(webhook.clientConfig.caBundle, 'no caBundle planned: the installing replica adds its own');
        t.notOk(config.metadata.annotations['cert-manager.io/inject-ca-from'], 'no second writer of the caBundle');
        if (variant.mode === 'cert-manager') t.equal(one(objects, 'Certificate', fullname).spec.secretName, secretName, 'the Certificate\'s Secret is the mounted cert dir (its ca.crt becomes the caBundle)');
      }
    });

    if (variant.mode === 'helm') {
      t.test('helm mode: a TLS Secret with a CA and a serving certificate for the Service', async (t) => {
        const secret = one(objects, 'Secret', secretName);
        t.equal(secret.type, 'kubernetes.io/tls');
        const decode = (key: string) => Buffer.from(secret.data[key], 'base64').toString('utf8');
        const ca = new X509Certificate(decode('ca.crt'));
        const leaf = new X509Certificate(decode('tls.crt'));
        t.ok(ca.ca, 'ca.crt is a CA');
        t.ok(leaf.checkIssued(ca) && leaf.verify(ca.publicKey), 'tls.crt is signed by ca.crt');
        t.ok(leaf.checkPrivateKey(createPrivateKey(decode('tls.key'))), 'tls.key belongs to tls.crt');
        t.equal(leaf.checkHost(`${fullname}.${namespace}.svc`, { subject: 'never' }), `${fullname}.${namespace}.svc`, 'SAN covers <service>.<namespace>.svc');
        t.ok(leaf.validToDate.getTime() - Date.now() > 3000 * 24 * 3600 * 1000, 'valid ~10 years');
      });
    }

    if (variant.mode === 'cert-manager') {
      t.test('cert-manager mode: a self-signed CA chain and the serving Certificate', async (t) => {
        const issuers = find(objects, 'Issuer');
        t.same(issuers.map((i) => i.metadata.name).sort(), [`${fullname}-ca`, `${fullname}-selfsigned`]);
        const ca = one(objects, 'Certificate', `${fullname}-ca`);
        t.equal(ca.spec.isCA, true);
        t.equal(ca.spec.issuerRef.name, `${fullname}-selfsigned`);
        t.equal(one(objects, 'Issuer', `${fullname}-ca`).spec.ca.secretName, ca.spec.secretName, 'the CA issuer signs with the CA certificate');
        const serving = one(objects, 'Certificate', fullname);
        t.same(serving.spec.dnsNames, [`${fullname}.${namespace}.svc`, `${fullname}.${namespace}.svc.cluster.local`]);
        t.equal(serving.spec.issuerRef.name, `${fullname}-ca`);
        t.ok(serving.spec.usages.includes('server auth'));
        t.equal(find(objects, 'Secret').length, 0, 'cert-manager writes the Secret, not Helm');
      });
    }

    t.test('the helm test pod follows the same security rules and reads the CA from the Secret', async (t) => {
      const testPod = one(objects, 'Pod', `${fullname}-test`);
      t.equal(testPod.metadata.annotations?.['helm.sh/hook'], 'test');
      t.equal(testPod.metadata.annotations?.['helm.sh/hook-delete-policy'], 'before-hook-creation,hook-succeeded,hook-failed', 'deleted pass or fail: nothing left after helm uninstall');
      t.same(testPod.spec.securityContext, pod.spec.securityContext, 'pod securityContext as the webhook');
      t.same(testPod.spec.containers[0].securityContext, container.securityContext, 'container securityContext as the webhook');
      t.equal(testPod.spec.volumes[0].secret.secretName, secretName, 'ca.crt of the certificate Secret');
      const env = Object.fromEntries(testPod.spec.containers[0].env.map((e: any) => [e.name, e.value]));
      t.equal(env['WEBHOOK_URL'], `https://${fullname}.${namespace}.svc:443`, 'through the Service, by the name the API server uses');
    });
  });
}

t.test('auditRole.enabled=false leaves the audit and report-writer ClusterRoles out', async (t) => {
  const objects = await template({ 'auditRole.enabled': 'false' });
  t.same(find(objects, 'ClusterRole').map((role) => role.metadata.name), ['mesh-admission'], 'only the webhook\'s own');
});

t.test('reports.interval: off by default; on, serve gets the flags and its ServiceAccount what the audit reads and the writer writes', async (t) => {
  const serveArgs = (objects: readonly K8sObject[]) => one(objects, 'Deployment').spec.template.spec.containers[0].args as string[];
  const off = await template({});
  t.notOk(serveArgs(off).some((arg) => arg.startsWith('--report-')), 'no report flags by default');
  t.same(find(off, 'ClusterRole', 'mesh-admission-reports'), [], 'no reports role by default');

  for (const format of REPORT_FORMATS) {
    const objects = await template({ 'reports.interval': '10m', 'reports.format': format, 'auditRole.enabled': 'false' });
    const flags = flagsOf(serveArgs(objects));
    t.equal(flags['report-interval'], '10m');
    t.equal(flags['report-format'], format);
    const configMap = one(objects, 'ConfigMap');
    delete flags['config'];
    const config = buildConfig({ flags, env: { MESH_ADMISSION_NAMESPACE: 'mesh-system' }, file: { path: 'config.yaml', text: configMap.data['config.yaml'] } });
    t.same(config.reports, { intervalMs: 600_000, format }, `serve reads them as every 10 minutes, ${format}`);

    const role = one(objects, 'ClusterRole', 'mesh-admission-reports');
    t.same(role.rules, [...CLUSTER_READER_RULES, reportWriterRule(format)], `${format}: the audit's reads and the writer's calls on this format's reports, nothing else`);
    t.notMatch(JSON.stringify(role.rules), /\*/, 'no wildcards');
    const binding = one(objects, 'ClusterRoleBinding', 'mesh-admission-reports');
    t.same(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'mesh-admission-reports' });
    const account = one(objects, 'Deployment').spec.template.spec.serviceAccountName;
    t.same(binding.subjects, [{ kind: 'ServiceAccount', name: account, namespace: 'mesh-system' }], 'bound to the webhook\'s ServiceAccount');
    const other = REPORT_APIS[REPORT_FORMATS.find((f) => f !== format)!];
    const granted = [...find(objects, 'ClusterRole'), ...find(objects, 'Role')].flatMap((r) => r.rules);
    t.notOk(granted.some((rule: any) => rule.apiGroups.includes(other.group)), `nothing on ${other.group}`);
  }
});

t.test('tests.keepFailedPod keeps a failed helm test pod for its logs', async (t) => {
  const objects = await template({ 'tests.keepFailedPod': 'true' });
  t.equal(one(objects, 'Pod', 'mesh-admission-test').metadata.annotations?.['helm.sh/hook-delete-policy'], 'before-hook-creation,hook-succeeded');
});

t.test('self mode names, exclusions and options', async (t) => {
  const objects = await template(
    {
      priorityClassName: 'system-cluster-critical',
      'webhook.excludedNamespaces[0]': 'legacy',
      'config.exemptNamespaces[0]': 'sandbox',
      'webhook.failurePolicy': 'Ignore',
      'webhook.timeoutSeconds': '10',
      'config.enforcement': 'warn',
      'config.mutation.defaultProtocol': 'tcp',
      'config.mutation.portHints.8080': 'http',
      'config.injection.mode': 'revision',
      'config.injection.revision': '1-24',
      'podDisruptionBudget.enabled': 'false',
    },
    { release: 'platform-mesh-admission', namespace: 'platform' },
  );
  const deployment = one(objects, 'Deployment', 'platform-mesh-admission');
  t.equal(deployment.spec.template.spec.priorityClassName, 'system-cluster-critical', 'configurable priorityClassName');
  t.equal(find(objects, 'PodDisruptionBudget').length, 0, 'the PDB can be turned off');
  for (const kind of ['ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration']) {
    const webhook = planned(one(objects, kind))[0];
    t.same(webhook.namespaceSelector.matchExpressions[0].values, [...SYSTEM_NAMESPACES, 'platform', 'legacy', 'sandbox'], `${kind}: system, release and configured namespaces`);
    t.equal(webhook.failurePolicy, 'Ignore');
    t.equal(webhook.timeoutSeconds, 10);
  }
  const config = buildConfig({ file: { path: 'config.yaml', text: one(objects, 'ConfigMap').data['config.yaml'] } });
  t.equal(config.enforcement, 'warn');
  t.same(config.exemptNamespaces, ['sandbox']);
  t.equal(config.mutation.defaultProtocol, 'tcp');
  t.same(config.mutation.portHints, { '8080': 'http' }, 'a hint table replaces the built-in one');
  t.equal(config.injection.revision, '1-24');
});

t.test('holdApplicationUntilProxyStarts: off, no Pod rules; on, the Pod webhooks of injected namespaces and the setting', async (t) => {
  const podRules = (objects: K8sObject[]) =>
    [...find(objects, 'MutatingWebhookConfiguration'), ...find(objects, 'ValidatingWebhookConfiguration')]
      .flatMap((config) => planned(config))
      .filter((webhook: any) => webhook.rules.some((rule: any) => rule.resources.includes('pods')));
  for (const [index, variant] of VARIANTS.entries()) {
    t.equal(podRules(rendered[index]!).length, 0, `${variant.name}: no Pod rules by default`);
    const config = buildConfig({ file: { path: 'config.yaml', text: one(rendered[index]!, 'ConfigMap').data['config.yaml'] } });
    t.equal(config.holdApplicationUntilProxyStarts, false);
  }

  for (const mode of ['self', 'helm'] as const) {
    const objects = await template({ 'holdApplicationUntilProxyStarts.enabled': 'true', 'certificates.mode': mode, 'webhook.excludedNamespaces[0]': 'legacy' });
    const mutating = one(objects, 'MutatingWebhookConfiguration');
    t.equal(planned(one(objects, 'ValidatingWebhookConfiguration')).length, 1, `${mode}: Pods are never validated`);
    const [main, ...pods] = planned(mutating);
    t.equal(main.name, MUTATING_WEBHOOK_NAME);
    const [, refMutating] = webhookConfigurations({ url: 'https://x', caPem: 'x', name: 'x', failurePolicy: 'Fail', timeoutSeconds: 5, excludedNamespaces: [], holdApplicationUntilProxyStarts: true }) as [any, any];
    const refPods = refMutating.webhooks.slice(1);
    t.same(pods.map((w: any) => w.name), POD_WEBHOOKS.map((w) => w.name), `${mode}: one Pod webhook per injection selector`);
    for (const [i, webhook] of pods.entries()) {
      t.same(webhook.rules, [{ apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], operations: ['CREATE'], scope: 'Namespaced' }], 'Pod CREATE only');
      t.same(webhook.rules, refPods[i].rules, '... as webhook-config.ts has them');
      t.same(webhook.clientConfig, main.clientConfig, 'the same Service and path as the main mutating webhook');
      t.equal(webhook.failurePolicy, 'Ignore', 'Pod entries never fail closed');
      t.equal(webhook.failurePolicy, refPods[i].failurePolicy, '... as webhook-config.ts has them');
      t.equal(webhook.timeoutSeconds, main.timeoutSeconds);
      t.same(webhook.admissionReviewVersions, ['v1']);
      t.equal(webhook.sideEffects, 'None');
      t.equal(webhook.reinvocationPolicy, refPods[i].reinvocationPolicy);
      const [exclusions, ...injected] = webhook.namespaceSelector.matchExpressions;
      t.same(exclusions, main.namespaceSelector.matchExpressions[0], 'the same excluded namespaces');
      t.ok(exclusions.values.includes('legacy'));
      t.same(injected, POD_WEBHOOKS[i]!.namespaceExpressions, `${webhook.name}: the injected-namespace selector`);
      t.same(webhook.objectSelector, refPods[i].objectSelector, 'the opt-out label and sidecar.istio.io/inject=false');
    }
    const config = buildConfig({ file: { path: 'config.yaml', text: one(objects, 'ConfigMap').data['config.yaml'] } });
    t.equal(config.holdApplicationUntilProxyStarts, true, 'the ConfigMap turns the mutation on in the webhook');
  }
  t.same(POD_WEBHOOKS.map((w) => w.namespaceExpressions), [
    [{ key: 'istio-injection', operator: 'In', values: ['enabled'] }],
    [{ key: 'istio-injection', operator: 'DoesNotExist' }, { key: 'istio.io/rev', operator: 'Exists' }],
  ], 'istio-injection=enabled, or istio.io/rev without istio-injection (never both)');
});

t.test('autoscaling: off by default; on, a CPU HorizontalPodAutoscaler owns the replica count', async (t) => {
  const plain = await template({});
  t.equal(find(plain, 'HorizontalPodAutoscaler').length, 0, 'no autoscaler by default');
  t.equal(one(plain, 'Deployment').spec.replicas, 2, 'replicaCount sets the Deployment');

  const objects = await template({ 'autoscaling.enabled': 'true', 'autoscaling.minReplicas': '3', 'autoscaling.maxReplicas': '7', 'autoscaling.targetCPUUtilizationPercentage': '60' });
  const deployment = one(objects, 'Deployment');
  const hpa = one(objects, 'HorizontalPodAutoscaler');
  t.equal(hpa.apiVersion, 'autoscaling/v2');
  t.same(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name }, 'it scales the webhook Deployment');
  t.equal(hpa.metadata.namespace, deployment.metadata.namespace);
  t.equal(hpa.spec.minReplicas, 3);
  t.equal(hpa.spec.maxReplicas, 7);
  t.same(hpa.spec.metrics, [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 60 } } }]);
  t.equal(deployment.spec.replicas, 3, 'without a live Deployment (first install) the count starts at minReplicas');
  t.ok(deployment.spec.template.spec.containers[0].resources.requests.cpu, 'utilisation has a CPU request to be measured against');
  t.equal(one(objects, 'PodDisruptionBudget').spec.minAvailable, 1);
});

t.test('the PodDisruptionBudget never blocks every eviction, with or without the autoscaler', async (t) => {
  const cases: [Record<string, string>, number, { minAvailable?: number; maxUnavailable?: number }][] = [
    [{}, 2, { minAvailable: 1 }],
    [{ replicaCount: '1' }, 1, { maxUnavailable: 1 }],
    [{ replicaCount: '3', 'podDisruptionBudget.minAvailable': '2' }, 3, { minAvailable: 2 }],
    [{ replicaCount: '3', 'podDisruptionBudget.minAvailable': '5' }, 3, { minAvailable: 2 }],
    [{ 'autoscaling.enabled': 'true', 'autoscaling.minReplicas': '1' }, 1, { maxUnavailable: 1 }],
    [{ 'autoscaling.enabled': 'true', 'autoscaling.minReplicas': '4', 'podDisruptionBudget.minAvailable': '4' }, 4, { minAvailable: 3 }],
    [{ 'autoscaling.enabled': 'true', replicaCount: '1', 'autoscaling.minReplicas': '2' }, 2, { minAvailable: 1 }],
  ];
  for (const [sets, fewestPods, expected] of cases) {
    const pdb = one(await template(sets), 'PodDisruptionBudget');
    const { minAvailable, maxUnavailable } = pdb.spec;
    t.same({ minAvailable, maxUnavailable }, { minAvailable: expected.minAvailable, maxUnavailable: expected.maxUnavailable }, `${JSON.stringify(sets)}: ${JSON.stringify(expected)}`);
    const evictable = maxUnavailable ?? fewestPods - minAvailable;
    t.ok(evictable >= 1, `${JSON.stringify(sets)}: a drain can evict ${evictable} of the ${fewestPods} pods at the fewest`);
  }
});

t.test('the schema rejects bad values', async (t) => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ 'webhook.timeoutSeconds': '11' }, /timeoutSeconds.*maximum/],
    [{ 'webhook.timeoutSeconds': '0' }, /timeoutSeconds.*minimum/],
    [{ 'webhook.failurePolicy': 'Maybe' }, /failurePolicy.*one of 'Fail', 'Ignore'/],
    [{ 'certificates.mode': 'vault' }, /certificates\/mode/],
    [{ 'config.enforcement': 'audit' }, /enforcement/],
    [{ 'config.injection.mode': 'revision' }, /revision/],
    [{ replicaCount: '0' }, /replicaCount/],
    [{ runAsUser: '0' }, /runAsUser/],
    [{ unknownSetting: 'x' }, /additional properties 'unknownSetting'/],
    [{ 'holdApplicationUntilProxyStarts.enabled': 'maybe' }, /holdApplicationUntilProxyStarts/],
    [{ 'reports.interval': '10 minutes' }, /reports\/interval/],
    [{ 'reports.interval': '600' }, /reports\/interval/],
    [{ 'reports.format': 'csv' }, /reports\/format.*one of 'policyreport', 'openreports'/],
    [{ 'autoscaling.enabled': 'true', 'autoscaling.minReplicas': '4', 'autoscaling.maxReplicas': '3' }, /autoscaling\.maxReplicas \(3\) is below autoscaling\.minReplicas \(4\)/],
    [{ 'autoscaling.targetCPUUtilizationPercentage': '0' }, /targetCPUUtilizationPercentage.*minimum/],
    [{ 'autoscaling.minReplicas': '0' }, /minReplicas.*minimum/],
    [{ 'autoscaling.enabled': 'true', 'resources.requests.cpu': 'null' }, /autoscaling scales on CPU utilisation, which is measured against resources\.requests\.cpu: set it/],
  ];
  await Promise.all(
    cases.map(async ([sets, message]) => {
      const args = ['template', 'x', CHART, ...Object.entries({ ...IMAGE, ...sets }).flatMap(([k, v]) => ['--set', `${k}=${v}`])];
      const result = await run(HELM, args);
      t.not(result.code, 0, `${JSON.stringify(sets)} is rejected`);
      t.match(result.stderr, message, `... with a message naming it: ${result.stderr.trim().split('\n').slice(-1)[0]}`);
    }),
  );
});

t.test('the chart refuses to render without an image repository that names a registry', async (t) => {
  for (const [repository, message] of [
    ['', /image\.repository is not set: build the image from the repository's Dockerfile, push it to your registry and install with --set image\.repository=REGISTRY\/mesh-admission/],
    ['mesh-admission', /image\.repository is "mesh-admission", which names no registry/],
    // null removes the key: the chart's message, not the schema's "missing property".
    ['null', /image\.repository is not set/],
  ] as const) {
    const result = await run(HELM, ['template', 'x', CHART, '--set', `image.repository=${repository}`]);
    t.not(result.code, 0, `repository ${JSON.stringify(repository)} is refused`);
    t.match(result.stderr, message);
    t.match(result.stderr, /templates\/deployment\.yaml/, '... naming the Deployment, whose pods would never start');
  }
  const defaults = await run(HELM, ['template', 'x', CHART]);
  t.not(defaults.code, 0, 'the default values do not render');
  t.match(defaults.stderr, /image\.repository is not set/);
  const objects = await template({ 'image.repository': 'registry.example/platform/mesh-admission' });
  const chart = await readFile(path.join(CHART, 'Chart.yaml'), 'utf8');
  const appVersion = /^appVersion:\s*"?([^"\s]+)"?/m.exec(chart)?.[1];
  t.equal(one(objects, 'Deployment').spec.template.spec.containers[0].image, `registry.example/platform/mesh-admission:${appVersion}`);
});

t.test('helm mode generates a CA per render without a cluster (lookup finds the Secret on upgrade)', async (t) => {
  // `helm template` cannot reach a cluster; the e2e suite checks the real upgrade.
  const [first, second] = await Promise.all([template({ 'certificates.mode': 'helm' }), template({ 'certificates.mode': 'helm' })]);
  const ca = (objects: K8sObject[]) => one(objects, 'Secret').data['ca.crt'];
  t.not(ca(first), ca(second), 'without a cluster each render generates');
  for (const objects of [first, second]) {
    const secret = one(objects, 'Secret');
    const cert = new X509Certificate(Buffer.from(secret.data['tls.crt'], 'base64'));
    t.ok(cert.verify(new X509Certificate(Buffer.from(ca(objects), 'base64')).publicKey), 'the serving certificate is signed by the CA of the same Secret');
  }
});

t.test('NOTES.txt names the release objects and the break-glass commands', async (t) => {
  const result = await run(HELM, ['install', 'mesh-admission', CHART, '--namespace', 'mesh-system', '--dry-run=client', '--set', `image.repository=${IMAGE['image.repository']}`]);
  t.equal(result.code, 0, result.stderr);
  const notes = result.stdout.slice(result.stdout.indexOf('NOTES:'));
  t.match(notes, /kubectl delete validatingwebhookconfiguration mesh-admission/);
  t.match(notes, /kubectl delete mutatingwebhookconfiguration mesh-admission/);
  t.match(notes, /helm test mesh-admission -n mesh-system/);
  t.match(notes, /Secret mesh-system\/mesh-admission-self-tls/);
  t.notMatch(notes, /PodDisruptionBudget keeps/, 'nothing to say about the PDB by default');
  const single = await run(HELM, ['install', 'mesh-admission', CHART, '--namespace', 'mesh-system', '--dry-run=client', '--set', `image.repository=${IMAGE['image.repository']}`, '--set', 'replicaCount=1']);
  t.match(single.stdout, /the PodDisruptionBudget keeps maxUnavailable 1 instead of podDisruptionBudget\.minAvailable\s+\(1\)/, 'a lowered PDB is explained');
});

t.test("the helm test pod's script passes against a real webhook, and fails against a wrong CA", async (t) => {
  const objects = rendered[0]!;
  const testPod = one(objects, 'Pod', 'mesh-admission-test');
  const container = testPod.spec.containers[0];
  t.same(container.command, ['node', '-e']);
  const script = container.args[0] as string;

  const certDir = await mkdtemp(path.join(os.tmpdir(), 'mesh-admission-chart-'));
  t.teardown(() => rm(certDir, { recursive: true, force: true }));
  const config = buildConfig({ flags: { port: '0', 'probe-port': '0', host: '127.0.0.1', 'probe-host': '127.0.0.1', 'cert-dir': certDir } });
  const server = await startServer(config, pino({ level: 'silent' }));
  t.teardown(() => server.close());

  const runScript = (env: Record<string, string>) =>
    new Promise<Run>((resolve) => {
      const child = spawn(process.execPath, ['-e', script], { env: { PATH: process.env.PATH ?? '', ...env } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    });
  const url = `https://localhost:${server.webhookPort}`;
  const good = await runScript({ WEBHOOK_URL: url, CA_FILE: path.join(certDir, 'ca.crt') });
  t.equal(good.code, 0, `the script passes: ${good.stderr}`);
  t.match(good.stdout, /PASS: .* denied the bad Service: .*spec\.ports\[0\]/);

  const otherCa = path.join(certDir, 'other-ca.crt');
  const other = await import('../src/tls/generate.ts').then((m) => m.generateCertificateAuthority({ commonName: 'other', validityDays: 1 }));
  await writeFile(otherCa, other.cert);
  const bad = await runScript({ WEBHOOK_URL: url, CA_FILE: otherCa });
  t.equal(bad.code, 1, 'a webhook whose certificate the CA does not verify fails the test');
  t.match(bad.stderr, /FAIL: cannot call/);
  t.ok((await readFile(path.join(certDir, 'ca.crt'), 'utf8')).length > 0);
});

t.test('values.yaml documents every value, and README.md lists every documented value', async (t) => {
  const text = await readFile(path.join(CHART, 'values.yaml'), 'utf8');
  const readme = await readFile(path.join(CHART, 'README.md'), 'utf8');
  // Walk the (block-style) YAML by indentation: each key's path, and whether a `# --` comment
  // documents it or one of its parents.
  const stack: { indent: number; path: string; documented: boolean }[] = [];
  let pendingDoc = false;
  const leaves: { path: string; documented: boolean }[] = [];
  const documentedPaths: string[] = [];
  const lines = text.split('\n');
  lines.forEach((line, index) => {
    if (/^\s*# --/.test(line)) pendingDoc = true;
    const match = /^(\s*)([A-Za-z0-9_.-]+):(.*)$/.exec(line);
    if (!match) return;
    const indent = match[1]!.length;
    while (stack.length > 0 && stack[stack.length - 1]!.indent >= indent) stack.pop();
    const parent = stack[stack.length - 1];
    const keyPath = parent ? `${parent.path}.${match[2]}` : match[2]!;
    const documented = pendingDoc || (parent?.documented ?? false);
    if (pendingDoc) documentedPaths.push(keyPath);
    pendingDoc = false;
    const rest = match[3]!.trim();
    const next = lines.slice(index + 1).find((l) => l.trim() !== '' && !l.trim().startsWith('#')) ?? '';
    const nextIndent = /^(\s*)/.exec(next)![1]!.length;
    const isParent = rest === '' && nextIndent > indent && !next.trim().startsWith('- ');
    stack.push({ indent, path: keyPath, documented });
    if (!isParent) leaves.push({ path: keyPath, documented });
  });
  t.ok(leaves.length > 40, `found the values (${leaves.length})`);
  for (const leaf of leaves) t.ok(leaf.documented, `values.yaml documents ${leaf.path}`);
  for (const documentedPath of documentedPaths) t.ok(readme.includes(`\`${documentedPath}\``), `README.md lists \`${documentedPath}\``);
});

t.test('mode=policies: only the Service rules as ValidatingAdmissionPolicies, the same objects `mesh-admission policies` prints', async (t) => {
  const objects = await template({ mode: 'policies', 'config.enforcement': 'warn', 'config.exemptNamespaces': '{legacy,batch}', 'image.repository': '' }, { namespace: 'platform' });
  const config = buildConfig({ file: { path: 'values', text: 'serviceName: mesh-admission\nnamespace: platform\nexemptNamespaces: [legacy, batch]\nenforcement: warn\n' } });
  const byName = (list: readonly { kind?: unknown; metadata?: unknown }[]) => [...list].sort((a, b) => `${a.kind}/${JSON.stringify(a.metadata)}`.localeCompare(`${b.kind}/${JSON.stringify(b.metadata)}`));
  t.same(byName(objects), byName(validatingPolicies(config)), 'no Deployment, Service, certificate or webhook: just the policies and their bindings');
  const denying = await template({ mode: 'policies' }, { namespace: 'platform' });
  t.same(find(denying, 'ValidatingAdmissionPolicyBinding').map((b) => b.spec.validationActions), [['Deny'], ['Warn']], 'enforcement deny: new findings deny, stored ones warn');
});

t.test('the policies template is the one generated from the code (npm run generate:chart-policies)', async (t) => {
  t.equal(await readFile(path.join(REPO, CHART_POLICIES_TEMPLATE), 'utf8'), chartPoliciesTemplate());
});

t.test('an unknown mode is refused at install', async (t) => {
  await t.rejects(template({ mode: 'kyverno' }), /mode.*(webhook|policies)|value must be one of/);
});

t.test('mode=policies on an API server that serves MutatingAdmissionPolicy: the port renames and the namespace label too, for each injection mode', async (t) => {
  const withMutatingPolicies = ['--api-versions', 'admissionregistration.k8s.io/v1/MutatingAdmissionPolicy'];
  const cases: { sets: Record<string, string>; config: string }[] = [
    { sets: {}, config: '' },
    { sets: { 'config.injection.mode': 'revision', 'config.injection.revision': 'canary' }, config: 'injection: {mode: revision, revision: canary}\n' },
    { sets: { 'config.injection.mode': 'ambient', 'config.injection.excludedNamespaces': '{batch}', 'config.exemptNamespaces': '{legacy}' }, config: 'injection: {mode: ambient, excludedNamespaces: [batch]}\nexemptNamespaces: [legacy]\n' },
    {
      sets: { 'config.mutation.nameHints.Web': 'http2', 'config.mutation.nameHints.db': 'tcp', 'config.mutation.portHints.8080': 'http', 'config.mutation.defaultProtocol': 'tcp' },
      config: "mutation: {nameHints: {Web: http2, db: tcp}, portHints: {'8080': http}, defaultProtocol: tcp}\n",
    },
  ];
  for (const { sets, config } of cases) {
    const objects = await template({ mode: 'policies', ...sets }, { namespace: 'platform', extraArgs: withMutatingPolicies });
    const expected = mutatingPolicies(buildConfig({ file: { path: 'values', text: `serviceName: mesh-admission\nnamespace: platform\n${config}` } }));
    // helm orders objects by kind; the command prints each policy before its binding.
    const byName = (list: readonly { kind: string; metadata: { name: string } }[]) => [...list].sort((a, b) => `${a.kind} ${a.metadata.name}`.localeCompare(`${b.kind} ${b.metadata.name}`));
    t.same(byName(objects.filter((o) => o.kind.startsWith('Mutating'))), byName(expected as never[]), `the same MutatingAdmissionPolicies as \`policies --mutations\` (${JSON.stringify(sets)})`);
  }
  const withoutInjection = find(await template({ mode: 'policies', 'config.injection.enabled': 'false' }, { extraArgs: withMutatingPolicies }), 'MutatingAdmissionPolicy');
  t.same(withoutInjection.map((o) => o.metadata.name), ['mesh-admission-service-port-names'], 'injection disabled: the port renames only');
  t.same(find(await template({ mode: 'policies' }), 'MutatingAdmissionPolicy'), [], 'an API server without it (before 1.36): none, and the install still works');
});
