import t from 'tap';
import jsonpatch from 'fast-json-patch';
import { parse } from 'yaml';
import { HOLD_KEY, mutatePodProxyConfig, PROXY_CONFIG_ANNOTATION } from '../src/policies/pod-proxy-config.ts';
import { WARNING_LIMIT } from '../src/warnings.ts';
import type { KubeObject } from '../src/policies/types.ts';

function pod(annotations?: unknown, extra: { labels?: unknown; spec?: unknown } = {}): KubeObject {
  const metadata: Record<string, unknown> = { name: 'web-7d9f', namespace: 'shop' };
  if (annotations !== undefined) metadata.annotations = annotations;
  if (extra.labels !== undefined) metadata.labels = extra.labels;
  return { apiVersion: 'v1', kind: 'Pod', metadata, spec: extra.spec ?? { containers: [{ name: 'web', image: 'web:1' }] } };
}

/** The JSON patch the webhook would send: always computed by diffing, never by hand. */
function patchOf(original: KubeObject) {
  const { mutated, notes } = mutatePodProxyConfig(original);
  return { patch: jsonpatch.compare(original, mutated), notes, mutated };
}

function proxyConfig(object: KubeObject): unknown {
  return (object.metadata?.annotations as Record<string, unknown> | undefined)?.[PROXY_CONFIG_ANNOTATION];
}

t.test('a pod without the annotation gets holdApplicationUntilProxyStarts: true, with a note saying why', async (t) => {
  const original = pod({ team: 'shop' });
  const { patch, notes } = patchOf(original);
  t.same(patch, [{ op: 'add', path: '/metadata/annotations/proxy.istio.io~1config', value: 'holdApplicationUntilProxyStarts: true' }]);
  t.equal(notes.length, 1);
  t.equal(notes[0]?.field, 'metadata.annotations[proxy.istio.io/config]');
  t.match(notes[0]?.message, /holdApplicationUntilProxyStarts: true/);
  t.match(notes[0]?.message, /start once the Istio sidecar is ready, so they have network/);
  t.match(notes[0]?.message, /set it to false there to opt out/);
  t.ok((notes[0]?.message.length ?? 0) <= WARNING_LIMIT, 'fits in one admission warning');
});

t.test('a pod without annotations gets a whole annotations object; a pod without metadata gets metadata', async (t) => {
  t.same(patchOf(pod()).patch, [{ op: 'add', path: '/metadata/annotations', value: { [PROXY_CONFIG_ANNOTATION]: `${HOLD_KEY}: true` } }]);
  t.same(patchOf(pod(null)).patch, [{ op: 'replace', path: '/metadata/annotations', value: { [PROXY_CONFIG_ANNOTATION]: `${HOLD_KEY}: true` } }], 'annotations: null is "none"');
  t.same(patchOf({ apiVersion: 'v1', kind: 'Pod', spec: {} }).patch, [{ op: 'add', path: '/metadata', value: { annotations: { [PROXY_CONFIG_ANNOTATION]: `${HOLD_KEY}: true` } } }]);
  t.equal(proxyConfig(patchOf(pod({ [PROXY_CONFIG_ANNOTATION]: '  \n' })).mutated), `${HOLD_KEY}: true`, 'an empty annotation is replaced');
});

t.test('a JSON annotation stays JSON and keeps its other keys', async (t) => {
  const original = pod({ [PROXY_CONFIG_ANNOTATION]: '{"concurrency":2,"proxyMetadata":{"ISTIO_META_DNS_CAPTURE":"true"}}', other: 'x' });
  const { patch, mutated } = patchOf(original);
  const value = proxyConfig(mutated) as string;
  t.same(patch, [{ op: 'replace', path: '/metadata/annotations/proxy.istio.io~1config', value }], 'only the annotation changes');
  t.same(JSON.parse(value), { concurrency: 2, proxyMetadata: { ISTIO_META_DNS_CAPTURE: 'true' }, holdApplicationUntilProxyStarts: true });
  t.equal(value, '{"concurrency":2,"proxyMetadata":{"ISTIO_META_DNS_CAPTURE":"true"},"holdApplicationUntilProxyStarts":true}');
  const pretty = proxyConfig(patchOf(pod({ [PROXY_CONFIG_ANNOTATION]: '{\n  "concurrency": 2\n}' })).mutated);
  t.equal(pretty, '{\n  "concurrency": 2,\n  "holdApplicationUntilProxyStarts": true\n}', 'pretty JSON stays pretty');
});

t.test('a YAML annotation stays YAML, keeps its other keys and its comments', async (t) => {
  const text = 'concurrency: 2 # two workers\nproxyMetadata:\n  ISTIO_META_DNS_CAPTURE: "true"\n';
  const { mutated } = patchOf(pod({ [PROXY_CONFIG_ANNOTATION]: text }));
  const value = proxyConfig(mutated) as string;
  t.equal(value, `${text}holdApplicationUntilProxyStarts: true\n`);
  t.same(parse(value), { concurrency: 2, proxyMetadata: { ISTIO_META_DNS_CAPTURE: 'true' }, holdApplicationUntilProxyStarts: true });
  t.equal(proxyConfig(patchOf(pod({ [PROXY_CONFIG_ANNOTATION]: 'concurrency: 2' })).mutated), 'concurrency: 2\nholdApplicationUntilProxyStarts: true', 'no trailing newline added');
  const flow = proxyConfig(patchOf(pod({ [PROXY_CONFIG_ANNOTATION]: '{concurrency: 2}' })).mutated) as string;
  t.same(parse(flow), { concurrency: 2, holdApplicationUntilProxyStarts: true }, 'a YAML flow mapping (not JSON) is merged as YAML');
  const commentOnly = proxyConfig(patchOf(pod({ [PROXY_CONFIG_ANNOTATION]: '# tuned later\n' })).mutated) as string;
  t.match(commentOnly, /^# tuned later\n/);
  t.same(parse(commentOnly), { holdApplicationUntilProxyStarts: true });
});

t.test('an explicit value set by the user is kept, silently (either spelling, JSON or YAML)', async (t) => {
  for (const text of [
    'holdApplicationUntilProxyStarts: false',
    '{"holdApplicationUntilProxyStarts": false, "concurrency": 2}',
    'hold_application_until_proxy_starts: false',
    '{"hold_application_until_proxy_starts": false}',
    'holdApplicationUntilProxyStarts: true\n',
  ]) {
    const { patch, notes } = patchOf(pod({ [PROXY_CONFIG_ANNOTATION]: text }));
    t.same(patch, [], `kept: ${text}`);
    t.same(notes, [], '... without a note');
  }
});

t.test('an annotation that is not a YAML or JSON mapping is left alone, with a note that it could not be merged', async (t) => {
  for (const [text, reason] of [
    ['concurrency: [2\n', /invalid YAML/],
    ['a: 1\n---\nb: 2\n', /invalid YAML/],
    ['a: 1\na: 2\n', /invalid YAML/],
    ['a: *missing', /invalid YAML/],
    ['- holdApplicationUntilProxyStarts\n', /not a mapping/],
    ['["holdApplicationUntilProxyStarts"]', /not a mapping/],
    ['just text', /not a mapping/],
    ['null', /not a mapping/],
  ] as const) {
    const original = pod({ [PROXY_CONFIG_ANNOTATION]: text });
    const { patch, notes } = patchOf(original);
    t.same(patch, [], `unchanged: ${JSON.stringify(text)}`);
    t.equal(notes.length, 1);
    t.match(notes[0]?.message, /^annotation proxy\.istio\.io\/config is not a YAML or JSON mapping/);
    t.match(notes[0]?.message, reason);
    t.match(notes[0]?.message, /could not be merged/);
    t.ok((notes[0]?.message.length ?? 0) <= WARNING_LIMIT);
  }
  const { notes } = patchOf(pod({ [PROXY_CONFIG_ANNOTATION]: 42 }));
  t.match(notes[0]?.message, /not a string/, 'a non-string annotation value');
});

t.test('pods Istio does not inject are left alone', async (t) => {
  const optOuts = [
    pod(undefined, { labels: { 'sidecar.istio.io/inject': 'false' } }),
    pod({ 'sidecar.istio.io/inject': 'false' }),
    pod(undefined, { labels: { 'sidecar.istio.io/inject': 'no' } }),
    pod({ 'sidecar.istio.io/inject': 'true' }, { labels: { 'sidecar.istio.io/inject': 'false' } }),
    pod(undefined, { spec: { hostNetwork: true, containers: [] } }),
  ];
  for (const original of optOuts) t.same(patchOf(original), { patch: [], notes: [], mutated: original }, JSON.stringify(original.metadata));
  t.equal(patchOf(pod(undefined, { labels: { 'sidecar.istio.io/inject': 'true' } })).patch.length, 1, 'inject=true is mutated');
  t.equal(patchOf(pod({ 'sidecar.istio.io/inject': 'false' }, { labels: { 'sidecar.istio.io/inject': 'true' } })).patch.length, 1, 'the label wins over the annotation');
});

t.test('junk shapes never throw and are left alone', async (t) => {
  const junk: unknown[] = [
    null,
    42,
    'pod',
    [],
    { metadata: null },
    { metadata: 'x' },
    { metadata: [] },
    { metadata: { annotations: [] } },
    { metadata: { annotations: 'x' } },
    { metadata: { annotations: 7 } },
  ];
  for (const value of junk) {
    t.doesNotThrow(() => mutatePodProxyConfig(value as KubeObject), JSON.stringify(value));
    const { mutated, notes } = mutatePodProxyConfig(value as KubeObject);
    t.same(mutated, value, `unchanged: ${JSON.stringify(value)}`);
    t.same(notes, []);
  }
  const odd = { metadata: { labels: 'x', annotations: {} }, spec: 'x' };
  t.equal(patchOf(odd as KubeObject).patch.length, 1, 'junk labels and spec do not stop the mutation');
});

t.test('mutation is idempotent and never modifies its input', async (t) => {
  for (const original of [pod(), pod({ [PROXY_CONFIG_ANNOTATION]: '{"concurrency":2}' }), pod({ [PROXY_CONFIG_ANNOTATION]: 'concurrency: 2\n' })]) {
    const before = structuredClone(original);
    const first = mutatePodProxyConfig(original);
    t.same(original, before, 'the input is not modified');
    const second = patchOf(first.mutated);
    t.same(second.patch, [], 'a second pass changes nothing');
    t.same(second.notes, []);
  }
  const shared = pod({ [PROXY_CONFIG_ANNOTATION]: 'concurrency: 2' });
  const { mutated } = mutatePodProxyConfig(shared);
  t.equal((mutated as { spec: unknown }).spec, shared.spec, 'unchanged subtrees are shared, not copied');
});
