import t from 'tap';
import jsonpatch from 'fast-json-patch';
import { handleMutate, handleValidate } from '../src/admission/handlers.ts';
import type { AdmissionRequest } from '../src/admission/review.ts';
import { namespace, review, service, testConfig } from './helpers/reviews.ts';

const config = testConfig();
const request = (options: Parameters<typeof review>[0]) => review(options).request as unknown as AdmissionRequest;

t.test('UPDATE of a legacy Service: old violations warn, a new bad port is denied', async (t) => {
  const legacy = service('legacy', [{ name: 'data', port: 12345 }]);
  const edited = { ...legacy, metadata: { ...legacy.metadata, labels: { team: 'a' } } };
  const relabel = handleValidate(request({ operation: 'UPDATE', object: edited, oldObject: legacy }), config);
  t.equal(relabel.response.allowed, true);
  t.equal(relabel.decision, 'warned');
  t.match(relabel.response.warnings, [/^Service default\/legacy: \[port-protocol\] spec\.ports\[0\] \(port 12345, name "data"\)/, /^Service default\/legacy: this problem already existed before this update, so it does not block it/]);

  const withNewPort = service('legacy', [{ name: 'data', port: 12345 }, { name: 'metricsz', port: 9100 }]);
  const denied = handleValidate(request({ operation: 'UPDATE', object: withNewPort, oldObject: legacy }), config);
  t.equal(denied.response.allowed, false);
  t.same(denied.response.status?.details?.causes.map((c) => c.field), ['spec.ports[1].name']);
  t.match(denied.response.warnings, [/^Service default\/legacy: \[port-protocol\] spec\.ports\[0\]/, /^Service default\/legacy: this problem already existed before this update/], 'the old violation is still reported, as a warning');
});

t.test('a warning about a port keeps the whole advice, even for the longest names', async (t) => {
  const warnConfig = testConfig({ enforcement: 'warn' });
  const longest = service('s'.repeat(63), [{ name: 'q'.repeat(63), port: 65535 }, { name: 'dist', port: 25672 }], { namespace: 'n'.repeat(63) });
  const outcome = handleValidate(request({ namespace: 'n'.repeat(63), object: longest }), warnConfig);
  t.equal(outcome.response.allowed, true);
  const warnings = outcome.response.warnings ?? [];
  t.equal(warnings.length, 2);
  for (const warning of warnings) {
    t.ok(warning.length <= 256, `${warning.length} characters`);
    t.match(warning, /^Service n+…s+: \[port-protocol\] spec\.ports\[\d\] \(port \d+\): Istio cannot tell its protocol and will sniff it; rename it "http-\d+" if it serves HTTP \("grpc-\d+" for gRPC\), else "tcp-\d+", or set appProtocol\.$/);
  }
});

t.test('reordering ports on UPDATE does not turn an old violation into a new one', async (t) => {
  const legacy = service('legacy', [{ name: 'http', port: 80 }, { name: 'data', port: 12345 }]);
  const reordered = service('legacy', [{ name: 'data', port: 12345 }, { name: 'http', port: 80 }]);
  const outcome = handleValidate(request({ operation: 'UPDATE', object: reordered, oldObject: legacy }), config);
  t.equal(outcome.response.allowed, true);
});

t.test('exempt and system namespaces are skipped by both webhooks', async (t) => {
  const bad = (ns: string) => service('data', [{ name: 'data', port: 12345 }], { namespace: ns });
  const exemptConfig = testConfig({ 'exempt-namespaces': 'sandbox' });
  for (const ns of ['sandbox', 'kube-system', 'kube-public', 'kube-node-lease', 'local-path-storage']) {
    const v = handleValidate(request({ namespace: ns, object: bad(ns) }), exemptConfig);
    t.equal(v.decision, 'skipped', `validate ${ns}`);
    const m = handleMutate(request({ namespace: ns, object: service('web', [{ name: 'web', port: 8080 }], { namespace: ns }) }), exemptConfig);
    t.equal(m.decision, 'skipped', `mutate ${ns}`);
  }
  const controlPlane = service('istiod', [{ name: 'data', port: 12345 }], { labels: { istio: 'pilot' } });
  t.equal(handleValidate(request({ object: controlPlane }), config).decision, 'skipped');
});

t.test('what the webhook configurations never send is skipped in-process too: its own namespace, exempt Namespace objects, the opt-out label', async (t) => {
  const bad = (ns: string, labels?: Record<string, string>) => service('data', [{ name: 'data', port: 12345 }], { namespace: ns, ...(labels ? { labels } : {}) });
  const exemptConfig = testConfig({ 'exempt-namespaces': 'sandbox', namespace: 'mesh-system' });
  t.equal(handleValidate(request({ namespace: 'mesh-system', object: bad('mesh-system') }), exemptConfig).decision, 'skipped', 'the webhook\'s own namespace');
  t.equal(handleValidate(request({ namespace: 'shop', object: bad('shop', { 'mesh-admission.io/ignore': 'true' }) }), exemptConfig).decision, 'skipped', 'the opt-out label');
  t.equal(handleValidate(request({ namespace: 'shop', object: bad('shop', { 'mesh-admission.io/ignore': 'false' }) }), exemptConfig).decision, 'denied', 'only the value true opts out');
  const conflicted = (name: string) => namespace(name, { 'istio-injection': 'enabled', 'istio.io/rev': 'canary' });
  for (const name of ['sandbox', 'mesh-system', 'kube-system']) {
    t.equal(handleValidate(request({ kind: 'Namespace', namespace: '', object: conflicted(name) }), exemptConfig).decision, 'skipped', `Namespace ${name}`);
  }
  t.equal(handleValidate(request({ kind: 'Namespace', namespace: '', object: conflicted('team-a') }), exemptConfig).decision, 'warned');
});

t.test('the namespace comes from the object when the request has none', async (t) => {
  const bad = service('data', [{ name: 'data', port: 12345 }], { namespace: 'kube-system' });
  t.equal(handleValidate(request({ namespace: '', object: bad }), config).decision, 'skipped');
});

t.test('mutation on UPDATE keeps names of ports that already existed', async (t) => {
  const old = service('web', [{ name: 'web', port: 8080 }]);
  const updated = service('web', [{ name: 'web', port: 8080 }, { name: 'ui', port: 3000 }]);
  const outcome = handleMutate(request({ operation: 'UPDATE', object: updated, oldObject: old }), config);
  const patch = JSON.parse(Buffer.from(outcome.response.patch ?? '', 'base64').toString());
  const result = jsonpatch.applyPatch(structuredClone(updated), patch).newDocument;
  t.same(result.spec.ports.map((p: { name?: string }) => p.name), ['web', 'http-ui']);
});

t.test('namespace injection happens on CREATE only, never for the webhook\'s own namespace', async (t) => {
  t.equal(handleMutate(request({ kind: 'Namespace', namespace: '', operation: 'UPDATE', object: namespace('team-a'), oldObject: namespace('team-a') }), config).decision, 'skipped');
  t.equal(handleMutate(request({ kind: 'Namespace', namespace: '', object: namespace('mesh-admission') }), config).decision, 'skipped');
  t.equal(handleMutate(request({ kind: 'Namespace', namespace: '', object: namespace('team-a') }), config).decision, 'mutated');
  const disabled = testConfig({ injection: 'false' });
  t.equal(handleMutate(request({ kind: 'Namespace', namespace: '', object: namespace('team-a') }), disabled).decision, 'allowed');
});

t.test('a Namespace with both injection labels is allowed with a warning', async (t) => {
  const outcome = handleValidate(request({ kind: 'Namespace', namespace: '', object: namespace('x', { 'istio-injection': 'enabled', 'istio.io/rev': 'canary' }) }), config);
  t.equal(outcome.response.allowed, true);
  t.match(outcome.response.warnings?.[0], /namespace-injection-conflict/);
});

t.test('Pods: holdApplicationUntilProxyStarts is merged on CREATE only when enabled', async (t) => {
  const pod = (annotations?: Record<string, string>) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: 'shop', ...(annotations ? { annotations } : {}) }, spec: { containers: [{ name: 'web', image: 'web:1' }] } });
  const hold = testConfig({ 'hold-application-until-proxy-starts': 'true' });
  t.equal(handleMutate(request({ kind: 'Pod', namespace: 'shop', object: pod() }), config).decision, 'skipped', 'off by default');
  const outcome = handleMutate(request({ kind: 'Pod', namespace: 'shop', object: pod({ 'proxy.istio.io/config': '{"concurrency":2}' }) }), hold);
  t.equal(outcome.decision, 'mutated');
  const patch = JSON.parse(Buffer.from(outcome.response.patch ?? '', 'base64').toString());
  t.same(patch, [{ op: 'replace', path: '/metadata/annotations/proxy.istio.io~1config', value: '{"concurrency":2,"holdApplicationUntilProxyStarts":true}' }]);
  t.match(outcome.response.warnings, [/holdApplicationUntilProxyStarts: true/]);
  t.equal(handleMutate(request({ kind: 'Pod', namespace: 'shop', operation: 'UPDATE', object: pod(), oldObject: pod() }), hold).decision, 'skipped', 'never on UPDATE');
  t.equal(handleMutate(request({ kind: 'Pod', namespace: 'shop', object: pod({ 'proxy.istio.io/config': 'holdApplicationUntilProxyStarts: false' }) }), hold).decision, 'allowed', "the user's false is kept");
  t.equal(handleMutate(request({ kind: 'Pod', namespace: 'sandbox', object: pod() }), testConfig({ 'hold-application-until-proxy-starts': 'true', 'exempt-namespaces': 'sandbox' })).decision, 'skipped', 'exempt namespaces');
  const broken = handleMutate(request({ kind: 'Pod', namespace: 'shop', object: pod({ 'proxy.istio.io/config': 'concurrency: [2' }) }), hold);
  t.equal(broken.decision, 'warned', 'an unreadable annotation: allowed unchanged, with a warning');
  t.equal(broken.response.patch, undefined);
  t.match(broken.response.warnings, [/could not be merged/]);
});

t.test('validation messages follow the configured hint tables', async (t) => {
  const config = testConfig({}, 'mutation:\n  nameHints: { data: tcp }\n');
  const request = review({ object: service('data', [{ name: 'data', port: 12345 }]) }).request as unknown as AdmissionRequest;
  t.match(handleValidate(request, config).response.status?.message, /rename it "tcp-data" \(the name "data" suggests tcp\)/);
});
