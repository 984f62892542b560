import t from 'tap';
import jsonpatch from 'fast-json-patch';
import {
  ALWAYS_EXCLUDED_NAMESPACES,
  mutateNamespace,
  validateNamespace,
  validateNamespaceInjected,
  type InjectionOptions,
} from '../src/policies/namespace-injection.ts';
import type { KubeObject } from '../src/policies/types.ts';

const injection: InjectionOptions = { enabled: true, mode: 'istio-injection', excludedNamespaces: [] };
const revision: InjectionOptions = { enabled: true, mode: 'revision', revision: '1-22', excludedNamespaces: [] };
const ambient: InjectionOptions = { enabled: true, mode: 'ambient', excludedNamespaces: [] };

function namespace(name: unknown, labels?: unknown): KubeObject {
  const metadata: Record<string, unknown> = { name };
  if (labels !== undefined) metadata.labels = labels;
  return { apiVersion: 'v1', kind: 'Namespace', metadata };
}

/** The JSON patch the webhook would send: always computed by diffing, never by hand. */
function patchOf(original: KubeObject, options: InjectionOptions) {
  const { mutated, notes } = mutateNamespace(original, options);
  return { patch: jsonpatch.compare(original, mutated), notes, mutated };
}

t.test('istio-injection mode adds istio-injection=enabled next to existing labels', async (t) => {
  const original = namespace('team-a', { team: 'a' });
  const { patch, notes } = patchOf(original, injection);
  t.same(patch, [{ op: 'add', path: '/metadata/labels/istio-injection', value: 'enabled' }]);
  t.equal(notes.length, 1);
  t.equal(notes[0]?.field, 'metadata.labels');
  t.equal(
    notes[0]?.message,
    'added label istio-injection=enabled so Istio injects sidecars into its pods; ' +
      'set istio-injection=disabled to opt out',
  );
});

t.test('revision mode adds istio.io/rev, escaped in the patch path', async (t) => {
  const original = namespace('team-a', { team: 'a' });
  const { patch, notes } = patchOf(original, revision);
  t.same(patch, [{ op: 'add', path: '/metadata/labels/istio.io~1rev', value: '1-22' }]);
  t.match(notes[0]?.message, /istio\.io\/rev=1-22/);
  t.match(notes[0]?.message, /injects sidecars into its pods/);
});

t.test('ambient mode adds istio.io/dataplane-mode=ambient and explains the opt-out', async (t) => {
  const original = namespace('team-a', {});
  const { patch, notes } = patchOf(original, ambient);
  t.same(patch, [{ op: 'add', path: '/metadata/labels/istio.io~1dataplane-mode', value: 'ambient' }]);
  t.match(notes[0]?.message, /istio\.io\/dataplane-mode=none to opt out/);
});

t.test('a namespace without labels gets a whole labels object', async (t) => {
  const original = namespace('team-a');
  const { patch } = patchOf(original, injection);
  t.same(patch, [{ op: 'add', path: '/metadata/labels', value: { 'istio-injection': 'enabled' } }]);
});

t.test('labels: null is treated like missing labels (Kubernetes decodes it as no labels)', async (t) => {
  const original = namespace('team-a', null);
  const { mutated, notes } = patchOf(original, injection);
  t.same(mutated.metadata?.labels, { 'istio-injection': 'enabled' });
  t.equal(notes.length, 1);
});

t.test('a namespace without metadata gets metadata.labels', async (t) => {
  const original: KubeObject = { apiVersion: 'v1', kind: 'Namespace' };
  const { patch, notes } = patchOf(original, injection);
  t.same(patch, [{ op: 'add', path: '/metadata', value: { labels: { 'istio-injection': 'enabled' } } }]);
  t.match(notes[0]?.message, /into its pods/);
});

t.test('always-excluded namespaces are never labelled', async (t) => {
  t.same([...ALWAYS_EXCLUDED_NAMESPACES].sort(), [
    'istio-system',
    'kube-node-lease',
    'kube-public',
    'kube-system',
    'local-path-storage',
  ]);
  for (const name of ALWAYS_EXCLUDED_NAMESPACES) {
    for (const options of [injection, revision, ambient]) {
      const { patch, notes } = patchOf(namespace(name), options);
      t.same(patch, [], `${name} (${options.mode})`);
      t.same(notes, []);
    }
  }
});

t.test('configured exclusions (and the webhook namespace the caller adds) are never labelled', async (t) => {
  const options: InjectionOptions = { ...injection, excludedNamespaces: ['mesh-admission', 'legacy'] };
  t.same(patchOf(namespace('mesh-admission'), options).patch, []);
  t.same(patchOf(namespace('legacy', { a: 'b' }), options).patch, []);
  t.equal(patchOf(namespace('team-a'), options).patch.length, 1, 'other namespaces still labelled');
});

t.test('disabled injection changes nothing', async (t) => {
  t.same(patchOf(namespace('team-a'), { ...injection, enabled: false }).patch, []);
});

t.test('revision mode without a revision changes nothing', async (t) => {
  t.same(patchOf(namespace('team-a'), { ...revision, revision: '' }).patch, []);
  t.same(patchOf(namespace('team-a'), { ...revision, revision: undefined }).patch, []);
});

t.test("a user's decision label is kept, whatever the mode", async (t) => {
  const decisions: Record<string, string>[] = [
    { 'istio-injection': 'disabled' },
    { 'istio-injection': 'enabled' },
    { 'istio-injection': '' },
    { 'istio.io/rev': 'canary' },
    { 'istio.io/dataplane-mode': 'none' },
    { 'istio.io/dataplane-mode': 'ambient' },
  ];
  for (const labels of decisions) {
    for (const options of [injection, revision, ambient]) {
      const original = namespace('team-a', { ...labels });
      const { patch, notes, mutated } = patchOf(original, options);
      t.same(patch, [], `${JSON.stringify(labels)} in ${options.mode} mode`);
      t.same(notes, []);
      t.same(mutated.metadata?.labels, labels, 'label value untouched');
    }
  }
});

t.test('mutation is idempotent: a second pass yields an empty patch', async (t) => {
  for (const options of [injection, revision, ambient]) {
    const first = mutateNamespace(namespace('team-a'), options).mutated;
    const second = mutateNamespace(first, options);
    t.same(jsonpatch.compare(first, second.mutated), [], options.mode);
    t.same(second.notes, []);
  }
});

t.test('the input object is never modified', async (t) => {
  const original = namespace('team-a', { team: 'a' });
  const snapshot = structuredClone(original);
  const { mutated } = mutateNamespace(original, revision);
  t.same(original, snapshot);
  t.not(mutated, original, 'a copy is returned');
  t.not(mutated.metadata, original.metadata);
  t.not(mutated.metadata?.labels, original.metadata?.labels);

  const bare: KubeObject = { kind: 'Namespace' };
  mutateNamespace(bare, injection);
  t.same(bare, { kind: 'Namespace' }, 'metadata not added to the input');
});

t.test('junk never throws and is never changed', async (t) => {
  const junk: unknown[] = [
    namespace('team-a', ['istio-injection']),
    namespace('team-a', 'istio-injection=enabled'),
    namespace(42),
    namespace({ name: 'x' }),
    { kind: 'Namespace', metadata: null },
    { kind: 'Namespace', metadata: [] },
    { kind: 'Namespace', metadata: 'team-a' },
    null,
    [],
    'namespace',
  ];
  for (const input of junk) {
    for (const options of [injection, revision, ambient]) {
      const original = input as KubeObject;
      const result = mutateNamespace(original, options);
      t.same(result.mutated, input, `${JSON.stringify(input)} unchanged`);
      t.same(result.notes, []);
      t.same(validateNamespace(original), []);
    }
  }
  const unknownMode = { ...injection, mode: 'sidecar' } as unknown as InjectionOptions;
  t.same(mutateNamespace(namespace('team-a'), unknownMode).notes, [], 'unknown mode from bad config');
});

t.test('notes stay under 256 characters even for absurd names', async (t) => {
  const name = 'n'.repeat(1000);
  for (const options of [injection, revision, ambient]) {
    const { notes } = mutateNamespace(namespace(name), options);
    t.equal(notes.length, 1);
    t.ok((notes[0]?.message.length ?? 0) < 256, `${options.mode}: ${notes[0]?.message.length}`);
  }
});

t.test('validateNamespace warns when istio-injection=enabled and istio.io/rev are both set', async (t) => {
  const violations = validateNamespace(namespace('team-a', { 'istio-injection': 'enabled', 'istio.io/rev': '1-22' }));
  t.equal(violations.length, 1);
  const [violation] = violations;
  t.equal(violation?.rule, 'namespace-injection-conflict');
  t.equal(violation?.severity, 'warning');
  t.equal(violation?.field, 'metadata.labels');
  t.equal(
    violation?.message,
    'namespace "team-a" has istio-injection=enabled and istio.io/rev=1-22; pods get their sidecar by istio-injection, ' +
      'and istio.io/rev only contradicts it (IST0123). Remove it: kubectl label namespace team-a istio.io/rev-',
  );
  t.equal(validateNamespace(namespace('team-b', { 'istio-injection': 'enabled', 'istio.io/rev': '1-22' }))[0]?.identity, violation?.identity, 'identity does not depend on the name');
});

t.test('validateNamespace counts the labels as Istio does (IST0123)', async (t) => {
  const cases: [Record<string, string>, string[] | undefined][] = [
    // istio-injection counts with any value; rev and dataplane-mode only while it is absent or enabled.
    [{ 'istio-injection': 'enabled', 'istio.io/rev': 'canary' }, ['istio.io/rev']],
    [{ 'istio-injection': 'disabled', 'istio.io/rev': 'canary' }, undefined],
    [{ 'istio-injection': 'disabled', 'istio.io/dataplane-mode': 'ambient' }, undefined],
    [{ 'istio-injection': 'enabled', 'istio.io/dataplane-mode': 'ambient' }, ['istio.io/dataplane-mode']],
    [{ 'istio.io/rev': '1-22', 'istio.io/dataplane-mode': 'ambient' }, ['istio.io/dataplane-mode']],
    [{ 'istio-injection': 'enabled', 'istio.io/rev': 'a', 'istio.io/dataplane-mode': 'ambient' }, ['istio.io/rev', 'istio.io/dataplane-mode']],
    [{ 'istio-injection': 'enabled' }, undefined],
    [{ 'istio.io/rev': '1-22' }, undefined],
    [{ 'istio.io/dataplane-mode': 'ambient' }, undefined],
  ];
  for (const [labels, removed] of cases) {
    const violations = validateNamespace(namespace('team-a', labels));
    if (removed === undefined) {
      t.same(violations, [], JSON.stringify(labels));
      continue;
    }
    t.equal(violations.length, 1, JSON.stringify(labels));
    const message = violations[0]?.message ?? '';
    // The fix removes only the labels that do not decide injection: it never turns it on or off.
    t.ok(message.endsWith(`kubectl label namespace team-a ${removed.map((key) => `${key}-`).join(' ')}`), message);
    t.ok(message.length <= 256 - '[namespace-injection-conflict] '.length, `fits one warning: ${message.length}`);
  }
});

t.test('validateNamespace skips istio-system and the system namespaces, as Istio does', async (t) => {
  for (const name of ['istio-system', 'kube-system', 'kube-public', 'kube-node-lease', 'local-path-storage']) {
    t.same(validateNamespace(namespace(name, { 'istio-injection': 'enabled', 'istio.io/rev': '1-22' })), [], name);
  }
});

t.test('validateNamespace is silent without the conflict', async (t) => {
  t.same(validateNamespace(namespace('team-a')), []);
  t.same(validateNamespace(namespace('team-a', { 'istio-injection': 'enabled' })), []);
  t.same(validateNamespace(namespace('team-a', { 'istio.io/rev': '1-22' })), []);
  t.same(validateNamespace({ kind: 'Namespace' }), []);
});

t.test('what mutation adds never triggers the conflict warning', async (t) => {
  for (const options of [injection, revision, ambient]) {
    const { mutated } = mutateNamespace(namespace('team-a', { team: 'a' }), options);
    t.same(validateNamespace(mutated), [], options.mode);
  }
});

t.test('namespace-not-injected: a stored namespace is reported exactly when the mutation would label it', async (t) => {
  const [finding] = validateNamespaceInjected(namespace('legacy'), injection);
  t.match(finding, { rule: 'namespace-not-injected', severity: 'warning', field: 'metadata.labels' });
  t.match(finding?.message, /IST0102.*kubectl label namespace legacy istio-injection=enabled/);
  t.ok((finding?.message.length ?? 0) <= 256 - 'namespace-not-injected'.length - 3, 'fits one warning');
  t.match(validateNamespaceInjected(namespace('legacy'), revision)[0]?.message, /istio\.io\/rev=1-22/);
  t.match(validateNamespaceInjected(namespace('legacy'), ambient)[0]?.message, /istio\.io\/dataplane-mode=ambient/);
  const cases: [string, KubeObject, InjectionOptions][] = [
    ['labelled', namespace('shop', { 'istio-injection': 'enabled' }), injection],
    ['opted out', namespace('shop', { 'istio-injection': 'disabled' }), injection],
    ['on a revision', namespace('shop', { 'istio.io/rev': 'canary' }), injection],
    ['ambient opt-out', namespace('shop', { 'istio.io/dataplane-mode': 'none' }), injection],
    ['excluded', namespace('platform'), { ...injection, excludedNamespaces: ['platform'] }],
    ['injection off', namespace('shop'), { ...injection, enabled: false }],
    ...ALWAYS_EXCLUDED_NAMESPACES.map((name): [string, KubeObject, InjectionOptions] => [`always excluded ${name}`, namespace(name), injection]),
  ];
  for (const [what, object, options] of cases) {
    t.same(validateNamespaceInjected(object, options), [], what);
    t.same(mutateNamespace(object, options).notes, [], `${what}: the mutation agrees`);
  }
});
