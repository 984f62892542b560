import t from 'tap';
import { mkdtemp, readFile, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { parse, parseAllDocuments } from 'yaml';
import { runCliCaptured } from './helpers/run-cli.ts';

const run = runCliCaptured;

const bad = `apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  ports:
  - name: web
    port: 8080
`;

t.test('check: the seed Service passes', async (t) => {
  const r = await run(['check', '-f', 'examples/manifests/data-center-service.yaml']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /No validation issues found in 1 checked object/);
});

t.test('check -o json over examples/: the web Service fails with port-protocol', async (t) => {
  const r = await run(['check', '-f', 'examples/', '-o', 'json']);
  t.equal(r.code, 1);
  const report = JSON.parse(r.stdout);
  const web = report.violations.filter((v: { name: string }) => v.name === 'web');
  t.match(web, [{ kind: 'Service', namespace: 'default', name: 'web', rule: 'port-protocol', severity: 'error', field: 'spec.ports[0].name', message: /web/ }]);
  t.notOk(report.violations.some((v: { name: string }) => v.name === 'data-center-service'));
  for (const v of report.violations) t.same(Object.keys(v).slice(0, 7), ['kind', 'namespace', 'name', 'rule', 'severity', 'field', 'message']);
});

t.test('check: text output names the object, file and line', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'check-'));
  await writeFile(join(dir, 'svc.yaml'), `# leading comment\n---\n${bad}`);
  const r = await run(['check', '-f', join(dir, 'svc.yaml')]);
  t.equal(r.code, 1);
  t.match(r.stdout, new RegExp(`^Error \\[port-protocol\\] \\(Service shop/web ${dir}/svc\\.yaml:3\\) spec\\.ports\\[0\\]`));
  t.match(r.stdout, /1 error, 0 warnings in 1 checked object\./);
});

t.test('check: stdin, multi-document YAML and List kinds', async (t) => {
  const list = { apiVersion: 'v1', kind: 'List', items: [parse(bad), { apiVersion: 'v1', kind: 'Service', metadata: { name: 'ok' }, spec: { ports: [{ name: 'http', port: 80 }] } }] };
  const input = `${bad}---\n${JSON.stringify(list)}\n---\n`;
  const r = await run(['check', '-f', '-', '-o', 'json'], input);
  t.equal(r.code, 1);
  const violations = JSON.parse(r.stdout).violations;
  t.equal(violations.length, 2, 'the bad Service twice, the good one not at all');
  t.same(violations.map((v: { file: string }) => v.file), ['<stdin>', '<stdin>']);
});

t.test('check: warnings alone exit 0', async (t) => {
  const ns = 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n  labels:\n    istio-injection: enabled\n    istio.io/rev: canary\n';
  const r = await run(['check', '-f', '-'], ns);
  t.equal(r.code, 0);
  t.match(r.stdout, /^Warning \[namespace-injection-conflict\] \(Namespace x <stdin>:1\)/);
});

t.test('check --fix prints mutated manifests and reports what is left', async (t) => {
  const r = await run(['check', '-f', '-', '--fix'], `${bad}---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n`);
  t.equal(r.code, 0, 'nothing left after the fix');
  const docs = parseAllDocuments(r.stdout).map((d) => d.toJS());
  t.equal(docs[0].spec.ports[0].name, 'http-web');
  t.same(docs[1].metadata.labels, { 'istio-injection': 'enabled' });
  t.match(r.stderr, /Fixed \(Service shop\/web <stdin>:1\)/);
  t.match(r.stderr, /No validation issues found/);
});

t.test('check --fix changes only the fixed lines: comments, key order, quoting and layout stay', async (t) => {
  const manifest = [
    '# shop services',
    'apiVersion: v1',
    'kind: Service',
    'metadata:',
    '  name: web # the storefront',
    '  labels: {app: web}',
    'spec:',
    '  ports:',
    '  - name: web # browser traffic',
    '    port: 8080',
    '  - name: "http-ok"',
    '    port: 81',
    '  selector:',
    '    app: web',
    '---',
    '# a new team',
    'apiVersion: v1',
    'kind: List',
    'items:',
    '- apiVersion: v1',
    '  kind: Namespace',
    '  metadata:',
    '    name: team-a',
    '',
  ].join('\n');
  const r = await run(['check', '-f', '-', '--fix'], manifest);
  t.equal(r.code, 0, r.stderr);
  const expected = manifest
    .replace('  - name: web # browser traffic', '  - name: http-web # browser traffic')
    .replace('    name: team-a\n', '    name: team-a\n    labels:\n      istio-injection: enabled\n');
  t.equal(r.stdout, `---\n${expected}`);
});

t.test('check: unusable input exits 2 naming the file and line', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'check-'));
  await writeFile(join(dir, 'broken.yaml'), 'apiVersion: v1\nkind: Service\nmetadata:\n  name: [oops\n');
  await writeFile(join(dir, 'scalar.yaml'), 'just a string\n');
  await writeFile(join(dir, 'nokind.yaml'), 'apiVersion: v1\nmetadata: {}\n');
  const cases: [string, RegExp][] = [
    [join(dir, 'broken.yaml'), new RegExp(`${dir}/broken\\.yaml:5: invalid YAML`)],
    [join(dir, 'scalar.yaml'), /scalar\.yaml:1: expected a Kubernetes object/],
    [join(dir, 'nokind.yaml'), /nokind\.yaml:1: object has no "kind"/],
    [join(dir, 'missing.yaml'), /missing\.yaml: no such file or directory/],
  ];
  for (const [file, message] of cases) {
    const r = await run(['check', '-f', file]);
    t.equal(r.code, 2, file);
    t.match(r.stderr, message);
  }
});

t.test('check: usage errors exit 2 with a hint', async (t) => {
  t.equal((await run(['check'])).code, 2);
  const r = await run(['check', '-f', 'x', '-o', 'xml']);
  t.equal(r.code, 2);
  t.match(r.stderr, /unknown output format "xml"/);
  t.equal((await run(['check', '--bogus'])).code, 2);
});

t.test('check: a directory is read recursively', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'check-'));
  await mkdir(join(dir, 'nested'));
  await writeFile(join(dir, 'nested', 'svc.yml'), bad);
  await writeFile(join(dir, 'README.md'), '# not a manifest');
  const r = await run(['check', '-f', dir, '-o', 'json']);
  t.equal(r.code, 1);
  t.equal(JSON.parse(r.stdout).violations[0].file, join(dir, 'nested', 'svc.yml'));
});

t.test('check --config applies hint tables and exemptions', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'check-'));
  await writeFile(join(dir, 'config.yaml'), 'exemptNamespaces: [shop]\n');
  const r = await run(['check', '-f', '-', '--config', join(dir, 'config.yaml')], bad);
  t.equal(r.code, 0);
  const missing = await run(['check', '-f', '-', '--config', join(dir, 'nope.yaml')], bad);
  t.equal(missing.code, 2);
  t.match(missing.stderr, /nope\.yaml/);
});

t.test('webhook-config prints both configurations with the CA bundle', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wh-'));
  const ca = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
  await writeFile(join(dir, 'ca.crt'), ca);
  const r = await run(['webhook-config', '--url', 'https://127.0.0.1:8443', '--ca-file', join(dir, 'ca.crt')]);
  t.equal(r.code, 0, r.stderr);
  const [validating, mutating] = parseAllDocuments(r.stdout).map((d) => d.toJS());
  t.equal(validating.kind, 'ValidatingWebhookConfiguration');
  t.equal(mutating.kind, 'MutatingWebhookConfiguration');
  t.equal(validating.webhooks[0].clientConfig.url, 'https://127.0.0.1:8443/validate');
  t.equal(mutating.webhooks[0].clientConfig.url, 'https://127.0.0.1:8443/mutate');
  t.equal(Buffer.from(validating.webhooks[0].clientConfig.caBundle, 'base64').toString(), ca);
  t.equal(validating.webhooks[0].sideEffects, 'None');
  t.equal(validating.webhooks[0].failurePolicy, 'Fail');
  t.same(mutating.webhooks[0].rules.map((r: { resources: string[]; operations: string[] }) => [r.resources, r.operations]), [[['services'], ['CREATE', 'UPDATE']], [['namespaces'], ['CREATE']]]);
  t.match(validating.webhooks[0].namespaceSelector.matchExpressions[0], { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'kube-public', 'kube-node-lease'] });

  const http = await run(['webhook-config', '--url', 'http://x', '--ca-file', join(dir, 'ca.crt')]);
  t.equal(http.code, 2);
  t.match(http.stderr, /https/);
  const noCa = await run(['webhook-config', '--url', 'https://x', '--ca-file', join(dir, 'none')]);
  t.equal(noCa.code, 2);
  t.match(noCa.stderr, /cannot read --ca-file/);
});

t.test('certs generates a CA and prints the caBundle; a second run reuses it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'certs-'));
  const first = await run(['certs', '--dir', dir]);
  t.equal(first.code, 0, first.stderr);
  const ca = await readFile(join(dir, 'ca.crt'), 'utf8');
  t.equal(Buffer.from(first.stdout.trim(), 'base64').toString(), ca);
  t.match(first.stderr, /^generated/);
  const second = await run(['certs', '--dir', dir]);
  t.match(second.stderr, /^reused/);
  t.equal(second.stdout, first.stdout);
});

t.test('help for every command, and unknown commands exit 2', async (t) => {
  for (const command of ['serve', 'check', 'webhook-config', 'certs', 'audit']) {
    const r = await run([command, '--help']);
    t.equal(r.code, 0, command);
    t.match(r.stdout, new RegExp(`^Usage: mesh-admission ${command}`));
  }
  t.equal((await run(['--help'])).code, 0);
  const unknown = await run(['frobnicate']);
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /unknown command "frobnicate"/);
});

t.test('the entry point sets the process exit code', async (t) => {
  const ok = spawnSync(process.execPath, ['src/cli.ts', 'check', '-f', 'examples/manifests/data-center-service.yaml'], { encoding: 'utf8' });
  t.equal(ok.status, 0, ok.stderr);
  const failing = spawnSync(process.execPath, ['src/cli.ts', 'check', '-f', '-'], { input: bad, encoding: 'utf8' });
  t.equal(failing.status, 1);
  const unusable = spawnSync(process.execPath, ['src/cli.ts', 'check', '-f', '-'], { input: 'a: [', encoding: 'utf8' });
  t.equal(unusable.status, 2);
});

t.test('webhook-config --hold-application-until-proxy-starts adds the Pod webhooks of injected namespaces', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wh-'));
  await writeFile(join(dir, 'ca.crt'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
  const args = ['webhook-config', '--url', 'https://127.0.0.1:8443', '--ca-file', join(dir, 'ca.crt')];
  const plain = parseAllDocuments((await run(args)).stdout).map((d) => d.toJS());
  t.equal(plain[1].webhooks.length, 1, 'off by default: no Pod webhooks');
  const r = await run([...args, '--hold-application-until-proxy-starts']);
  t.equal(r.code, 0, r.stderr);
  const [validating, mutating] = parseAllDocuments(r.stdout).map((d) => d.toJS());
  t.equal(validating.webhooks.length, 1, 'Pods are never validated');
  const pods = mutating.webhooks.slice(1);
  t.same(pods.map((w: { name: string }) => w.name), ['pods.mutate.mesh-admission.io', 'revision-pods.mutate.mesh-admission.io']);
  for (const webhook of pods) {
    t.same(webhook.rules, [{ apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], operations: ['CREATE'], scope: 'Namespaced' }]);
    t.equal(webhook.clientConfig.url, 'https://127.0.0.1:8443/mutate');
    t.same(webhook.namespaceSelector.matchExpressions[0], mutating.webhooks[0].namespaceSelector.matchExpressions[0], 'the same excluded namespaces');
    t.same(webhook.objectSelector.matchExpressions.at(-1), { key: 'sidecar.istio.io/inject', operator: 'NotIn', values: ['false'] });
  }
  t.same(pods[0].namespaceSelector.matchExpressions.slice(1), [{ key: 'istio-injection', operator: 'In', values: ['enabled'] }]);
  t.same(pods[1].namespaceSelector.matchExpressions.slice(1), [{ key: 'istio-injection', operator: 'DoesNotExist' }, { key: 'istio.io/rev', operator: 'Exists' }]);
});

t.test('check --fix leaves Pods alone even with holdApplicationUntilProxyStarts on (which namespaces are injected is unknown offline)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hold-'));
  await writeFile(join(dir, 'config.yaml'), 'holdApplicationUntilProxyStarts: true\n');
  const podYaml = 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  containers:\n  - name: web\n    image: web:1\n';
  const r = await run(['check', '-f', '-', '--fix', '--config', join(dir, 'config.yaml')], podYaml);
  t.equal(r.code, 0, r.stderr);
  t.same(parse(r.stdout), parse(podYaml), 'the Pod is printed unchanged');
  t.notMatch(r.stdout, /holdApplicationUntilProxyStarts/);
});
