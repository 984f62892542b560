// The registry is the one record of kinds and rules: what is derived from it (the rules
// command, webhook configurations, informer kinds) and what must agree with it (the README's
// rule tables, the differential test's rule mapping, the severities the policies report).
import { readFile } from 'node:fs/promises';
import t from 'tap';
import { runCli } from '../src/cli.ts';
import type { CommandIO } from '../src/commands/io.ts';
import { loadManifests } from '../src/check/load-manifests.ts';
import { runCheck } from '../src/check/run-check.ts';
import { DEFAULT_CONFIG } from '../src/config.ts';
import { CLUSTER_READS, POLICY_MODULES, REGISTERED_RULES, VALIDATED_MODULES } from '../src/policies/registry.ts';
import { ISTIO_RESOURCES } from '../src/kube/istio-resources.ts';
import { webhookConfigurations } from '../src/webhook-config.ts';
import { RULE_MAPPING } from './istio-differential/rule-mapping.ts';

async function cli(...argv: string[]) {
  let stdout = '';
  let stderr = '';
  const io: CommandIO = { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), readStdin: async () => '', env: {}, nodeVersion: process.versions.node };
  const code = await runCli(argv, io);
  return { code, stdout, stderr };
}

t.test('rule ids are unique and every rule belongs to a registered kind', async (t) => {
  const ids = REGISTERED_RULES.map((rule) => rule.id);
  t.same(new Set(ids).size, ids.length);
  const kinds = new Set(POLICY_MODULES.map((module) => module.kind.kind));
  for (const rule of REGISTERED_RULES) t.ok(rule.kinds.every((kind) => kinds.has(kind)), rule.id);
  t.same(REGISTERED_RULES.find((rule) => rule.id === 'traffic-checks-unavailable')?.kinds, ['Gateway', 'VirtualService', 'DestinationRule'], 'a rule shared by modules lists every kind once');
});

t.test('rules -o json lists the registry; the text table has one line per rule', async (t) => {
  const json = await cli('rules', '-o', 'json');
  t.equal(json.code, 0);
  const listed = JSON.parse(json.stdout).rules as { id: string; severity: string; kinds: string[]; istioCodes: string[]; auditOnly: boolean; summary: string }[];
  t.same(listed.map((rule) => rule.id), REGISTERED_RULES.map((rule) => rule.id));
  t.match(listed.find((rule) => rule.id === 'namespace-not-injected'), { severity: 'warning', kinds: ['Namespace'], istioCodes: ['IST0102'], auditOnly: true });
  t.match(listed.find((rule) => rule.id === 'port-protocol'), { severity: 'error', kinds: ['Service'], istioCodes: ['IST0118'], auditOnly: false });

  const text = await cli('rules');
  t.equal(text.code, 0);
  const lines = text.stdout.trimEnd().split('\n');
  t.match(lines[0], /^RULE +SEVERITY +KINDS +ISTIO +SUMMARY$/);
  t.equal(lines.length, REGISTERED_RULES.length + 1);
  t.match(text.stdout, /^gateway-port-not-exposed +warning +Gateway +IST0162,IST0101 +no Service/m);
  t.match(text.stdout, /^port-name-duplicate +error +Service +- +two ports share a name$/m);

  const bad = await cli('rules', '-o', 'yaml');
  t.equal(bad.code, 2);
  t.match(bad.stderr, /unknown output format "yaml"/);
});

t.test('the webhook configurations send every registered kind, each for its operations', async (t) => {
  const configs = webhookConfigurations({ url: 'https://x', caPem: 'x', name: 'x', failurePolicy: 'Fail', timeoutSeconds: 5, excludedNamespaces: [], trafficChecks: true, holdApplicationUntilProxyStarts: true });
  type Rule = { apiGroups: string[]; apiVersions: string[]; resources: string[]; operations: string[] };
  const sent = (config: object) => new Set((config as { webhooks: { rules: Rule[] }[] }).webhooks.flatMap((w) => w.rules.flatMap((r) => r.apiGroups.flatMap((g) => r.apiVersions.flatMap((v) => r.resources.flatMap((res) => r.operations.map((op) => `${g}/${v}/${res}/${op}`)))))));
  const expected = (pick: (m: (typeof POLICY_MODULES)[number]) => readonly string[]) =>
    new Set(POLICY_MODULES.flatMap((m) => m.kind.versions.flatMap((v) => pick(m).map((op) => `${m.kind.group}/${v}/${m.kind.resource}/${op}`))));
  t.same(sent(configs[0]), expected((m) => m.validates), 'validating');
  t.same(sent(configs[1]), expected((m) => m.mutates), 'mutating');

  const plain = webhookConfigurations({ url: 'https://x', caPem: 'x', name: 'x', failurePolicy: 'Fail', timeoutSeconds: 5, excludedNamespaces: [] });
  const optional = POLICY_MODULES.filter((m) => m.enabledBy !== undefined).map((m) => m.kind.resource);
  for (const config of plain) for (const entry of sent(config)) t.notOk(optional.some((resource) => entry.includes(`/${resource}/`)), `${entry}: only with its option`);
});

t.test('the informers cache the Istio kinds the policies read', async (t) => {
  t.same(ISTIO_RESOURCES.map((r) => [r.kind, r.plural, r.pluralKind]), [
    ['Gateway', 'gateways', 'Gateways'],
    ['ServiceEntry', 'serviceentries', 'ServiceEntries'],
    ['DestinationRule', 'destinationrules', 'DestinationRules'],
    ['VirtualService', 'virtualservices', 'VirtualServices'],
  ]);
  t.same(CLUSTER_READS.map((k) => k.kind), ['Service', 'Gateway', 'ServiceEntry', 'DestinationRule', 'VirtualService']);
  t.same(VALIDATED_MODULES.map((m) => m.kind.kind), ['Service', 'Namespace', 'Gateway', 'VirtualService', 'DestinationRule']);
});

t.test("the README's rule tables list every rule with its registered severity", async (t) => {
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
  const rows = [...readme.matchAll(/^\| `([a-z-]+)` \| (error|warning) \|/gm)].map((m) => ({ id: m[1], severity: m[2] }));
  t.same(
    [...rows].sort((a, b) => String(a.id).localeCompare(String(b.id))),
    REGISTERED_RULES.map((rule) => ({ id: rule.id, severity: rule.severity })).sort((a, b) => a.id.localeCompare(b.id)),
  );
});

t.test('the differential rule mapping uses the Istio codes the registry gives each rule', async (t) => {
  for (const row of RULE_MAPPING) {
    const rule = REGISTERED_RULES.find((r) => r.id === row.rule);
    t.ok(rule?.istioCodes.includes(row.code), `${row.code} ${row.kind} → ${row.rule} is registered`);
  }
  // Stored-only rules never run in `check`, which the differential test compares with Istio.
  for (const rule of REGISTERED_RULES.filter((r) => !r.storedOnly)) {
    for (const code of rule.istioCodes) t.ok(RULE_MAPPING.some((row) => row.rule === rule.id && row.code === code), `${rule.id} ${code} is in the mapping`);
  }
});

t.test('every finding on the differential corpus has the severity its rule is registered with', async (t) => {
  const corpus = new URL('./istio-differential/corpus/', import.meta.url).pathname;
  const objects = await loadManifests([corpus], async () => '');
  const result = runCheck(objects, DEFAULT_CONFIG, { fix: false, stored: true });
  t.ok(result.findings.length > 40, `${result.findings.length} findings`);
  const seen = new Set<string>();
  for (const finding of result.findings) {
    seen.add(finding.rule);
    const rule = REGISTERED_RULES.find((r) => r.id === finding.rule);
    if (rule?.severity !== finding.severity) t.fail(`${finding.rule} reported as ${finding.severity} in ${finding.file}`);
  }
  t.ok(seen.size >= 12, `${seen.size} rules fired`);
});
