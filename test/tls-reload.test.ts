import t, { type Test } from 'tap';
import { X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { writeCertificateFiles } from '../src/tls/certificate-files.ts';
import { ensureCertificates } from '../src/tls/ensure.ts';
import { generateCertificates, issueServingCertificate, type CertificateBundle } from '../src/tls/generate.ts';
import { loadServingPair, watchCertificates, type ServingPair } from '../src/tls/reloader.ts';

const OPTIONS = { serviceName: 'mesh-admission', namespace: 'mesh-system', validityDays: 365 };
const DEBOUNCE_MS = 50;
const EVENT_TIMEOUT_MS = 10_000;

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mesh-admission-reload-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Collects callback values and lets a test wait for the next one with a timeout, so tests
 * wait for events instead of sleeping for a fixed time.
 */
class Events<T> {
  readonly seen: T[] = [];
  #waiters: { count: number; resolve: () => void }[] = [];

  readonly push = (value: T): void => {
    this.seen.push(value);
    this.#waiters = this.#waiters.filter((waiter) => {
      if (this.seen.length < waiter.count) return true;
      waiter.resolve();
      return false;
    });
  };

  /** Resolves once `count` values in total have arrived. */
  async waitFor(count: number, what: string): Promise<T> {
    if (this.seen.length < count) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out after ${EVENT_TIMEOUT_MS} ms waiting for ${what}`)), EVENT_TIMEOUT_MS);
        this.#waiters.push({ count, resolve: () => (clearTimeout(timer), resolve()) });
      });
    }
    return this.seen[count - 1] as T;
  }
}

function watch(t: Test, dir: string) {
  const changes = new Events<ServingPair>();
  const errors = new Events<Error>();
  const watcher = watchCertificates(dir, changes.push, { debounceMs: DEBOUNCE_MS, onError: errors.push });
  t.teardown(() => watcher.close());
  return { changes, errors, watcher };
}

async function writePair(dir: string, bundle: Pick<CertificateBundle, 'cert' | 'key'>): Promise<void> {
  await writeCertificateFiles(dir, { cert: bundle.cert, key: bundle.key });
}

t.test('loadServingPair reads a valid pair and names the file at fault otherwise', async (t) => {
  const dir = await tempDir(t);
  const bundle = await generateCertificates(OPTIONS);
  await t.rejects(loadServingPair(dir), { message: `${path.join(dir, 'tls.crt')} does not exist` });
  await writePair(dir, bundle);
  t.same(await loadServingPair(dir), { cert: bundle.cert, key: bundle.key });

  await writeFile(path.join(dir, 'tls.key'), (await generateCertificates(OPTIONS)).key);
  await t.rejects(loadServingPair(dir), { message: `${path.join(dir, 'tls.key')} does not belong to ${path.join(dir, 'tls.crt')}` });
  await writeFile(path.join(dir, 'tls.crt'), 'garbage');
  await t.rejects(loadServingPair(dir), { message: `${path.join(dir, 'tls.crt')} does not contain a PEM certificate` });
});

t.test('watchCertificates fails clearly for a missing directory', async (t) => {
  const dir = path.join(await tempDir(t), 'missing');
  t.throws(() => watchCertificates(dir, () => undefined), { message: new RegExp(`^cannot watch certificate directory ${dir}`) });
});

t.test('replaced files are reloaded; invalid ones are reported and ignored', async (t) => {
  const dir = await tempDir(t);
  const first = await generateCertificates(OPTIONS);
  await writePair(dir, first);
  const { changes, errors } = watch(t, dir);

  const second = await generateCertificates(OPTIONS);
  await writePair(dir, second);
  t.same(await changes.waitFor(1, 'the first reload'), { cert: second.cert, key: second.key });

  await writeFile(path.join(dir, 'tls.crt'), 'not a certificate');
  const garbage = await errors.waitFor(1, 'an error for garbage');
  t.match(garbage.message, `${path.join(dir, 'tls.crt')} does not contain a PEM certificate`);

  // A valid certificate with the wrong key: a rotation caught half way.
  await writeFile(path.join(dir, 'tls.crt'), first.cert);
  const mismatch = await errors.waitFor(2, 'an error for a mismatched pair');
  t.match(mismatch.message, /tls\.key does not belong to .*tls\.crt/);
  t.equal(changes.seen.length, 1, 'invalid files never reach onChange');

  const third = await generateCertificates(OPTIONS);
  await writePair(dir, third);
  t.same(await changes.waitFor(2, 'the reload after recovery'), { cert: third.cert, key: third.key });
});

t.test('rewriting the same content is not a change', async (t) => {
  const dir = await tempDir(t);
  const bundle = await generateCertificates(OPTIONS);
  await writePair(dir, bundle);
  const { changes, errors } = watch(t, dir);

  await writePair(dir, bundle);
  // Let that reload happen on its own, then use an error as a marker that the watcher has
  // processed everything before it (reloads run in order).
  await new Promise((resolve) => setTimeout(resolve, DEBOUNCE_MS * 4));
  await writeFile(path.join(dir, 'tls.key'), 'garbage');
  await errors.waitFor(1, 'the marker error');
  t.same(changes.seen, [], 'identical files: no onChange');

  await writePair(dir, bundle);
  await writeFile(path.join(dir, 'ca.crt'), 'garbage'); // more events, pair unchanged from the one in use
  await new Promise((resolve) => setTimeout(resolve, DEBOUNCE_MS * 4));
  await writeFile(path.join(dir, 'tls.crt'), 'garbage');
  await errors.waitFor(2, 'the second marker error');
  t.same(changes.seen, [], 'back to the pair in use after an invalid state: still no onChange');
});

const FIRST_VERSION = '..2025_01_01_00_00_00.000000001';

async function writeVersion(dir: string, version: string, bundle: CertificateBundle): Promise<void> {
  await mkdir(path.join(dir, version));
  await writeFile(path.join(dir, version, 'tls.crt'), bundle.cert);
  await writeFile(path.join(dir, version, 'tls.key'), bundle.key);
  await writeFile(path.join(dir, version, 'ca.crt'), bundle.caCert);
}

/**
 * Lays a directory out as kubelet mounts a Secret: the data in a timestamped directory,
 * `..data` pointing at it, and each key a symlink through `..data`.
 */
async function mountSecret(dir: string, bundle: CertificateBundle): Promise<void> {
  await writeVersion(dir, FIRST_VERSION, bundle);
  await symlink(FIRST_VERSION, path.join(dir, '..data'));
  for (const name of ['tls.crt', 'tls.key', 'ca.crt']) await symlink(path.join('..data', name), path.join(dir, name));
}

/** Rotates the Secret as kubelet's AtomicWriter does: new directory, swap `..data`, remove the old one. */
async function rotateSecret(dir: string, from: string, to: string, bundle: CertificateBundle): Promise<void> {
  await writeVersion(dir, to, bundle);
  await symlink(to, path.join(dir, '..data_tmp'));
  await rename(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
  await rm(path.join(dir, from), { recursive: true });
}

t.test('Kubernetes Secret rotations (..data symlink swap) are picked up, again and again', async (t) => {
  const dir = await tempDir(t);
  const first = await generateCertificates(OPTIONS);
  await mountSecret(dir, first);
  t.same(await loadServingPair(dir), { cert: first.cert, key: first.key }, 'reads through the symlinks');
  const { changes, errors } = watch(t, dir);

  // A watch on the files would follow the first symlink target, see it deleted once, and then
  // watch a dead inode: the second rotation is the one that proves the directory is watched.
  const second = await generateCertificates(OPTIONS);
  const secondVersion = '..2025_01_02_00_00_00.000000002';
  await rotateSecret(dir, FIRST_VERSION, secondVersion, second);
  t.same(await changes.waitFor(1, 'the reload after the first symlink swap'), { cert: second.cert, key: second.key });

  const third = await generateCertificates(OPTIONS);
  await rotateSecret(dir, secondVersion, '..2025_01_03_00_00_00.000000003', third);
  t.same(await changes.waitFor(2, 'the reload after the second symlink swap'), { cert: third.cert, key: third.key });
  t.same(errors.seen, [], 'no transient errors');
});

/** Fingerprint of the certificate a new TLS connection to the server presents. */
async function servedFingerprint(port: number, ca: string[], servername?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = https.request(
      // agent: false → a fresh connection, never a pooled one that still uses the old context.
      { host: '127.0.0.1', port, path: '/', ca, agent: false, ...(servername === undefined ? {} : { servername }) },
      (response) => {
        const certificate = (response.socket as TLSSocket).getPeerCertificate();
        response.resume();
        response.on('end', () => resolve(certificate.fingerprint256));
      },
    );
    request.on('error', reject);
    request.end();
  });
}

t.test('a real HTTPS server serves the renewed certificate on new connections', async (t) => {
  const dir = await tempDir(t);
  // Valid for 1 day; asking for 2 days of margin later forces a renewal at the real time.
  const initial = await ensureCertificates(dir, { ...OPTIONS, validityDays: 1, renewBeforeDays: 0 });
  t.equal(initial.generated, true);

  const server = https.createServer({ cert: initial.bundle.cert, key: initial.bundle.key, minVersion: 'TLSv1.2' }, (_request, response) => {
    response.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;
  const ca = [initial.bundle.caCert ?? ''];

  const before = new X509Certificate(initial.bundle.cert).fingerprint256;
  t.equal(await servedFingerprint(port, ca), before, 'serves the initial certificate, verified by ca.crt via IP SAN');
  t.equal(await servedFingerprint(port, ca, 'mesh-admission.mesh-system.svc'), before, 'and verified by its service DNS name');

  const reloaded = new Events<ServingPair>();
  const errors = new Events<Error>();
  const watcher = watchCertificates(
    dir,
    (pair) => {
      server.setSecureContext({ cert: pair.cert, key: pair.key, minVersion: 'TLSv1.2' });
      reloaded.push(pair);
    },
    { debounceMs: DEBOUNCE_MS, onError: errors.push, current: { cert: initial.bundle.cert, key: initial.bundle.key } },
  );
  t.teardown(() => watcher.close());

  const renewed = await ensureCertificates(dir, { ...OPTIONS, validityDays: 1, renewBeforeDays: 2 });
  t.equal(renewed.generated, true, renewed.reason);
  t.equal(renewed.bundle.caCert, initial.bundle.caCert, 'renewed with the same CA');
  await reloaded.waitFor(1, 'the reload after renewal');

  const after = new X509Certificate(renewed.bundle.cert).fingerprint256;
  t.not(after, before);
  t.equal(await servedFingerprint(port, ca), after, 'a new connection gets the renewed certificate');
  t.same(errors.seen, []);
});

t.test('a pair the caller rejected (onChange threw) is reported and offered again', async (t) => {
  const dir = await tempDir(t);
  await writePair(dir, await generateCertificates(OPTIONS));
  const errors = new Events<Error>();
  const accepted = new Events<ServingPair>();
  let calls = 0;
  const watcher = watchCertificates(
    dir,
    (pair) => {
      calls += 1;
      if (calls === 1) throw new Error('setSecureContext failed');
      accepted.push(pair);
    },
    { debounceMs: DEBOUNCE_MS, onError: errors.push },
  );
  t.teardown(() => watcher.close());

  const next = await generateCertificates(OPTIONS);
  await writePair(dir, next);
  t.equal((await errors.waitFor(1, 'the reported onChange failure')).message, 'setSecureContext failed');
  await writePair(dir, next); // same files again: not yet accepted, so still a change
  t.same(await accepted.waitFor(1, 'the second offer'), { cert: next.cert, key: next.key });
});

t.test('a refused pair is reported once, not at every poll; a new pair after it is loaded', async (t) => {
  const dir = await tempDir(t);
  const first = await ensureCertificates(dir, { ...OPTIONS, renewBeforeDays: 0 });
  const changes = new Events<ServingPair>();
  const errors = new Events<Error>();
  const watcher = watchCertificates(dir, changes.push, { debounceMs: DEBOUNCE_MS, pollIntervalMs: DEBOUNCE_MS, onError: errors.push });
  t.teardown(() => watcher.close());

  const foreign = await generateCertificates(OPTIONS);
  await writePair(dir, foreign);
  t.match((await errors.waitFor(1, 'the refusal')).message, `${path.join(dir, 'tls.crt')} is not signed by ${path.join(dir, 'ca.crt')}`);
  await new Promise((resolve) => setTimeout(resolve, DEBOUNCE_MS * 8));
  t.equal(errors.seen.length, 1, 'several polls later, still one report');

  const ca = { cert: first.bundle.caCert as string, key: first.bundle.caKey as string };
  const renewed = await issueServingCertificate(OPTIONS, ca);
  await writePair(dir, renewed);
  t.same(await changes.waitFor(1, 'the valid pair'), { cert: renewed.cert, key: renewed.key });
});
