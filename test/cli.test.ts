import t from 'tap';
import { readFile, writeFile, mkdir, readdir, symlink } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { delimiter, join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { parse, parseAllDocuments } from 'yaml';
import { runCliCaptured } from './helpers/run-cli.ts';
import { isSupportedNode, unsupportedNodeMessage } from '../src/node-version.ts';
import { withExplicitBooleans } from '../src/commands/serve.ts';
import { tempDir } from './helpers/temp-dir.ts';

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

t.test('check -o json --strict over examples/: the web Service fails with port-protocol', async (t) => {
  const r = await run(['check', '-f', 'examples/', '-o', 'json', '--strict']);
  t.equal(r.code, 1);
  const report = JSON.parse(r.stdout);
  const web = report.violations.filter((v: { name: string }) => v.name === 'web');
  t.match(web, [{ kind: 'Service', namespace: 'default', name: 'web', rule: 'port-protocol', severity: 'error', field: 'spec.ports[0].name', message: /The webhook renames it to "http-web" on admission; `check --fix` writes that name into the manifest\.$/ }]);
  t.notOk(report.violations.some((v: { name: string }) => v.name === 'data-center-service'));
  for (const v of report.violations) t.same(Object.keys(v).slice(0, 7), ['kind', 'namespace', 'name', 'rule', 'severity', 'field', 'message']);
});

t.test('check: text output names the object, file and line', async (t) => {
  const dir = await tempDir(t, 'check-');
  await writeFile(join(dir, 'svc.yaml'), `# leading comment\n---\n${bad}`);
  const r = await run(['check', '--strict', '-f', join(dir, 'svc.yaml')]);
  t.equal(r.code, 1);
  t.match(r.stdout, new RegExp(`^Error \\[port-protocol\\] \\(Service shop/web ${dir}/svc\\.yaml:3\\) spec\\.ports\\[0\\]`));
  t.match(r.stdout, /1 error, 0 warnings in 1 checked object\./);
});

t.test('check: stdin, multi-document YAML and List kinds', async (t) => {
  const list = { apiVersion: 'v1', kind: 'List', items: [parse(bad), { apiVersion: 'v1', kind: 'Service', metadata: { name: 'ok' }, spec: { ports: [{ name: 'http', port: 80 }] } }] };
  const input = `${bad}---\n${JSON.stringify(list)}\n---\n`;
  const r = await run(['check', '--strict', '-f', '-', '-o', 'json'], input);
  t.equal(r.code, 1);
  const violations = JSON.parse(r.stdout).violations;
  t.equal(violations.length, 2, 'the bad Service twice, the good one not at all');
  t.same(violations.map((v: { file: string }) => v.file), ['<stdin>', '<stdin>']);
});

t.test('check: a port the webhook renames on admission is a warning naming the new name; --strict makes it an error', async (t) => {
  const r = await run(['check', '-f', '-'], bad);
  t.equal(r.code, 0, 'kubectl apply admits it, renamed');
  t.match(r.stdout, /^Warning \[port-protocol\] \(Service shop\/web <stdin>:1\) spec\.ports\[0\] .*The webhook renames it to "http-web" on admission; `check --fix` writes that name into the manifest\.\n0 errors, 1 warning/);
  const strict = await run(['check', '-f', '-', '--strict'], bad);
  t.equal(strict.code, 1);
  t.match(strict.stdout, /^Error \[port-protocol\] .*renames it to "http-web"/);
  // A port no hint recognises is not renamed by the webhook: it stays an error, with no such note.
  const unknown = await run(['check', '-f', '-'], bad.replace('name: web\n    port: 8080', 'name: data\n    port: 12345'));
  t.equal(unknown.code, 1);
  t.notMatch(unknown.stdout, /renames/);
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
  const dir = await tempDir(t, 'check-');
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
  const dir = await tempDir(t, 'check-');
  await mkdir(join(dir, 'nested'));
  await writeFile(join(dir, 'nested', 'svc.yml'), bad);
  await writeFile(join(dir, 'README.md'), '# not a manifest');
  const r = await run(['check', '--strict', '-f', dir, '-o', 'json']);
  t.equal(r.code, 1);
  t.equal(JSON.parse(r.stdout).violations[0].file, join(dir, 'nested', 'svc.yml'));
});

t.test('check --config applies hint tables and exemptions', async (t) => {
  const dir = await tempDir(t, 'check-');
  await writeFile(join(dir, 'config.yaml'), 'exemptNamespaces: [shop]\n');
  const r = await run(['check', '-f', '-', '--config', join(dir, 'config.yaml')], bad);
  t.equal(r.code, 0);
  const missing = await run(['check', '-f', '-', '--config', join(dir, 'nope.yaml')], bad);
  t.equal(missing.code, 2);
  t.match(missing.stderr, /nope\.yaml/);
});

t.test('webhook-config prints both configurations with the CA bundle', async (t) => {
  const dir = await tempDir(t, 'wh-');
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
  const dir = await tempDir(t, 'certs-');
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
  const failing = spawnSync(process.execPath, ['src/cli.ts', 'check', '--strict', '-f', '-'], { input: bad, encoding: 'utf8' });
  t.equal(failing.status, 1);
  const unusable = spawnSync(process.execPath, ['src/cli.ts', 'check', '-f', '-'], { input: 'a: [', encoding: 'utf8' });
  t.equal(unusable.status, 2);
});

t.test('audit and check --cluster without any kubeconfig: where it looked, exit 2, no stack trace', async (t) => {
  const home = await tempDir(t, 'no-kubeconfig-home-');
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
  delete env['KUBECONFIG'];
  delete env['KUBERNETES_SERVICE_HOST'];
  for (const args of [['audit'], ['check', '--cluster', '-f', 'examples/manifests/']]) {
    const r = spawnSync(process.execPath, ['src/cli.ts', ...args], { encoding: 'utf8', env });
    t.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    t.equal(r.stdout, '', args.join(' '));
    t.match(r.stderr, new RegExp(`^mesh-admission ${args[0]}: no kubeconfig found; looked for:\n  --kubeconfig: not given\n  KUBECONFIG: not set\n  ${home}/\\.kube/config: no such file\n  in-cluster service account: `), args.join(' '));
    t.match(r.stderr, /\nPass --kubeconfig FILE, set KUBECONFIG, or create ~\/\.kube\/config/);
    t.notMatch(r.stderr, /localhost:8080|\n\s+at /, 'neither the library\'s fallback server nor a stack trace');
  }
  const missing = spawnSync(process.execPath, ['src/cli.ts', 'audit', '--kubeconfig', join(home, 'nope')], { encoding: 'utf8', env });
  t.equal(missing.status, 2);
  t.equal(missing.stderr, `mesh-admission audit: cannot read the kubeconfig ${join(home, 'nope')} (--kubeconfig): no such file\n`);
  t.match((await run(['check', '-f', 'examples/', '--kubeconfig', 'x'])).stderr, /--kubeconfig needs --cluster/);
});

t.test('webhook-config --hold-application-until-proxy-starts adds the Pod webhooks of injected namespaces', async (t) => {
  const dir = await tempDir(t, 'wh-');
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
  const dir = await tempDir(t, 'hold-');
  await writeFile(join(dir, 'config.yaml'), 'holdApplicationUntilProxyStarts: true\n');
  const podYaml = 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  containers:\n  - name: web\n    image: web:1\n';
  const r = await run(['check', '-f', '-', '--fix', '--config', join(dir, 'config.yaml')], podYaml);
  t.equal(r.code, 0, r.stderr);
  t.same(parse(r.stdout), parse(podYaml), 'the Pod is printed unchanged');
  t.notMatch(r.stdout, /holdApplicationUntilProxyStarts/);
});

t.test('isSupportedNode compares major and minor with 22.19', async (t) => {
  for (const version of ['22.19.0', '22.19.1', '22.20.0', '23.0.0', '24.21.0', 'v24.1.0', '100.0.0']) t.ok(isSupportedNode(version), version);
  for (const version of ['22.18.9', '22.0.0', '21.99.0', '20.20.2', 'v18.20.0', '']) t.notOk(isSupportedNode(version), version);
});

t.test('on a Node older than 22.19 the commands that need it print one line and exit 2', async (t) => {
  const dir = await tempDir(t, 'old-node-');
  const old = '20.20.2';
  for (const args of [['serve'], ['certs', '--dir', join(dir, 'certs')], ['audit'], ['check', '--cluster', '-f', 'examples/manifests/']]) {
    const r = await run(args, '', {}, old);
    t.equal(r.code, 2, args.join(' '));
    t.equal(r.stdout, '', args.join(' '));
    t.equal(r.stderr, `mesh-admission ${args[0]}: needs Node.js >= 22.19, this is v20.20.2; \`npm start\` and \`npx mesh-admission\` run it on the project's own Node 24\n`);
  }
  t.same(await readdir(dir), [], 'nothing was written');
  const offline = await run(['check', '-f', 'examples/manifests/data-center-service.yaml'], '', {}, old);
  t.equal(offline.code, 0, 'offline check runs on older Node');
  t.equal((await run(['webhook-config', '--help'], '', {}, old)).code, 0);
  t.equal((await run(['serve', '--help'], '', {}, old)).code, 0, 'help needs no current Node');
  t.equal((await run(['certs', '--dir', join(dir, 'certs')], '', {}, '22.19.0')).code, 0, '22.19 itself is enough');
});

/** The first `node` on PATH outside node_modules: the machine's own Node, whatever its version. */
function machineNode(): string {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '' || dir.includes('node_modules')) continue;
    if (existsSync(join(dir, 'node'))) return join(dir, 'node');
  }
  return process.execPath;
}

t.test('the built entry on the machine\'s own Node either runs or prints the one line, never a stack trace', { timeout: 240_000 }, async (t) => {
  const dir = await tempDir(t, 'built-cli-');
  // Compiled as `npm run build` does, next to a node_modules link so the packages resolve.
  await symlink(resolve('node_modules'), join(dir, 'node_modules'));
  await writeFile(join(dir, 'package.json'), '{"type":"module"}\n');
  const build = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json', '--outDir', join(dir, 'dist')], { encoding: 'utf8' });
  t.equal(build.status, 0, build.stdout + build.stderr);
  const node = machineNode();
  const version = spawnSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
  const certs = spawnSync(node, [join(dir, 'dist', 'cli.js'), 'certs', '--dir', join(dir, 'certs')], { encoding: 'utf8' });
  if (isSupportedNode(version)) {
    t.equal(certs.status, 0, `${node} ${version}: ${certs.stderr}`);
    t.match(certs.stderr, /^generated certificates/);
  } else {
    t.equal(certs.status, 2, `${node} ${version}`);
    t.equal(certs.stderr, unsupportedNodeMessage('certs', version));
    t.notMatch(certs.stderr, /\n\s+at /, 'no stack trace');
  }
  const check = spawnSync(node, [join(dir, 'dist', 'cli.js'), 'check', '-f', 'examples/manifests/data-center-service.yaml'], { encoding: 'utf8' });
  t.equal(check.status, 0, `offline check on ${node} ${version}: ${check.stderr}`);
});

t.test('serve on a port already in use says so in one line, without a stack trace', async (t) => {
  const dir = await tempDir(t, 'busy-port-');
  const holder = createServer();
  await new Promise<void>((done) => holder.listen(0, '127.0.0.1', done));
  t.teardown(() => new Promise((done) => holder.close(done)));
  const port = (holder.address() as AddressInfo).port;
  const r = await run(['serve', '--host', '127.0.0.1', '--port', String(port), '--probe-host', '127.0.0.1', '--probe-port', '0', '--cert-dir', dir, '--log-level', 'silent']);
  t.equal(r.code, 1);
  t.equal(r.stderr, `mesh-admission serve: listen EADDRINUSE: address already in use 127.0.0.1:${port}\n`);
});

t.test('serve: on/off flags accept the bare form, and true/false after them', async (t) => {
  t.same(withExplicitBooleans(['--traffic-checks', '--port', '1']), ['--traffic-checks=true', '--port', '1']);
  t.same(withExplicitBooleans(['--injection', 'false', '--hold-application-until-proxy-starts']), ['--injection=false', '--hold-application-until-proxy-starts=true']);
  t.same(withExplicitBooleans(['--traffic-checks=false', '--cert-dir', 'true']), ['--traffic-checks=false', '--cert-dir', 'true'], 'other flags keep their values');
  // A bad --port after the bare flag is reported: the flag itself was read.
  const r = await run(['serve', '--traffic-checks', '--hold-application-until-proxy-starts', '--port', 'abc']);
  t.equal(r.code, 2, r.stderr);
  t.match(r.stderr, /--port/);
  t.notMatch(r.stderr, /ambiguous|traffic-checks/);
  const wrong = await run(['serve', '--injection', 'maybe']);
  t.equal(wrong.code, 2);
  t.match(wrong.stderr, /Unexpected argument 'maybe'/);
});

t.test('certs --validity-days is checked like a setting', async (t) => {
  const notANumber = await runCliCaptured(['certs', '--dir', '/tmp/never-written', '--validity-days', 'abc']);
  t.equal(notANumber.code, 2);
  t.match(notANumber.stderr, /invalid setting "--cert-validity-days": expected an integer/);
  const tooShort = await runCliCaptured(['certs', '--dir', '/tmp/never-written', '--validity-days', '10']);
  t.equal(tooShort.code, 2);
  t.match(tooShort.stderr, /renewBeforeDays.*smaller than certificates\.validityDays/);
});
