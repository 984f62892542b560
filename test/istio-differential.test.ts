// The comparison logic of the differential test against Istio (test/e2e/istio-differential.e2e.ts)
// and the agreement between its rule table and the README's.
import { readFile } from 'node:fs/promises';
import t from 'tap';
import {
  compareScenario,
  judge,
  parseDeliberateDifferences,
  type CheckFinding,
} from './istio-differential/compare.ts';
import { RULE_MAPPING, ruleForIstioFinding, type IstioFinding } from './istio-differential/rule-mapping.ts';

function istio(code: string, kind: string, namespace: string, name: string, message: string): IstioFinding {
  return { code, level: 'Warning', kind, namespace, name, message };
}

function check(rule: string, kind: string, namespace: string, name: string): CheckFinding {
  return { rule, kind, namespace, name };
}

t.test('Istio messages are translated by code, kind and message text; unmirrored ones are dropped', async (t) => {
  t.equal(ruleForIstioFinding(istio('IST0101', 'VirtualService', 'a', 'b', 'Referenced host not found: "x"')), 'virtualservice-destination-not-found');
  t.equal(ruleForIstioFinding(istio('IST0101', 'VirtualService', 'a', 'b', 'Referenced host:port not found: "x:1"')), 'virtualservice-port-not-found');
  t.equal(ruleForIstioFinding(istio('IST0101', 'VirtualService', 'a', 'b', 'Referenced mirror host not found: "x"')), 'virtualservice-destination-not-found');
  t.equal(ruleForIstioFinding(istio('IST0101', 'Gateway', 'a', 'b', 'Referenced selector not found: "app=x"')), 'gateway-port-not-exposed');
  t.equal(ruleForIstioFinding(istio('IST0118', 'Service', 'a', 'b', 'Port name ...')), 'port-protocol');
  t.equal(ruleForIstioFinding(istio('IST0102', 'Namespace', '', 'b', 'The namespace is not enabled for Istio injection')), undefined);
  t.equal(ruleForIstioFinding(istio('IST0106', 'Gateway', 'a', 'b', 'Schema validation error: something else')), undefined);
});

t.test('a scenario compares distinct problems per rule and object', async (t) => {
  const same = compareScenario('s', [
    istio('IST0118', 'Service', 'shop', 'web', 'Port name a'),
    istio('IST0118', 'Service', 'shop', 'web', 'Port name b'),
    istio('IST0102', 'Namespace', '', 'shop', 'not injected'),
  ], [check('port-protocol', 'Service', 'shop', 'web'), check('port-protocol', 'Service', 'shop', 'web')]);
  t.same(same, { compared: 1, differences: [] });

  // Istio repeats one message per route with the problem; check gives it once.
  const repeated = compareScenario('s', [
    istio('IST0101', 'VirtualService', 'shop', 'r', 'Referenced host not found: "x"'),
    istio('IST0101', 'VirtualService', 'shop', 'r', 'Referenced host not found: "x"'),
  ], [check('virtualservice-destination-not-found', 'VirtualService', 'shop', 'r')]);
  t.same(repeated.differences, []);

  const differing = compareScenario('s', [istio('IST0123', 'Namespace', '', 'shop', 'labels')], [check('port-duplicate', 'Service', 'shop', 'web')]);
  t.same(differing.differences.map((d) => [d.rule, d.object, d.istio, d.check]), [
    ['namespace-injection-conflict', 'Namespace shop', 1, 0],
    ['port-duplicate', 'Service shop/web', 0, 1],
  ]);
});

t.test('deliberate differences match by scenario, rule, object and side; unused ones are reported', async (t) => {
  const entries = parseDeliberateDifferences([
    '# comment',
    '* | port-duplicate | * | check | the API server rejects it',
    'corpus/a.yaml | namespace-injection-conflict | Namespace shop | istio | a reason',
    'corpus/b.yaml | port-protocol | Service shop/web | check | never occurs',
  ].join('\n'));
  const differences = [
    ...compareScenario('corpus/a.yaml', [istio('IST0123', 'Namespace', '', 'shop', 'labels')], [check('port-duplicate', 'Service', 'x', 'y')]).differences,
    // The same object on the other side is not the listed difference.
    ...compareScenario('corpus/c.yaml', [], [check('namespace-injection-conflict', 'Namespace', '', 'shop')]).differences,
  ];
  const verdict = judge(differences, entries);
  t.same(verdict.deliberate.map(({ difference, entry }) => [difference.rule, entry.line]), [
    ['namespace-injection-conflict', 3],
    ['port-duplicate', 2],
  ]);
  t.same(verdict.unexpected.map((d) => `${d.scenario} ${d.rule}`), ['corpus/c.yaml namespace-injection-conflict']);
  t.same(verdict.unused.map((entry) => entry.line), [4]);
});

t.test('a malformed deliberate difference is an error naming its line', async (t) => {
  t.throws(() => parseDeliberateDifferences('a | b | c | both | reason'), /deliberate-differences\.txt:1/);
  t.throws(() => parseDeliberateDifferences('\na | b | c | istio'), /deliberate-differences\.txt:2/);
});

t.test('the README shows the rule table the differential test uses', async (t) => {
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
  const rows = [...readme.matchAll(/^\| (IST\d{4}) \| (\w+) \| ([^|]*) \| `([a-z-]+)` \|$/gm)].map((m) => ({
    code: m[1],
    kind: m[2],
    message: (m[3] ?? '').trim() === 'any' ? '' : (m[3] ?? '').trim().replace(/^"|"$/g, ''),
    rule: m[4],
  }));
  t.same(rows, RULE_MAPPING.map((row) => ({ ...row })));
});
