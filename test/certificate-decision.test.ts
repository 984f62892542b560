/** The reuse / renew-serving / generate decision, one reason at a time. */
import t from 'tap';
import { generate } from 'selfsigned';
import { decideCertificates, firstUnreadable, parseMaterial, type CertificateRequirements } from '../src/tls/certificate-decision.ts';
import type { CertificateFileContents } from '../src/tls/certificate-files.ts';
import { generateCertificateAuthority, issueServingCertificate, type CertificateAuthority } from '../src/tls/generate.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
const NOW = new Date('2030-01-15T12:00:00Z');
const days = (n: number): Date => new Date(NOW.getTime() + n * DAY_MS);
const NAMES = { caCert: 'ca.crt', caKey: 'ca.key', cert: 'tls.crt', key: 'tls.key' };
const HOSTNAME = 'mesh-admission.mesh-system.svc';
const REQUIREMENTS: CertificateRequirements = { now: NOW, hostname: HOSTNAME, renewBeforeDays: 30, caRenewBeforeDays: 30 };

function decide(pem: CertificateFileContents, requirements: Partial<CertificateRequirements> = {}) {
  return decideCertificates(parseMaterial(pem, NAMES), NAMES, { ...REQUIREMENTS, ...requirements });
}

async function authority(validityDays = 3650, issuedAt = days(-1)): Promise<CertificateAuthority> {
  return generateCertificateAuthority({ commonName: `ca-${Math.random()}`, validityDays, now: issuedAt });
}

async function files(ca: CertificateAuthority, serving: { validityDays?: number; issuedAt?: Date; serviceName?: string } = {}): Promise<CertificateFileContents> {
  const pair = await issueServingCertificate(
    { serviceName: serving.serviceName ?? 'mesh-admission', namespace: 'mesh-system', validityDays: serving.validityDays ?? 365, now: serving.issuedAt ?? days(-1) },
    ca,
  );
  return { caCert: ca.cert, caKey: ca.key, cert: pair.cert, key: pair.key };
}

/** A serving pair for the service signed with SHA-1 by `ca`. */
async function sha1Serving(ca: CertificateAuthority): Promise<{ cert: string; key: string }> {
  const pair = await generate([{ name: 'commonName', value: HOSTNAME }], {
    keyType: 'ec', algorithm: 'sha1', ca, notBeforeDate: days(-1), notAfterDate: days(300),
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: HOSTNAME }] }],
  });
  return { cert: pair.cert, key: pair.private };
}

t.test('reuse: a valid pair, with or without the CA at hand', async (t) => {
  const valid = await files(await authority());
  t.match(decide(valid), { action: 'reuse', reason: /^tls\.crt is valid until 2031-/ });
  t.equal(decide({ cert: valid.cert, key: valid.key }).action, 'reuse', 'a mounted tls.crt/tls.key: the chain is the API server\'s to check');
  t.equal(decide({ ...valid, caKey: undefined }).action, 'reuse', 'no CA key is needed to reuse');
  t.equal(decide(valid, { hostname: undefined }).action, 'reuse', 'no hostname: names unchecked');
});

t.test('renew-serving: the serving pair is at fault, the CA can sign its successor', async (t) => {
  const ca = await authority();
  const valid = await files(ca);
  const foreign = await files(await authority());
  const cases: [string, CertificateFileContents, RegExp, Partial<CertificateRequirements>?][] = [
    ['nothing there', { caCert: ca.cert, caKey: ca.key }, /^no serving certificate in tls\.crt$/],
    ['tls.key alone', { ...valid, cert: undefined }, /^tls\.crt is missing$/],
    ['tls.crt alone', { ...valid, key: undefined }, /^tls\.key is missing$/],
    ['tls.crt not PEM', { ...valid, cert: 'garbage' }, /^tls\.crt does not contain a PEM certificate$/],
    ['tls.key not PEM', { ...valid, key: 'garbage' }, /^tls\.key does not contain a usable unencrypted PEM private key/],
    ['the key of another certificate', { ...valid, key: foreign.key }, /^tls\.key does not belong to tls\.crt$/],
    ['a pair of another CA', { ...valid, cert: foreign.cert, key: foreign.key }, /^tls\.crt is not signed by ca\.crt$/],
    ['a SHA-1 signature', { ...valid, ...(await sha1Serving(ca)) }, /^tls\.crt is signed with SHA-1, which Kubernetes rejects$/],
    ['not valid yet', await files(ca, { issuedAt: days(10) }), /^tls\.crt is not valid before 2030-01-25T11:55:00\.000Z$/],
    ['expired', await files(ca, { validityDays: 10, issuedAt: days(-20) }), /^tls\.crt expired 2030-01-05T12:00:00\.000Z$/],
    ['due', await files(ca, { validityDays: 30, issuedAt: days(-5) }), /^tls\.crt expires 2030-02-09T12:00:00\.000Z, within 30 days$/],
    ['for another service', await files(ca, { serviceName: 'other' }), /^tls\.crt does not cover mesh-admission\.mesh-system\.svc$/],
  ];
  for (const [name, pem, reason] of cases) t.match(decide(pem), { action: 'renew-serving', reason }, name);
  t.equal(decide(await files(ca, { validityDays: 30, issuedAt: days(-25) }), { renewBeforeDays: 0 }).action, 'reuse', 'renewBeforeDays 0: due only once expired');
});

t.test('generate: the CA cannot sign a new serving certificate', async (t) => {
  const ca = await authority();
  const due = await files(ca, { validityDays: 30, issuedAt: days(-5) });
  const dueReason = 'tls.crt expires 2030-02-09T12:00:00.000Z, within 30 days';
  const other = await authority();
  const notACa = await files(other);
  const sha1Ca = await generate([{ name: 'commonName', value: 'sha1-ca' }], {
    keyType: 'ec', algorithm: 'sha1', notBeforeDate: days(-1), notAfterDate: days(3000),
    extensions: [{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, critical: true }],
  });
  const cases: [string, CertificateFileContents, RegExp][] = [
    ['no CA key', { ...due, caKey: undefined }, /^tls\.crt expires .* and no CA key pair in ca\.crt and ca\.key$/],
    ['ca.key not PEM', { ...due, caKey: 'garbage' }, /and ca\.key does not contain a usable unencrypted PEM private key/],
    ['ca.crt not PEM, said once', { ...due, caCert: 'garbage' }, /^ca\.crt does not contain a PEM certificate$/],
    ['ca.key of another CA', { ...due, caKey: other.key }, new RegExp(`^${dueReason} and ca\\.key does not belong to ca\\.crt$`)],
    ['ca.crt not a CA', { ...due, caCert: notACa.cert, caKey: notACa.key }, /^tls\.crt is not signed by ca\.crt and ca\.crt is not a CA certificate$/],
    ['a SHA-1 CA', await files({ cert: sha1Ca.cert, key: sha1Ca.private }, { validityDays: 30, issuedAt: days(-5) }), /and ca\.crt is signed with SHA-1$/],
  ];
  for (const [name, pem, reason] of cases) t.match(decide(pem), { action: 'generate', reason }, name);
});

t.test('the CA\'s validity: due by caRenewBeforeDays, and a leaf cut at its expiry waits for it', async (t) => {
  // 20 days left on the CA; the leaf asked for 365 days and was cut at the CA's expiry.
  const endingCa = await authority(100, days(-80));
  const cut = await files(endingCa);
  t.match(decide(cut), { action: 'generate', reason: /^ca\.crt expires 2030-02-04T12:00:00\.000Z, within 30 days$/ }, 'the CA is due: one reason, not the same twice');
  t.equal(decide(cut, { caRenewBeforeDays: 0 }).action, 'reuse', 'CA not due: re-issuing the leaf by the same CA would not make it last longer');

  const expiredCa = await authority(10, days(-20));
  t.match(decide(await files(expiredCa, { issuedAt: days(-15) })), { action: 'generate', reason: /^tls\.crt expired .* and ca\.crt expired 2030-01-05T12:00:00\.000Z$/ });
  const futureCa = await authority(3650, days(10));
  t.match(decide(await files(futureCa, { issuedAt: days(10) }), { caRenewBeforeDays: 0 }), {
    action: 'generate',
    reason: /^tls\.crt is not valid before .* and ca\.crt is not valid before 2030-01-25T11:55:00\.000Z$/,
  });
});

t.test('parseMaterial records what is not PEM instead of throwing', async (t) => {
  const material = parseMaterial({ caCert: 'garbage', cert: 'garbage too' }, NAMES);
  t.equal(material.caCerts, undefined);
  t.equal(material.caKey, undefined, 'an absent piece is undefined, not unreadable');
  t.same(Object.keys(material.unreadable), ['cert', 'caCert']);
  t.match(firstUnreadable(material), { message: 'tls.crt does not contain a PEM certificate' }, 'the serving certificate first');
  t.equal(firstUnreadable(parseMaterial(await files(await authority()), NAMES)), undefined);
});
