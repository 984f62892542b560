import t from 'tap';
import { judge, tallyRules } from '../src/admission/decision.ts';
import { MAX_WARNINGS, WARNING_LIMIT, truncate } from '../src/warnings.ts';
import type { Violation } from '../src/policies/types.ts';
import { LazilyWorded } from '../src/policies/messages.ts';

const error = (identity: string, field = 'spec.ports[0].name'): Violation => ({
  rule: 'port-protocol', severity: 'error', field, message: `problem ${identity}`, identity,
});
const warning: Violation = { rule: 'namespace-injection-conflict', severity: 'warning', field: 'metadata.labels', message: 'both labels', identity: 'conflict' };

t.test('deny: errors deny, warnings stay warnings', async (t) => {
  const j = judge({ subject: 'Service default/a', violations: [error('a'), warning], enforcement: 'deny' });
  t.equal(j.allowed, false);
  t.equal(j.status?.code, 403);
  t.equal(j.status?.message, 'Service default/a is not ready for the Istio mesh: [port-protocol] problem a');
  t.same(j.status?.details?.causes, [{ reason: 'port-protocol', message: 'problem a', field: 'spec.ports[0].name' }]);
  t.same(j.warnings, ['Service default/a: [namespace-injection-conflict] both labels']);
  t.same(j.judged.map((x) => x.enforced), [true, false]);
});

t.test('several denials are listed one per line', async (t) => {
  const j = judge({ subject: 'Service default/a', violations: [error('a'), error('b', 'spec.ports[1].name')], enforcement: 'deny' });
  t.equal(j.status?.message, 'Service default/a is not ready for the Istio mesh (2 problems):\n- [port-protocol] problem a\n- [port-protocol] problem b');
  t.equal(j.status?.details?.causes.length, 2);
});

t.test('warn: everything is a warning', async (t) => {
  const j = judge({ subject: 'x', violations: [error('a')], enforcement: 'warn' });
  t.equal(j.allowed, true);
  t.equal(j.status, undefined);
  t.same(j.warnings, ['x: [port-protocol] problem a']);
});

t.test('grandfathering: violations already in oldObject warn, new ones deny', async (t) => {
  const j = judge({ subject: 'x', violations: [error('old'), error('new')], previous: [error('old')], enforcement: 'deny' });
  t.equal(j.allowed, false);
  t.same(j.status?.details?.causes.map((c) => c.message), ['problem new']);
  t.same(j.warnings, ['x: [port-protocol] problem old', 'x: this problem already existed before this update, so it does not block it; fix it when you can']);
  const onlyOld = judge({ subject: 'x', violations: [error('old')], previous: [error('old')], enforcement: 'deny' });
  t.equal(onlyOld.allowed, true);
});

t.test('no violations: allowed without warnings', async (t) => {
  t.same(judge({ subject: 'x', violations: [], enforcement: 'deny' }), { allowed: true, judged: [], warnings: [] });
});

t.test('warnings never exceed the Kubernetes limit', async (t) => {
  const long = truncate('x'.repeat(1000));
  t.equal(long.length, WARNING_LIMIT);
  t.equal(truncate('short'), 'short');
  const j = judge({ subject: 'x', violations: [{ ...error('a'), message: 'y'.repeat(600) }], enforcement: 'warn' });
  t.ok(j.warnings.every((w) => w.length <= WARNING_LIMIT));
});

t.test('each warning starts with its object and takes the most helpful form that fits after it', async (t) => {
  const full = `${'a'.repeat(200)} with the fix`;
  const short = 'the short form';
  const violation: Violation = { ...error('a'), message: full, shorterMessages: [short] };
  const roomy = judge({ subject: 'Service default/a-much-longer-name', warningSubject: 'Service d/a', violations: [violation], enforcement: 'warn' });
  t.same(roomy.warnings, [`Service d/a: [port-protocol] ${full}`], 'the full form fits after a short subject');
  const tight = judge({ subject: 'x', warningSubject: `Service default/${'n'.repeat(63)}`, violations: [violation], enforcement: 'warn' });
  t.same(tight.warnings, [`Service default/${'n'.repeat(63)}: [port-protocol] ${short}`], 'a long subject leaves room for the short form only');
  const none = judge({ subject: 'x', violations: [{ ...error('a'), message: 'y'.repeat(600) }], enforcement: 'warn' });
  t.match(none.warnings, [/^x: \[port-protocol\] y+\.\.\.$/], 'no form fits: the last one is cut');
});

t.test('when no form fits after a long subject, the subject is cut and the shortest form kept whole', async (t) => {
  const subject = `Service ${'n'.repeat(63)}/${'s'.repeat(63)}`;
  const short = `the shortest form, with its advice to the end: ${'z'.repeat(100)}.`;
  const violation: Violation = { ...error('a'), message: `${'a'.repeat(230)}.`, shorterMessages: [short] };
  const [warning] = judge({ subject, violations: [violation], enforcement: 'warn' }).warnings;
  t.equal(warning?.length, WARNING_LIMIT);
  t.ok(warning?.endsWith(`s: [port-protocol] ${short}`), 'the shortest form whole, after the cut subject');
  t.match(warning, /^Service n+…s+: /, 'the subject keeps its start (kind, namespace) and its end (name)');
});

t.test('tallyRules counts enforced and warned violations per rule, in the order rules first appear', async (t) => {
  const { judged } = judge({ subject: 'Service shop/web', violations: [error('a'), warning, error('b'), warning], enforcement: 'deny' });
  t.same([...tallyRules(judged)], [
    ['port-protocol', { enforced: 2, warned: 0 }],
    ['namespace-injection-conflict', { enforced: 0, warned: 2 }],
  ]);
  t.same([...tallyRules(judge({ subject: 'Service shop/web', violations: [error('a')], enforcement: 'warn' }).judged)], [['port-protocol', { enforced: 0, warned: 1 }]]);
});

t.test('a LazilyWorded violation words its message once, when first read, and shows it in JSON', async (t) => {
  let worded = 0;
  const long = `${'x'.repeat(300)}`;
  const v = new LazilyWorded('port-protocol', 'error', 'spec.ports[0]', 'id', () => {
    worded += 1;
    return [long, 'short form', 'tiny'];
  });
  t.equal(worded, 0, 'not worded when made');
  t.equal(v.message, 'short form', 'the first form that fits a warning');
  t.same(v.shorterMessages, ['tiny']);
  t.equal(worded, 1, 'worded once');
  t.same(JSON.parse(JSON.stringify(v)), { rule: 'port-protocol', severity: 'error', field: 'spec.ports[0]', message: 'short form', shorterMessages: ['tiny'], identity: 'id' });
  t.equal(judge({ subject: 'Service a/b', violations: [v], enforcement: 'deny' }).status?.message, 'Service a/b is not ready for the Istio mesh: [port-protocol] short form');
});

t.test('shorter forms given as functions are worded only when a warning needs them', async (t) => {
  const asked: string[] = [];
  const form = (text: string) => () => {
    asked.push(text);
    return text;
  };
  const lazy = () => new LazilyWorded('port-protocol', 'error', 'spec.ports[0]', 'id', () => [`full ${'x'.repeat(180)}`, form('cut form'), form('bare')]);
  const denied = judge({ subject: 'Service a/b', violations: [lazy()], enforcement: 'deny' });
  t.match(denied.status?.message, /\[port-protocol\] full x+$/);
  t.same(asked, [], 'a denial reads the message only');
  const warned = judge({ subject: 'Service a/b', violations: [lazy()], enforcement: 'warn' });
  t.match(warned.warnings[0], /^Service a\/b: \[port-protocol\] full x+$/);
  t.same(asked, [], 'a warning whose message fits beside its prefix reads no shorter form');
  const longSubject = `Service ${'n'.repeat(63)}/${'m'.repeat(63)}`;
  const cut = judge({ subject: longSubject, violations: [lazy()], enforcement: 'warn' });
  t.equal(cut.warnings[0], `${longSubject}: [port-protocol] cut form`, 'a long prefix takes the first shorter form that fits');
  t.same(asked, ['cut form', 'bare'], 'the shorter forms are worded then, once each');
  const first = lazy();
  t.same(first.shorterMessages, ['cut form', 'bare']);
  t.same(first.shorterMessages, ['cut form', 'bare']);
  t.same(asked, ['cut form', 'bare', 'cut form', 'bare'], 'and kept once worded');
});

t.test('the grandfathering note counts toward the warning limit', async (t) => {
  const errors: Violation[] = Array.from({ length: 30 }, (_, i) => ({
    rule: 'port-protocol', severity: 'error', field: `spec.ports[${i}].name`, message: `problem ${i}`, identity: `id-${i}`,
  }));
  const judgement = judge({ subject: 'Service default/x', violations: errors, previous: errors, enforcement: 'deny' });
  t.equal(judgement.allowed, true);
  t.equal(judgement.warnings.length, MAX_WARNINGS);
  t.match(judgement.warnings.at(-1), /already existed before this update/);
  t.match(judgement.warnings.at(-2), /more warnings/);
});
