/**
 * `mesh-admission policies`: the objects it prints and how the config shapes them. What the
 * API server does with them, next to the webhook, is test/e2e/policies.e2e.ts.
 */
import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { validatingPolicies } from '../src/cel/validating-policies.ts';
import { namespaceLabelPolicies } from '../src/cel/mutating-policies.ts';
import { portRenamePolicies } from '../src/cel/port-renames.ts';
import { ALWAYS_SKIPPED_NAMESPACES, DEFAULT_PROTOCOL_HINTS, normalisedHints } from '../src/policies/service-ports.ts';
import { isClassified } from '../src/cel/port-classification.ts';
import { buildConfig } from '../src/config.ts';
import { KUBERNETES_APP_PROTOCOLS, PROTOCOL_WORDS, SERVER_FIRST_PORTS } from '../src/istio/protocol.ts';
import { runCliCaptured } from './helpers/run-cli.ts';

interface Binding {
  kind: string;
  metadata: { name: string };
  spec: { policyName: string; validationActions: string[]; matchResources: { namespaceSelector: { matchExpressions: { values: string[] }[] } } };
}

const bindings = (objects: Record<string, unknown>[]) => objects.filter((o) => o['kind'] === 'ValidatingAdmissionPolicyBinding') as unknown as Binding[];

t.test('each policy is followed by its binding; new findings deny, stored ones warn', async (t) => {
  const objects = validatingPolicies(buildConfig({}));
  t.same(objects.map((o) => [o['kind'], (o['metadata'] as { name: string }).name]), [
    ['ValidatingAdmissionPolicy', 'mesh-admission-service-ports'],
    ['ValidatingAdmissionPolicyBinding', 'mesh-admission-service-ports'],
    ['ValidatingAdmissionPolicy', 'mesh-admission-service-ports-preexisting'],
    ['ValidatingAdmissionPolicyBinding', 'mesh-admission-service-ports-preexisting'],
  ]);
  t.same(bindings(objects).map((b) => [b.spec.policyName, b.spec.validationActions]), [
    ['mesh-admission-service-ports', ['Deny']],
    ['mesh-admission-service-ports-preexisting', ['Warn']],
  ]);
});

t.test('enforcement warn makes every finding a warning; the skipped namespaces follow the config', async (t) => {
  const config = buildConfig({ file: { path: 'c.yaml', text: 'enforcement: warn\nexemptNamespaces: [legacy]\nnamespace: platform\nserviceName: mesh\n' } });
  const objects = validatingPolicies(config);
  t.same(bindings(objects).map((b) => b.spec.validationActions), [['Warn'], ['Warn']]);
  t.same(bindings(objects).map((b) => b.metadata.name), ['mesh-service-ports', 'mesh-service-ports-preexisting'], 'named after serviceName');
  const skipped = bindings(objects)[0]!.spec.matchResources.namespaceSelector.matchExpressions[0]!.values;
  for (const namespace of ['kube-system', 'kube-public', 'kube-node-lease', 'local-path-storage', 'platform', 'legacy']) t.ok(skipped.includes(namespace), `${namespace} is skipped`);
});

t.test('the classification expression is built from the webhook\'s own tables', async (t) => {
  const expression = isClassified('p');
  for (const word of PROTOCOL_WORDS.keys()) t.ok(expression.includes(`"${word}"`), `protocol word ${word}`);
  for (const value of KUBERNETES_APP_PROTOCOLS.keys()) t.ok(expression.includes(`"${value}"`), `appProtocol ${value}`);
  t.ok(expression.includes(`[${[...SERVER_FIRST_PORTS].join(', ')}]`), 'the server-first ports');
});

t.test('the command prints YAML or a JSON List, and refuses other formats', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mesh-admission-policies-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const configFile = path.join(dir, 'config.yaml');
  await writeFile(configFile, 'enforcement: warn\n');
  const yaml = await runCliCaptured(['policies', '--config', configFile]);
  t.equal(yaml.code, 0, yaml.stderr);
  const documents = parseAllDocuments(yaml.stdout).map((d) => d.toJS() as Record<string, unknown>);
  t.same(documents, validatingPolicies(buildConfig({ file: { path: configFile, text: 'enforcement: warn\n' } })));
  const json = await runCliCaptured(['policies', '-o', 'json']);
  t.equal(json.code, 0);
  t.same(JSON.parse(json.stdout).items, validatingPolicies(buildConfig({})));
  const bad = await runCliCaptured(['policies', '-o', 'xml']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /unknown output format "xml"; use yaml or json/);
  const help = await runCliCaptured(['policies', '--help']);
  t.match(help.stdout, /Usage: mesh-admission policies/);
  t.match((await runCliCaptured(['--help'])).stdout, /policies\s+print the Service rules as ValidatingAdmissionPolicies/);
});

t.test('--mutations: the namespace label of the configured injection mode, skipped where the webhook skips it', async (t) => {
  const labelOf = (text: string) => {
    const [policy] = namespaceLabelPolicies(buildConfig({ file: { path: 'c.yaml', text } })) as { spec: { mutations: { applyConfiguration: { expression: string } }[]; matchConditions: { expression: string }[] } }[];
    return policy && { expression: policy.spec.mutations[0]!.applyConfiguration.expression, excluded: policy.spec.matchConditions[0]!.expression };
  };
  t.equal(labelOf('{}\n')?.expression, 'Object{metadata: Object.metadata{labels: {"istio-injection": "enabled"}}}');
  t.equal(labelOf('injection: {mode: revision, revision: canary}\n')?.expression, 'Object{metadata: Object.metadata{labels: {"istio.io/rev": "canary"}}}');
  t.equal(labelOf('injection: {mode: ambient}\n')?.expression, 'Object{metadata: Object.metadata{labels: {"istio.io/dataplane-mode": "ambient"}}}');
  t.same(namespaceLabelPolicies(buildConfig({ file: { path: 'c.yaml', text: 'injection: {enabled: false}\n' } })), [], 'injection disabled: no namespace policy');
  const excluded = labelOf('namespace: platform\nexemptNamespaces: [legacy]\ninjection: {excludedNamespaces: [batch]}\n')!.excluded;
  for (const name of ['kube-system', 'istio-system', 'platform', 'legacy', 'batch']) t.ok(excluded.includes(`"${name}"`), `${name} is never labelled`);
  const json = await runCliCaptured(['policies', '--mutations', '-o', 'json']);
  t.same((JSON.parse(json.stdout).items as { kind: string }[]).map((item) => item.kind).slice(-2), ['MutatingAdmissionPolicy', 'MutatingAdmissionPolicyBinding']);
  t.notOk((JSON.parse((await runCliCaptured(['policies', '-o', 'json'])).stdout).items as { kind: string }[]).some((item) => item.kind.startsWith('Mutating')), 'only with --mutations');
});

t.test('--mutations: the port renames, with the hint tables of the config and the webhook\'s skips', async (t) => {
  interface RenamePolicy {
    metadata: { name: string };
    spec: { variables?: { name: string; expression: string }[]; matchConditions?: unknown[]; policyName?: string; matchResources?: { namespaceSelector: { matchExpressions: { values: string[] }[] } } };
  }
  const renames = (text: string) => portRenamePolicies(buildConfig({ file: { path: 'c.yaml', text } })) as unknown as RenamePolicy[];
  const [policy, binding] = renames('{}\n');
  t.equal(policy!.metadata.name, 'mesh-admission-service-port-names');
  t.equal(binding!.spec.policyName, 'mesh-admission-service-port-names');
  const variable = (p: RenamePolicy, name: string) => p.spec.variables!.find((v) => v.name === name)!.expression;
  t.same(JSON.parse(variable(policy!, 'nameHints')), Object.fromEntries(normalisedHints(DEFAULT_PROTOCOL_HINTS).names), 'the built-in name hints');
  t.same(JSON.parse(variable(policy!, 'portHints')), Object.fromEntries(normalisedHints(DEFAULT_PROTOCOL_HINTS).ports), 'the built-in port hints');
  t.equal(variable(policy!, 'defaultProtocol'), '""', 'no default protocol: ports without a hint are left to validation');
  const [custom] = renames("mutation: {nameHints: {Site: http2}, portHints: {'7000': grpc}, defaultProtocol: TCP}\n");
  t.same(JSON.parse(variable(custom!, 'nameHints')), { site: 'http2' }, 'the config replaces the table; keys lower-cased as the webhook reads them');
  t.same(JSON.parse(variable(custom!, 'portHints')), { '7000': 'grpc' });
  t.equal(variable(custom!, 'defaultProtocol'), '"tcp"');
  const [, skipping] = renames('namespace: platform\nexemptNamespaces: [legacy]\n');
  const skipped = skipping!.spec.matchResources!.namespaceSelector.matchExpressions[0]!.values;
  for (const name of [...ALWAYS_SKIPPED_NAMESPACES, 'legacy']) t.ok(skipped.includes(name), `${name} is skipped, as the webhook skips it`);
  t.same(policy!.spec.matchConditions, (validatingPolicies(buildConfig({}))[0] as unknown as RenamePolicy).spec.matchConditions, "Istio's control plane is left alone as the validating policies leave it");
  const kinds = (JSON.parse((await runCliCaptured(['policies', '--mutations', '-o', 'json'])).stdout).items as { kind: string; metadata: { name: string } }[]).map((item) => `${item.kind} ${item.metadata.name}`);
  t.ok(kinds.includes('MutatingAdmissionPolicy mesh-admission-service-port-names') && kinds.includes('MutatingAdmissionPolicyBinding mesh-admission-service-port-names'), 'printed with --mutations');
});
