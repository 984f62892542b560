import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import jsonpatch from 'fast-json-patch';
import {
  CA_GENERATION_ANNOTATION,
  CaBundleRegistrar,
  bundleCertificates,
  bundleContains,
  caBundlePatch,
  decodeCaBundle,
  installPatch,
  isComplete,
  isOlderGeneration,
  joinBundle,
  overlapBundle,
  parseGeneration,
  registerCaFromFiles,
  sameBundle,
  type JsonPatchOperation,
  type Logger,
  type WebhookConfigurationApi,
  type WebhookConfigurationLike,
  type WebhookKind,
} from '../src/kube/ca-bundle.ts';
import { generateCertificateAuthority } from '../src/tls/generate.ts';
import { writeCertificateFiles } from '../src/tls/certificate-files.ts';
import { PLANNED_WEBHOOKS_ANNOTATION, holdsPlannedWebhooks } from '../src/kube/webhook-installation.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
const HOUR_MS = 60 * 60 * 1000;
const NOW = new Date('2030-01-15T12:00:00Z');

const silent: Logger = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} };

async function ca(name: string, validityDays = 365, now = NOW): Promise<string> {
  return (await generateCertificateAuthority({ commonName: name, validityDays, now })).cert;
}

const [oldCa, newCa, otherCa, shortCa] = await Promise.all([ca('old'), ca('new'), ca('other'), ca('short', 1)]);
const cert = (pem: string) => bundleCertificates(pem, 'test')[0]!;
const b64 = (pem: string) => Buffer.from(pem).toString('base64');

t.test('joinBundle: distinct, unexpired, in order', async (t) => {
  const bundle = joinBundle([cert(oldCa), cert(newCa), cert(oldCa)], NOW);
  t.equal(bundleCertificates(bundle, 'b').length, 2, 'a duplicate is listed once');
  t.equal(bundleCertificates(bundle, 'b')[0]!.fingerprint, cert(oldCa).fingerprint, 'order kept');
  const later = new Date(NOW.getTime() + 2 * DAY_MS);
  t.equal(bundleCertificates(joinBundle([cert(shortCa), cert(newCa)], later), 'b').length, 1, 'an expired CA is dropped');
  t.ok(sameBundle(oldCa + newCa, newCa + oldCa), 'order does not matter for equality');
  t.notOk(sameBundle(oldCa, oldCa + newCa));
  t.ok(bundleContains(oldCa + newCa, newCa));
  t.notOk(bundleContains(oldCa, newCa));
  t.notOk(bundleContains(oldCa, ''), 'an empty bundle is never "contained"');
});

t.test('overlapBundle: old and new CA are both trusted during the overlap, then only the new', async (t) => {
  const first = overlapBundle([], [cert(oldCa)], [], NOW, HOUR_MS);
  t.ok(sameBundle(first.bundle, oldCa), 'initially: the one CA');
  t.same(first.retained, []);

  // ca.crt now holds only the new CA: the old one stays published for the overlap.
  const during = overlapBundle([cert(oldCa)], [cert(newCa)], first.retained, NOW, HOUR_MS);
  t.ok(sameBundle(during.bundle, oldCa + newCa), 'caBundle = old CA + new CA');
  t.equal(bundleCertificates(during.bundle, 'b')[0]!.fingerprint, cert(newCa).fingerprint, 'the current CA comes first');
  t.equal(during.retained.length, 1);
  t.equal(during.retained[0]!.until.getTime(), NOW.getTime() + HOUR_MS, 'kept for exactly the overlap');

  const halfway = new Date(NOW.getTime() + HOUR_MS / 2);
  const still = overlapBundle([cert(newCa)], [cert(newCa)], during.retained, halfway, HOUR_MS);
  t.ok(sameBundle(still.bundle, oldCa + newCa), 'still both half-way through the overlap');

  const after = new Date(NOW.getTime() + HOUR_MS + 1);
  const done = overlapBundle([cert(newCa)], [cert(newCa)], still.retained, after, HOUR_MS);
  t.ok(sameBundle(done.bundle, newCa), 'after the overlap only the new CA');
  t.same(done.retained, []);

  // The old CA coming back (a rollback) is simply current again, not retained twice.
  const back = overlapBundle([cert(newCa)], [cert(oldCa)], during.retained, NOW, HOUR_MS);
  t.ok(sameBundle(back.bundle, oldCa + newCa));
  t.same(back.retained.map((r) => r.fingerprint), [cert(newCa).fingerprint]);

  // A retired CA is never kept past its own expiry.
  const short = overlapBundle([cert(shortCa)], [cert(newCa)], [], NOW, 7 * DAY_MS);
  t.ok(short.retained[0]!.until.getTime() <= cert(shortCa).notAfter.getTime(), 'overlap cut at the old CA expiry');
});

t.test('generations order bundles of one Secret only', async (t) => {
  t.same(parseGeneration('abc-123/7'), { uid: 'abc-123', counter: 7 });
  t.equal(parseGeneration('nonsense'), undefined);
  t.equal(parseGeneration(undefined), undefined);
  t.ok(isOlderGeneration({ uid: 'u', counter: 2 }, { uid: 'u', counter: 3 }), 'older state of the same Secret');
  t.notOk(isOlderGeneration({ uid: 'u', counter: 3 }, { uid: 'u', counter: 3 }));
  t.notOk(isOlderGeneration({ uid: 'u', counter: 4 }, { uid: 'u', counter: 3 }));
  t.notOk(isOlderGeneration({ uid: 'new', counter: 1 }, { uid: 'old', counter: 9 }), 'a re-created Secret may publish');
  t.notOk(isOlderGeneration(undefined, { uid: 'u', counter: 3 }), 'plain-file mode has no generation');
  t.notOk(isOlderGeneration({ uid: 'u', counter: 1 }, undefined));
});

function configuration(caBundles: (string | undefined)[], extra: { annotations?: Record<string, string>; resourceVersion?: string } = {}): WebhookConfigurationLike {
  return {
    metadata: { name: 'mesh-admission', resourceVersion: extra.resourceVersion ?? '42', ...(extra.annotations ? { annotations: extra.annotations } : {}) },
    webhooks: caBundles.map((bundle, index) => ({
      name: `hook-${index}.mesh-admission.io`,
      ...(bundle === undefined ? {} : { clientConfig: { caBundle: bundle, service: { name: 'svc', namespace: 'ns' } } }),
    })),
  } as WebhookConfigurationLike;
}

function apply(config: WebhookConfigurationLike, ops: readonly JsonPatchOperation[]): any {
  // validate = true: fast-json-patch throws on a failed `test`, as the API server rejects the patch.
  return jsonpatch.applyPatch(structuredClone(config), ops as jsonpatch.Operation[], true, false).newDocument;
}

t.test('caBundlePatch sets every webhook, tests what it read, and is a no-op when current', async (t) => {
  const config = configuration([b64(oldCa), undefined]);
  const ops = caBundlePatch(config, oldCa + newCa, { uid: 'u', counter: 2 });
  t.ok(ops);
  t.same(ops![0], { op: 'test', path: '/metadata/resourceVersion', value: '42' }, 'the resourceVersion is tested first');
  t.ok(ops!.some((op) => op.op === 'test' && op.path === '/webhooks/1/name'), 'each webhook name is tested');
  const patched = apply(config, ops!);
  for (const webhook of patched.webhooks) t.ok(sameBundle(decodeCaBundle(webhook.clientConfig.caBundle), oldCa + newCa), `${webhook.name} trusts both CAs`);
  t.equal(patched.webhooks[0].clientConfig.service.name, 'svc', 'the rest of clientConfig is untouched');
  t.equal(patched.metadata.annotations[CA_GENERATION_ANNOTATION], 'u/2', 'generation recorded');

  t.equal(caBundlePatch(patched, newCa + oldCa, { uid: 'u', counter: 2 }), undefined, 'nothing to do once current (order aside)');
  const annotated = caBundlePatch(patched, oldCa + newCa, { uid: 'u', counter: 3 });
  t.ok(annotated, 'a new generation with the same CAs still records the generation');
  t.notOk(annotated!.some((op) => op.path.includes('caBundle')), '... without touching the caBundle');
  t.ok(
    annotated!.some((op) => op.path === '/metadata/annotations/mesh-admission.io~1ca-generation'),
    "the annotation key's '/' is escaped as ~1",
  );

  const moved = { ...patched, metadata: { ...patched.metadata, resourceVersion: '43' } };
  t.throws(() => apply(moved, caBundlePatch(patched, otherCa)!), 'a patch built from a stale read fails its test');
});

class FakeWebhookApi implements WebhookConfigurationApi {
  objects = new Map<string, any>();
  patches: { kind: WebhookKind; name: string; ops: readonly JsonPatchOperation[] }[] = [];
  failNext: number[] = [];
  key = (kind: WebhookKind, name: string) => `${kind}/${name}`;
  async read(kind: WebhookKind, name: string) {
    const object = this.objects.get(this.key(kind, name));
    return object === undefined ? undefined : structuredClone(object);
  }
  async patch(kind: WebhookKind, name: string, ops: readonly JsonPatchOperation[]) {
    this.patches.push({ kind, name, ops });
    const code = this.failNext.shift();
    if (code !== undefined) throw Object.assign(new Error(`HTTP ${code}`), { code });
    const current = this.objects.get(this.key(kind, name));
    try {
      const next = apply(current, ops);
      next.metadata.resourceVersion = String(Number(next.metadata.resourceVersion) + 1);
      this.objects.set(this.key(kind, name), next);
    } catch (error) {
      throw Object.assign(new Error(`test failed: ${(error as Error).message}`), { code: 422 });
    }
  }
}

t.test('CaBundleRegistrar publishes to both configurations and retries a conflict', async (t) => {
  const api = new FakeWebhookApi();
  api.objects.set('validating/v', configuration([undefined]));
  api.objects.set('mutating/m', configuration([b64(oldCa)]));
  const registrar = new CaBundleRegistrar(api, { validating: 'v', mutating: 'm' }, silent);

  api.failNext = [422];
  const outcomes = await registrar.publish(oldCa + newCa, { uid: 'u', counter: 1 });
  t.same(outcomes.map((o) => o.result), ['patched', 'patched']);
  t.equal(api.patches.length, 3, 'the failed patch was read again and retried once');
  t.ok(await registrar.isPublished(newCa), 'both configurations trust the new CA');
  t.notOk(await registrar.isPublished(otherCa));

  const again = await registrar.publish(newCa + oldCa, { uid: 'u', counter: 1 });
  t.same(again.map((o) => o.result), ['unchanged', 'unchanged'], 'no patch when already current');

  const stale = await registrar.publish(oldCa, { uid: 'u', counter: 0 });
  t.same(stale.map((o) => o.result), ['stale', 'stale'], 'an older generation never overwrites a newer one');
  t.ok(await registrar.isPublished(newCa), 'the newer bundle is still there');

  api.failNext = [403];
  await t.rejects(registrar.publish(otherCa, { uid: 'u', counter: 2 }), /cannot patch the caBundle of validating webhook configuration "v": HTTP 403/);
  await t.rejects(registrar.publish(''), /empty caBundle/);
});

t.test('CaBundleRegistrar reports a configuration that does not exist yet', async (t) => {
  const api = new FakeWebhookApi();
  api.objects.set('validating/v', configuration([undefined]));
  const registrar = new CaBundleRegistrar(api, { validating: 'v', mutating: 'missing' }, silent);
  t.same((await registrar.publish(oldCa)).map((o) => o.result), ['patched', 'missing']);
  t.notOk(await registrar.isPublished(oldCa), 'not published while a target is missing');
});

// What the chart renders: no webhooks yet, the plan in the annotation.
const PLAN = [
  { name: 'validate.mesh-admission.io', clientConfig: { service: { name: 'svc', namespace: 'ns', path: '/validate', port: 443 } }, failurePolicy: 'Fail', rules: [{ apiGroups: [''], resources: ['services'] }] },
];
function planned(plan: readonly object[] = PLAN): WebhookConfigurationLike {
  return { metadata: { name: 'v', resourceVersion: '7', annotations: { [PLANNED_WEBHOOKS_ANNOTATION]: JSON.stringify(plan) } } } as WebhookConfigurationLike;
}

t.test('installPatch writes the plan with the caBundle, over an absent or stale list', async (t) => {
  const installed = apply(planned(), installPatch(planned(), PLAN, oldCa, { uid: 'u', counter: 1 }));
  t.equal(installed.webhooks.length, 1);
  t.equal(installed.webhooks[0].clientConfig.service.path, '/validate', 'the planned clientConfig is kept');
  t.ok(sameBundle(decodeCaBundle(installed.webhooks[0].clientConfig.caBundle), oldCa), '... with the caBundle added');
  t.equal(installed.metadata.annotations[CA_GENERATION_ANNOTATION], 'u/1');
  t.equal(installed.metadata.annotations[PLANNED_WEBHOOKS_ANNOTATION], JSON.stringify(PLAN), 'the plan stays');
  t.ok(holdsPlannedWebhooks(installed, PLAN));
  const moved = { ...planned(), metadata: { ...planned().metadata, resourceVersion: '8' } };
  t.throws(() => apply(moved, installPatch(planned(), PLAN, oldCa)), 'a patch built from a stale read fails its test');
});

t.test('CaBundleRegistrar installs planned webhooks only once allowed, then keeps only the caBundle', async (t) => {
  const api = new FakeWebhookApi();
  api.objects.set('validating/v', planned());
  let routed = false;
  const registrar = new CaBundleRegistrar(api, { validating: 'v' }, silent, async () => routed);

  const waiting = await registrar.publish(oldCa);
  t.same(waiting.map((o) => o.result), ['waiting'], 'not routed yet: nothing installed');
  t.equal(api.patches.length, 0, '... and nothing written');
  t.notOk(isComplete(waiting), 'waiting is not complete, so the caller retries soon');
  t.ok(await registrar.isPublished(oldCa), 'an empty configuration trusts whatever is published (the Secret store may promote)');

  routed = true;
  const installed = await registrar.publish(oldCa);
  t.same(installed.map((o) => o.result), ['installed']);
  t.ok(isComplete(installed));
  // What the API server adds on storing (defaults) is no reason to install again.
  const stored = api.objects.get('validating/v');
  stored.webhooks[0].matchPolicy = 'Equivalent';
  stored.webhooks[0].rules[0].scope = '*';
  t.same((await registrar.publish(oldCa)).map((o) => o.result), ['unchanged'], 'defaults added by the API server are not differences');
  t.same((await registrar.publish(oldCa + newCa)).map((o) => o.result), ['patched'], 'a new trust bundle only patches the caBundle');
  t.ok(await registrar.isPublished(newCa));

  // An upgrade changes the plan: the next publication installs it, keeping the current bundle.
  const changed = [{ ...PLAN[0], failurePolicy: 'Ignore' }];
  const current = api.objects.get('validating/v');
  current.metadata.annotations[PLANNED_WEBHOOKS_ANNOTATION] = JSON.stringify(changed);
  t.same((await registrar.publish(oldCa + newCa)).map((o) => o.result), ['installed'], 'a changed plan is installed');
  t.equal(api.objects.get('validating/v').webhooks[0].failurePolicy, 'Ignore');
  t.ok(await registrar.isPublished(newCa));

  // Someone removed the webhooks by hand (break glass) while a replica keeps running: it puts them back.
  delete api.objects.get('validating/v').webhooks;
  t.same((await registrar.publish(oldCa)).map((o) => o.result), ['installed']);
});

t.test('CaBundleRegistrar refuses a broken plan with a message naming the annotation', async (t) => {
  for (const [text, message] of [
    ['{not json', /is not JSON/],
    ['{"name":"x"}', /must be a JSON list/],
    ['[{"rules":[]}]', /webhook 0 has no name/],
    ['[{"name":"a"},{"name":"a"}]', /"a" is listed twice/],
  ] as const) {
    const api = new FakeWebhookApi();
    api.objects.set('validating/v', { metadata: { name: 'v', resourceVersion: '1', annotations: { [PLANNED_WEBHOOKS_ANNOTATION]: text } } });
    const registrar = new CaBundleRegistrar(api, { validating: 'v' }, silent);
    await t.rejects(registrar.publish(oldCa), message, text);
    t.equal(api.patches.length, 0, `${text}: nothing written`);
  }
});

t.test('registerCaFromFiles publishes ca.crt, then old + new CA after a change', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mesh-admission-ca-bundle-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const api = new FakeWebhookApi();
  api.objects.set('validating/v', configuration([undefined]));
  const registrar = new CaBundleRegistrar(api, { validating: 'v' }, silent);
  await writeCertificateFiles(dir, { caCert: oldCa });
  const registration = registerCaFromFiles({ certDir: dir, registrar, logger: silent, resyncMs: 3_600_000, debounceMs: 20 });
  t.teardown(() => registration.close());

  await registration.sync();
  const published = async () => decodeCaBundle((await api.read('validating', 'v'))!.webhooks![0]!.clientConfig!.caBundle);
  t.ok(sameBundle(await published(), oldCa), 'the CA of ca.crt is published at start');

  await writeCertificateFiles(dir, { caCert: newCa });
  // The directory watch publishes by itself; wait for it.
  for (let i = 0; i < 100 && !sameBundle(await published(), oldCa + newCa); i++) await new Promise((r) => setTimeout(r, 20));
  t.ok(sameBundle(await published(), oldCa + newCa), 'after the change both CAs are trusted (overlap)');

  await rm(path.join(dir, 'ca.crt'));
  await t.rejects(registration.sync(), /ca\.crt does not exist/);
});

t.test('registerCaFromFiles retries soon while a webhook configuration does not exist yet', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mesh-admission-ca-bundle-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeCertificateFiles(dir, { caCert: oldCa });
  const api = new FakeWebhookApi();
  const registrar = new CaBundleRegistrar(api, { validating: 'v' }, silent);
  const registration = registerCaFromFiles({ certDir: dir, registrar, logger: silent, resyncMs: 3_600_000, retryMs: 20 });
  t.teardown(() => registration.close());
  await registration.sync();
  t.equal(api.patches.length, 0, 'nothing to patch yet');
  // The chart creates the configuration a moment after the pods start.
  api.objects.set('validating/v', configuration([undefined]));
  for (let i = 0; i < 100 && api.patches.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  t.equal(api.patches.length, 1, 'patched by the retry, long before the hourly resync');
  t.ok(await registrar.isPublished(oldCa));
});
