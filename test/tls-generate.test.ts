import t from 'tap';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, verify, X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { generate } from 'selfsigned';
import { certificateExpiry } from '../src/tls/expiry.ts';
import {
  DEFAULT_CA_VALIDITY_DAYS,
  generateCertificates,
  issueServingCertificate,
  servingDnsNames,
} from '../src/tls/generate.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
const SKEW_MS = 5 * 60 * 1000;
const NOW = new Date('2030-01-01T00:00:00.000Z');
const OPTIONS = { serviceName: 'mesh-admission', namespace: 'mesh-system', validityDays: 365, now: NOW };

/** Reads a DER element header at `offset`: [start of contents, length of contents]. */
function derHeader(der: Buffer, offset: number): [number, number] {
  const first = der[offset + 1] ?? 0;
  if (first < 0x80) return [offset + 2, first];
  const bytes = first & 0x7f;
  let length = 0;
  for (let i = 0; i < bytes; i++) length = length * 256 + (der[offset + 2 + i] ?? 0);
  return [offset + 2 + bytes, length];
}

/**
 * Splits a certificate into tbsCertificate, the signature algorithm OID (hex of the contents)
 * and the signature — an independent reading of the DER, not the code under test.
 */
function splitCertificate(pem: string): { tbs: Buffer; algorithmOid: string; signature: Buffer } {
  const der = new X509Certificate(pem).raw;
  const [outerStart] = derHeader(der, 0);
  const [tbsStart, tbsLength] = derHeader(der, outerStart);
  const tbsEnd = tbsStart + tbsLength;
  const [algStart, algLength] = derHeader(der, tbsEnd);
  const [oidStart, oidLength] = derHeader(der, algStart);
  const [sigStart, sigLength] = derHeader(der, algStart + algLength);
  return {
    tbs: der.subarray(outerStart, tbsEnd),
    algorithmOid: der.subarray(oidStart, oidStart + oidLength).toString('hex'),
    // BIT STRING: the first content byte is the count of unused bits (0 for signatures).
    signature: der.subarray(sigStart + 1, sigStart + sigLength),
  };
}

const ECDSA_WITH_SHA256 = '2a8648ce3d040302'; // 1.2.840.10045.4.3.2
const SHA256_WITH_RSA = '2a864886f70d01010b'; // 1.2.840.113549.1.1.11

function opensslAvailable(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

t.test('generateCertificates: a CA and a serving certificate signed by it', async (t) => {
  const started = performance.now();
  const bundle = await generateCertificates(OPTIONS);
  const elapsed = performance.now() - started;
  t.comment(`one generation (CA + serving certificate, ECDSA P-256) took ${elapsed.toFixed(1)} ms`);

  const ca = new X509Certificate(bundle.caCert);
  const leaf = new X509Certificate(bundle.cert);

  t.equal(ca.ca, true, 'CA has basicConstraints CA:TRUE');
  t.equal(leaf.ca, false, 'serving certificate is not a CA');
  t.ok(leaf.checkIssued(ca), 'issuer of the leaf is the CA subject');
  t.ok(leaf.verify(ca.publicKey), 'leaf signature verifies with the CA public key');
  t.ok(ca.verify(ca.publicKey), 'CA is self-signed');
  t.notOk(leaf.verify(leaf.publicKey), 'leaf is not self-signed');
  t.ok(leaf.checkPrivateKey(createPrivateKey(bundle.key)), 'tls.key belongs to tls.crt');
  t.ok(ca.checkPrivateKey(createPrivateKey(bundle.caKey)), 'ca.key belongs to ca.crt');
  t.notOk(leaf.checkPrivateKey(createPrivateKey(bundle.caKey)), 'the CA key is not the serving key');
  t.equal(leaf.publicKey.asymmetricKeyType, 'ec');
  t.equal(leaf.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1', 'P-256');
  t.same(leaf.keyUsage, ['1.3.6.1.5.5.7.3.1'], 'extended key usage: serverAuth only');
  t.equal(leaf.subject, 'CN=mesh-admission.mesh-system.svc');
  t.equal(ca.subject, `CN=mesh-admission-ca@${NOW.getTime() / 1000}`);
  t.match(bundle.cert, /^-----BEGIN CERTIFICATE-----\n/);
  t.match(bundle.key, /^-----BEGIN PRIVATE KEY-----\n/);
});

t.test('both certificates are signed with SHA-256 (selfsigned defaults to SHA-1)', async (t) => {
  const bundle = await generateCertificates(OPTIONS);
  const ca = new X509Certificate(bundle.caCert);
  for (const [what, pem] of [['serving certificate', bundle.cert], ['CA', bundle.caCert]] as const) {
    const { tbs, algorithmOid, signature } = splitCertificate(pem);
    t.equal(algorithmOid, ECDSA_WITH_SHA256, `${what}: signatureAlgorithm is ecdsa-with-SHA256`);
    t.ok(verify('sha256', tbs, ca.publicKey, signature), `${what}: signature verifies as SHA-256 over tbsCertificate`);
    t.notOk(verify('sha1', tbs, ca.publicKey, signature), `${what}: and not as SHA-1`);
  }
});

t.test('SANs: localhost, loopback IPs and the in-cluster service names', async (t) => {
  const bundle = await generateCertificates(OPTIONS);
  const leaf = new X509Certificate(bundle.cert);
  t.equal(
    leaf.subjectAltName,
    'DNS:localhost, DNS:mesh-admission.mesh-system.svc, DNS:mesh-admission.mesh-system.svc.cluster.local, ' +
      'IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1',
  );
  for (const host of servingDnsNames('mesh-admission', 'mesh-system')) {
    t.equal(leaf.checkHost(host, { subject: 'never' }), host, `covers ${host}`);
  }
  t.equal(leaf.checkIP('127.0.0.1'), '127.0.0.1');
  t.equal(leaf.checkIP('::1'), '::1');
  t.equal(leaf.checkHost('other.mesh-system.svc', { subject: 'never' }), undefined, 'no other service');
  t.equal(leaf.checkHost('mesh-admission.mesh-system', { subject: 'never' }), undefined, 'no bare <svc>.<ns>');
});

t.test('validity: starts slightly in the past, ends after validityDays / caValidityDays', async (t) => {
  const bundle = await generateCertificates(OPTIONS);
  const ca = new X509Certificate(bundle.caCert);
  const leaf = new X509Certificate(bundle.cert);
  // X.509 times have one-second resolution.
  t.equal(leaf.validFromDate.getTime(), NOW.getTime() - SKEW_MS, 'leaf backdated 5 minutes for clock skew');
  t.equal(leaf.validToDate.getTime(), NOW.getTime() + 365 * DAY_MS);
  t.equal(ca.validFromDate.getTime(), NOW.getTime() - SKEW_MS);
  t.equal(ca.validToDate.getTime(), NOW.getTime() + DEFAULT_CA_VALIDITY_DAYS * DAY_MS, 'CA defaults to 10 years');
  t.equal(certificateExpiry(bundle.cert).getTime(), leaf.validToDate.getTime(), 'certificateExpiry reads notAfter');
  t.equal(certificateExpiry(bundle.cert + bundle.caCert).getTime(), leaf.validToDate.getTime(), 'first certificate of a chain');
  t.throws(() => certificateExpiry('not a certificate'));

  const short = await generateCertificates({ ...OPTIONS, validityDays: 30, caValidityDays: 10 });
  t.equal(
    new X509Certificate(short.cert).validToDate.getTime(),
    new X509Certificate(short.caCert).validToDate.getTime(),
    'a serving certificate never outlives its CA',
  );
});

t.test('bad options fail before any key is generated, with a clear message', async (t) => {
  await t.rejects(generateCertificates({ ...OPTIONS, serviceName: 'Mesh_Admission' }), /serviceName "Mesh_Admission" is not a valid DNS-1123 label/);
  await t.rejects(generateCertificates({ ...OPTIONS, namespace: 'a,CN=evil' }), /namespace "a,CN=evil"/);
  await t.rejects(generateCertificates({ ...OPTIONS, validityDays: 0 }), /validityDays must be a positive number of days, got 0/);
  await t.rejects(generateCertificates({ ...OPTIONS, validityDays: Number.NaN }), /validityDays/);
  await t.rejects(generateCertificates({ ...OPTIONS, caValidityDays: -1 }), /caValidityDays/);
});

t.test('issueServingCertificate renews the leaf with an existing CA, also an RSA one', async (t) => {
  const first = await generateCertificates(OPTIONS);
  const renewed = await issueServingCertificate(OPTIONS, { cert: first.caCert, key: first.caKey });
  const ca = new X509Certificate(first.caCert);
  const leaf = new X509Certificate(renewed.cert);
  t.ok(leaf.verify(ca.publicKey), 'signed by the existing CA');
  t.not(renewed.key, first.key, 'with a new key');

  const rsaCa = await generate([{ name: 'commonName', value: 'rsa-ca' }], {
    algorithm: 'sha256',
    extensions: [{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, critical: true }],
  });
  const rsaLeaf = await issueServingCertificate(OPTIONS, { cert: rsaCa.cert, key: rsaCa.private });
  const rsaCert = new X509Certificate(rsaLeaf.cert);
  t.equal(rsaCert.publicKey.asymmetricKeyType, 'rsa', 'the leaf follows the CA key type');
  t.ok(rsaCert.verify(new X509Certificate(rsaCa.cert).publicKey));
  t.equal(splitCertificate(rsaLeaf.cert).algorithmOid, SHA256_WITH_RSA, 'sha256WithRSAEncryption');
});

// openssl is a prerequisite of the test suites (the e2e control plane makes its certificates
// with it), so a missing openssl fails here instead of skipping.
t.test('openssl agrees: chain verifies, CA and serving extensions as intended', async (t) => {
  t.ok(opensslAvailable(), 'openssl is installed');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mesh-admission-openssl-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // Real time: openssl verify checks validity against the clock.
  const bundle = await generateCertificates({ ...OPTIONS, now: undefined });
  const caFile = path.join(dir, 'ca.crt');
  const certFile = path.join(dir, 'tls.crt');
  await writeFile(caFile, bundle.caCert);
  await writeFile(certFile, bundle.cert);

  const verified = execFileSync('openssl', ['verify', '-purpose', 'sslserver', '-CAfile', caFile, certFile], { encoding: 'utf8' });
  t.match(verified, /: OK/);

  const leafText = execFileSync('openssl', ['x509', '-noout', '-text', '-in', certFile], { encoding: 'utf8' });
  t.match(leafText, /Signature Algorithm: ecdsa-with-SHA256/);
  t.match(leafText, /CA:FALSE/);
  t.match(leafText, /TLS Web Server Authentication/);
  t.notMatch(leafText, /Key Encipherment/, 'no RSA key transport usage on an EC key');

  const caText = execFileSync('openssl', ['x509', '-noout', '-text', '-in', caFile], { encoding: 'utf8' });
  t.match(caText, /Signature Algorithm: ecdsa-with-SHA256/);
  t.match(caText, /CA:TRUE, pathlen:0/);
  t.match(caText, /Certificate Sign/);
});
