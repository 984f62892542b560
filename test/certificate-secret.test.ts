import t, { type Test } from 'tap';
import { X509Certificate } from 'node:crypto';
import { generate } from 'selfsigned';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { bundleCertificates, sameBundle, type Logger } from '../src/kube/ca-bundle.ts';
import {
  CertificateSecretStore,
  NEXT_CA_STAGED_ANNOTATION,
  SECRET_GENERATION_ANNOTATION,
  applyDecision,
  decideRenewal,
  decodeSecret,
  encodeSecret,
  renewalPolicy,
  trustBundle,
  type CertificateState,
  type RenewalPolicy,
  type SecretApi,
  type SecretLike,
} from '../src/kube/certificate-secret.ts';
import { generateCertificateAuthority, issueServingCertificate } from '../src/tls/generate.ts';
import { ensureCertificates } from '../src/tls/ensure.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
const NOW = new Date('2030-01-15T12:00:00Z');
const days = (n: number) => new Date(NOW.getTime() + n * DAY_MS);
const silent: Logger = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} };

const POLICY: RenewalPolicy = renewalPolicy({ serviceName: 'mesh-admission', namespace: 'mesh-system', validityDays: 365, renewBeforeDays: 30, caValidityDays: 3650 });

/** A state whose CA and serving certificate were issued `ageDays` ago with the given lifetimes. */
async function stateAged(opts: { caDays: number; servingDays: number; ageDays: number; service?: string }): Promise<CertificateState> {
  const issued = days(-opts.ageDays);
  const signing = await generateCertificateAuthority({ commonName: `ca-${Math.random()}`, validityDays: opts.caDays, now: issued });
  const serving = await issueServingCertificate(
    { serviceName: opts.service ?? 'mesh-admission', namespace: 'mesh-system', validityDays: opts.servingDays, now: issued },
    signing,
  );
  return { signing, next: undefined, retired: [], serving };
}

function fingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

t.test('renewalPolicy rotates the CA at twice the serving margin and checks it fits', async (t) => {
  t.equal(POLICY.caRotateBeforeDays, 60);
  t.throws(() => renewalPolicy({ serviceName: 's', namespace: 'n', validityDays: 3000, renewBeforeDays: 2000, caValidityDays: 3650 }), /rotated 4000 days before/);
});

t.test('decideRenewal: one decision per situation', async (t) => {
  t.equal(decideRenewal(undefined, POLICY, NOW, false).action, 'create', 'no state: create');

  const fresh = await stateAged({ caDays: 3650, servingDays: 365, ageDays: 1 });
  t.same(decideRenewal(fresh, POLICY, NOW, false), { action: 'keep', reason: 'certificates are current' });

  const dueServing = await stateAged({ caDays: 3650, servingDays: 365, ageDays: 340 });
  const serving = decideRenewal(dueServing, POLICY, NOW, false);
  t.equal(serving.action, 'renew-serving');
  t.match(serving.reason, /expires .* within 30 days/);

  const otherHost = await stateAged({ caDays: 3650, servingDays: 365, ageDays: 1, service: 'renamed' });
  t.match(decideRenewal(otherHost, POLICY, NOW, false), { action: 'renew-serving', reason: /does not cover mesh-admission\.mesh-system\.svc/ });

  const foreign = await stateAged({ caDays: 3650, servingDays: 365, ageDays: 1 });
  const mixed = { ...fresh, serving: foreign.serving };
  t.match(decideRenewal(mixed, POLICY, NOW, false), { action: 'renew-serving', reason: /not signed by the signing CA/ });
  t.match(decideRenewal({ ...fresh, serving: { cert: fresh.serving!.cert, key: foreign.serving!.key } }, POLICY, NOW, false), {
    action: 'renew-serving',
    reason: /does not belong/,
  });
  t.match(decideRenewal({ ...fresh, serving: undefined }, POLICY, NOW, false), { action: 'renew-serving', reason: /^no serving certificate in tls\.crt$/ });

  const caDue = await stateAged({ caDays: 100, servingDays: 365, ageDays: 50 });
  t.match(decideRenewal(caDue, POLICY, NOW, false), { action: 'stage-ca', reason: /signing CA expires .* within 60 days/ });

  const caDead = await stateAged({ caDays: 10, servingDays: 5, ageDays: 11 });
  t.match(decideRenewal(caDead, POLICY, NOW, false), { action: 'create', reason: /signing CA expired/ });
});

t.test('the Secret gets the checks of the cert dir: SHA-1, not yet valid, not PEM', async (t) => {
  const fresh = await stateAged({ caDays: 3650, servingDays: 365, ageDays: 1 });
  const hostname = 'mesh-admission.mesh-system.svc';
  const sha1 = await generate([{ name: 'commonName', value: hostname }], {
    keyType: 'ec', algorithm: 'sha1', ca: fresh.signing, notBeforeDate: days(-1), notAfterDate: days(300),
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: hostname }] }],
  });
  t.match(decideRenewal({ ...fresh, serving: { cert: sha1.cert, key: sha1.private } }, POLICY, NOW, false), {
    action: 'renew-serving',
    reason: /^tls\.crt is signed with SHA-1, which Kubernetes rejects$/,
  });
  const early = await issueServingCertificate({ serviceName: 'mesh-admission', namespace: 'mesh-system', validityDays: 365, now: days(10) }, fresh.signing);
  t.match(decideRenewal({ ...fresh, serving: early }, POLICY, NOW, false), { action: 'renew-serving', reason: /^tls\.crt is not valid before / });
  t.match(decideRenewal({ ...fresh, serving: { cert: 'garbage', key: fresh.serving!.key } }, POLICY, NOW, false), {
    action: 'renew-serving',
    reason: /^tls\.crt does not contain a PEM certificate$/,
  });

  const futureCa = await stateAged({ caDays: 3650, servingDays: 365, ageDays: -10 });
  t.match(decideRenewal(futureCa, POLICY, NOW, false), { action: 'create', reason: /and the signing CA is not valid before / });

  const sha1Ca = await generate([{ name: 'commonName', value: 'sha1-ca' }], {
    keyType: 'ec', algorithm: 'sha1', notBeforeDate: days(-1), notAfterDate: days(3000),
    extensions: [{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, critical: true }],
  });
  const sha1Pair = { cert: sha1Ca.cert, key: sha1Ca.private };
  const signedSha1 = decodeSecret(encodeSecret({ ...fresh, signing: sha1Pair }, NOW).data, {}, NOW);
  t.equal(signedSha1.state, undefined, 'a SHA-1 signing CA is no usable CA: the store creates a new one');
  t.same(signedSha1.notes, ['the signing CA is signed with SHA-1']);
  const staged = encodeSecret({ ...fresh, next: { ...sha1Pair, stagedAt: NOW } }, NOW);
  const droppedNext = decodeSecret(staged.data, staged.annotations as Record<string, string>, NOW);
  t.equal(droppedNext.state?.next, undefined);
  t.same(droppedNext.notes, ['next-ca.crt is signed with SHA-1; dropping it']);
});

t.test('a serving certificate cut at its CA expiry is not renewed in a loop', async (t) => {
  // CA with 20 days left, already staged for rotation: the leaf cannot outlive the CA, so
  // re-issuing it by the same CA would not help; only the promotion does.
  const state = await stateAged({ caDays: 100, servingDays: 365, ageDays: 80 });
  const staged = (await applyDecision({ action: 'stage-ca', reason: '' }, state, POLICY, NOW))!;
  t.equal(decideRenewal(staged, POLICY, NOW, true).action, 'keep', 'waits for the promotion delay');
});

t.test('CA rotation: stage, overlap (old + new trusted), promote only once published, prune', async (t) => {
  let state: CertificateState | undefined = await stateAged({ caDays: 100, servingDays: 365, ageDays: 50 });
  const oldCa = state.signing.cert;
  const oldServing = state.serving!.cert;

  // 1. stage: a next CA joins the trust bundle; nothing is signed by it yet.
  const stage = decideRenewal(state, POLICY, NOW, false);
  t.equal(stage.action, 'stage-ca');
  state = (await applyDecision(stage, state, POLICY, NOW))!;
  const newCa = state.next!.cert;
  t.equal(state.serving!.cert, oldServing, 'the serving certificate is unchanged by staging');
  t.ok(sameBundle(trustBundle(state, NOW), oldCa + newCa), 'caBundle = old CA + new CA');
  t.equal(fingerprint(bundleCertificates(trustBundle(state, NOW), 'b')[0]!.pem), fingerprint(oldCa), 'the signing CA is first in ca.crt');

  // 2. promotion waits for the delay AND for the new CA to be published.
  const soon = new Date(NOW.getTime() + POLICY.promoteAfterMs - 1000);
  const later = new Date(NOW.getTime() + POLICY.promoteAfterMs + 1000);
  t.equal(decideRenewal(state, POLICY, soon, true).action, 'keep', 'not before the delay');
  t.equal(decideRenewal(state, POLICY, later, false).action, 'keep', 'not before the new CA is in the caBundle');
  const promote = decideRenewal(state, POLICY, later, true);
  t.equal(promote.action, 'promote-ca');
  state = (await applyDecision(promote, state, POLICY, later))!;
  t.equal(fingerprint(state.signing.cert), fingerprint(newCa), 'the new CA signs now');
  t.ok(new X509Certificate(state.serving!.cert).checkIssued(new X509Certificate(newCa)), 'the serving certificate was re-issued by the new CA');
  t.ok(sameBundle(trustBundle(state, later), oldCa + newCa), 'the old CA stays trusted: replicas may still serve its certificate');
  t.equal(decideRenewal(state, POLICY, later, true).action, 'keep');

  // 3. when the old CA expires it leaves the bundle.
  const afterOldExpiry = days(51);
  t.equal(decideRenewal(state, POLICY, afterOldExpiry, true).action, 'prune');
  t.ok(sameBundle(trustBundle(state, afterOldExpiry), newCa), 'an expired CA is never published');
  state = (await applyDecision({ action: 'prune', reason: '' }, state, POLICY, afterOldExpiry))!;
  t.same(state.retired, []);
});

t.test('a staged CA is promoted at once when the signing CA has expired', async (t) => {
  const state = await stateAged({ caDays: 100, servingDays: 365, ageDays: 50 });
  const staged = (await applyDecision({ action: 'stage-ca', reason: '' }, state, POLICY, NOW))!;
  t.match(decideRenewal(staged, POLICY, days(60), false), { action: 'promote-ca', reason: /signing CA expired/ });
});

t.test('encodeSecret / decodeSecret round trip, including a staged CA', async (t) => {
  const state = await stateAged({ caDays: 100, servingDays: 365, ageDays: 50 });
  const staged = (await applyDecision({ action: 'stage-ca', reason: '' }, state, POLICY, NOW))!;
  const retiredCa = (await generateCertificateAuthority({ commonName: 'retired', validityDays: 30, now: NOW })).cert;
  const full: CertificateState = { ...staged, retired: [retiredCa] };
  const encoded = encodeSecret(full, NOW);
  t.same(Object.keys(encoded.data).sort(), ['ca.crt', 'ca.key', 'next-ca.crt', 'next-ca.key', 'tls.crt', 'tls.key']);
  t.equal(encoded.annotations[NEXT_CA_STAGED_ANNOTATION], NOW.toISOString());
  const decoded = decodeSecret(encoded.data, encoded.annotations as Record<string, string>, NOW);
  t.same(decoded.notes, []);
  t.equal(fingerprint(decoded.state!.signing.cert), fingerprint(full.signing.cert));
  t.equal(fingerprint(decoded.state!.next!.cert), fingerprint(full.next!.cert));
  t.equal(decoded.state!.next!.stagedAt.getTime(), NOW.getTime());
  t.same(decoded.state!.retired.map(fingerprint), [fingerprint(retiredCa)], 'the retired CA is recognised as such');
  t.equal(decoded.state!.serving!.cert, full.serving!.cert);

  const garbage = decodeSecret({ 'ca.crt': Buffer.from('not pem').toString('base64') }, {}, NOW);
  t.equal(garbage.state, undefined);
  t.match(garbage.notes.join('; '), /does not contain a PEM certificate/);
  const keyless = decodeSecret({ 'ca.crt': encoded.data['ca.crt']! }, {}, NOW);
  t.equal(keyless.state, undefined, 'a CA without its key cannot sign');
  t.equal(keyless.leftovers.length, 3, 'but its unexpired certificates are kept trusted when the state is replaced');
});

/** An in-memory Secret API with the API server's create / optimistic-concurrency semantics. */
class FakeSecretApi implements SecretApi {
  secret: SecretLike | undefined;
  version = 0;
  creates = 0;
  replaces = 0;
  /** Called after every read: lets a test change the Secret between read and write. */
  afterRead: (() => void) | undefined;
  async read() {
    const copy = this.secret === undefined ? undefined : structuredClone(this.secret);
    await new Promise((r) => setImmediate(r));
    this.afterRead?.();
    return copy;
  }
  async create(secret: SecretLike) {
    this.creates++;
    if (this.secret) throw Object.assign(new Error('AlreadyExists'), { code: 409 });
    this.secret = { ...structuredClone(secret), metadata: { ...secret.metadata, uid: 'uid-1', resourceVersion: String(++this.version) } };
    return structuredClone(this.secret);
  }
  async replace(secret: SecretLike) {
    this.replaces++;
    if (secret.metadata?.resourceVersion !== this.secret?.metadata?.resourceVersion) throw Object.assign(new Error('Conflict'), { code: 409 });
    this.secret = { ...structuredClone(secret), metadata: { ...secret.metadata, resourceVersion: String(++this.version) } };
    return structuredClone(this.secret);
  }
}

async function certDir(t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mesh-admission-secret-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function store(api: SecretApi, dir: string, extra: Partial<ConstructorParameters<typeof CertificateSecretStore>[0]> = {}) {
  return new CertificateSecretStore({ api, name: 'mesh-admission-tls', namespace: 'mesh-system', certDir: dir, policy: POLICY, logger: silent, ...extra });
}

t.test('replicas starting together share one CA: create-if-absent, re-read on 409', async (t) => {
  const api = new FakeSecretApi();
  const [dirA, dirB, dirC] = [await certDir(t), await certDir(t), await certDir(t)];
  const results = await Promise.all([store(api, dirA).sync(), store(api, dirB).sync(), store(api, dirC).sync()]);
  t.equal(api.creates, 3, 'all three tried to create it');
  t.equal(api.version, 1, 'one create won; nobody overwrote it');
  const files = await Promise.all([dirA, dirB, dirC].map((dir) => readFile(path.join(dir, 'ca.crt'), 'utf8')));
  t.equal(new Set(files).size, 1, 'every replica wrote the same ca.crt');
  t.ok(sameBundle(files[0]!, Buffer.from(api.secret!.data!['ca.crt']!, 'base64').toString()), '... the one in the Secret');
  t.same(results.map((r) => r.generation), [1, 2, 3].map(() => ({ uid: 'uid-1', counter: 1 })));
  t.equal(api.secret!.type, 'kubernetes.io/tls');
  t.equal(api.secret!.metadata!.labels!['app.kubernetes.io/managed-by'], 'mesh-admission');
  t.equal(api.secret!.metadata!.annotations![SECRET_GENERATION_ANNOTATION], '1');

  // The files are what the server's own loader accepts without generating anything.
  const ensured = await ensureCertificates(dirB, { serviceName: 'mesh-admission', namespace: 'mesh-system', validityDays: 365, renewBeforeDays: 30 });
  t.equal(ensured.generated, false, 'ensureCertificates reuses the files the store wrote');

  const again = await store(api, dirA).sync();
  t.same(again.actions, [], 'a second sync changes nothing');
  t.equal(again.filesChanged, false);
  t.equal(api.replaces, 0);
});

t.test('an update that loses a race is re-read and decided again', async (t) => {
  const api = new FakeSecretApi();
  const dir = await certDir(t);
  const old = await stateAged({ caDays: 3650, servingDays: 365, ageDays: 340 });
  const encoded = encodeSecret(old, NOW);
  api.secret = { type: 'kubernetes.io/tls', metadata: { name: 'mesh-admission-tls', uid: 'uid-1', resourceVersion: '1', annotations: {} }, data: encoded.data };
  api.version = 1;
  let raced = false;
  api.afterRead = () => {
    if (raced) return;
    raced = true;
    // Another replica renews first: its write bumps the resourceVersion.
    api.secret = { ...api.secret!, metadata: { ...api.secret!.metadata, resourceVersion: String(++api.version) } };
  };
  const result = await store(api, dir, { now: () => NOW }).sync();
  t.equal(api.replaces, 2, 'the first replace conflicted, the second went through');
  t.same(result.actions.map((a) => a.action), ['renew-serving']);
  t.equal(result.generation.counter, 1);
  t.not(Buffer.from(api.secret!.data!['tls.crt']!, 'base64').toString(), old.serving!.cert, 'renewed');
  t.equal(await readFile(path.join(dir, 'tls.crt'), 'utf8'), Buffer.from(api.secret!.data!['tls.crt']!, 'base64').toString());
});

t.test('a rotation through the store: promotion waits until the new CA is published', async (t) => {
  const api = new FakeSecretApi();
  const dir = await certDir(t);
  const start = await stateAged({ caDays: 100, servingDays: 365, ageDays: 50 });
  api.secret = { type: 'kubernetes.io/tls', metadata: { name: 'mesh-admission-tls', uid: 'uid-1', resourceVersion: '1', annotations: { keep: 'me' } }, data: { ...encodeSecret(start, NOW).data, extra: 'eA==' } };
  api.version = 1;
  let published: string[] = [];
  let clock = NOW;
  const s = store(api, dir, { now: () => clock, isPublished: async (pem) => published.includes(fingerprint(pem)) });

  const staged = await s.sync();
  t.same(staged.actions.map((a) => a.action), ['stage-ca']);
  const newCa = staged.state.next!.cert;
  t.ok(sameBundle(await readFile(path.join(dir, 'ca.crt'), 'utf8'), start.signing.cert + newCa), 'ca.crt holds old + new CA');
  t.ok(new X509Certificate(await readFile(path.join(dir, 'tls.crt'), 'utf8')).checkIssued(new X509Certificate(start.signing.cert)), 'still served by the old CA');
  t.equal(api.secret!.metadata!.annotations!['keep'], 'me', "annotations the store does not own are kept");
  t.equal(api.secret!.data!['extra'], 'eA==', 'data keys the store does not own are kept');

  clock = new Date(NOW.getTime() + POLICY.promoteAfterMs + 1);
  t.same((await s.sync()).actions, [], 'not promoted: the new CA is not in the caBundle yet');
  published = [fingerprint(start.signing.cert), fingerprint(newCa)];
  const promoted = await s.sync();
  t.same(promoted.actions.map((a) => a.action), ['promote-ca']);
  t.ok(new X509Certificate(await readFile(path.join(dir, 'tls.crt'), 'utf8')).checkIssued(new X509Certificate(newCa)), 'served by the new CA now');
  t.ok(sameBundle(promoted.trustBundle, start.signing.cert + newCa), 'the old CA is still trusted after the promotion');
  t.equal(api.secret!.data!['next-ca.crt'], undefined, 'no staged CA left');
  t.equal(api.secret!.metadata!.annotations![NEXT_CA_STAGED_ANNOTATION], undefined);
  t.equal(promoted.generation.counter, 2, 'one more write');
});

t.test('an unusable Secret is replaced, keeping its CA certificates trusted; the owner is set', async (t) => {
  const api = new FakeSecretApi();
  const dir = await certDir(t);
  const start = await stateAged({ caDays: 3650, servingDays: 365, ageDays: 1 });
  const data = encodeSecret(start, NOW).data;
  delete data['ca.key'];
  api.secret = { type: 'kubernetes.io/tls', metadata: { name: 'mesh-admission-tls', uid: 'uid-1', resourceVersion: '1' }, data };
  api.version = 1;
  const owner = { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration', name: 'mesh-admission', uid: 'vwc-uid' };
  const result = await store(api, dir, { owner: async () => owner }).sync();
  t.same(result.actions.map((a) => a.action), ['create']);
  t.ok(sameBundle(result.trustBundle, result.state.signing.cert + start.signing.cert), 'new CA + the old CA whose key was lost');
  t.same(api.secret!.metadata!.ownerReferences, [owner]);
  const again = await store(api, dir, { owner: async () => owner }).sync();
  t.same(again.actions, []);
  t.same(api.secret!.metadata!.ownerReferences, [owner], 'the owner is added once');
});

t.test('API errors other than conflicts are reported with the Secret name', async (t) => {
  const api = new FakeSecretApi();
  api.create = async () => {
    throw Object.assign(new Error('secrets is forbidden'), { code: 403 });
  };
  await t.rejects(store(api, await certDir(t)).sync(), /cannot create Secret mesh-system\/mesh-admission-tls: secrets is forbidden/);
});
