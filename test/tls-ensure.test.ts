import { spawnSync } from 'node:child_process';
import t, { type Test } from 'tap';
import { X509Certificate } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { generate } from 'selfsigned';
import { ensureCertificates, type EnsureOptions } from '../src/tls/ensure.ts';
import { generateCertificates } from '../src/tls/generate.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
const OPTIONS: EnsureOptions = { serviceName: 'mesh-admission', namespace: 'mesh-system', validityDays: 365, renewBeforeDays: 30 };
const FILES = ['ca.crt', 'ca.key', 'tls.crt', 'tls.key'];

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mesh-admission-ensure-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function readAll(dir: string): Promise<Record<string, string>> {
  const entries = await Promise.all(FILES.map(async (name) => [name, await readFile(path.join(dir, name), 'utf8')] as const));
  return Object.fromEntries(entries);
}

function daysFromNow(days: number): Date {
  return new Date(Date.now() + days * DAY_MS);
}

t.test('an empty directory gets a CA and a serving certificate, keys private', async (t) => {
  const dir = path.join(await tempDir(t), 'certs'); // also: the directory is created
  const result = await ensureCertificates(dir, OPTIONS);
  t.equal(result.generated, true);
  t.match(result.reason, /no serving certificate in .*tls\.crt/);
  t.same((await readdir(dir)).sort(), FILES, 'exactly the four files, no temporary files left');

  const files = await readAll(dir);
  t.same(result.bundle, { caCert: files['ca.crt'], caKey: files['ca.key'], cert: files['tls.crt'], key: files['tls.key'] });
  for (const key of ['ca.key', 'tls.key']) {
    t.equal((await stat(path.join(dir, key))).mode & 0o777, 0o600, `${key} is mode 0600`);
  }
  const leaf = new X509Certificate(files['tls.crt'] ?? '');
  t.ok(leaf.verify(new X509Certificate(files['ca.crt'] ?? '').publicKey));
});

t.test('valid files are reused untouched', async (t) => {
  const dir = await tempDir(t);
  await ensureCertificates(dir, OPTIONS);
  const before = await readAll(dir);
  const mtimes = await Promise.all(FILES.map(async (name) => (await stat(path.join(dir, name))).mtimeMs));

  const again = await ensureCertificates(dir, OPTIONS);
  t.equal(again.generated, false);
  t.match(again.reason, /tls\.crt is valid until \d{4}-.*: reusing it$/);
  t.same(await readAll(dir), before, 'identical file contents');
  t.same(await Promise.all(FILES.map(async (name) => (await stat(path.join(dir, name))).mtimeMs)), mtimes, 'not rewritten');
  t.same(again.bundle, { caCert: before['ca.crt'], caKey: before['ca.key'], cert: before['tls.crt'], key: before['tls.key'] });

  const stillFine = await ensureCertificates(dir, { ...OPTIONS, now: daysFromNow(300) });
  t.equal(stillFine.generated, false, '300 days in, 65 days left: outside the 30-day renewal window');
});

t.test('a serving certificate about to expire is renewed with the same CA', async (t) => {
  const dir = await tempDir(t);
  await ensureCertificates(dir, OPTIONS);
  const before = await readAll(dir);

  const result = await ensureCertificates(dir, { ...OPTIONS, now: daysFromNow(340) });
  t.equal(result.generated, true);
  t.match(result.reason, /tls\.crt expires .*, within 30 days: issued a new serving certificate signed by .*ca\.crt/);
  const after = await readAll(dir);
  t.equal(after['ca.crt'], before['ca.crt'], 'CA kept, so the caBundle in the webhook configurations stays valid');
  t.equal(after['ca.key'], before['ca.key']);
  t.not(after['tls.crt'], before['tls.crt'], 'new serving certificate');
  t.not(after['tls.key'], before['tls.key'], 'new serving key');
  const leaf = new X509Certificate(after['tls.crt'] ?? '');
  t.ok(leaf.verify(new X509Certificate(after['ca.crt'] ?? '').publicKey));
  t.ok(leaf.validToDate.getTime() > daysFromNow(340 + 364).getTime(), 'valid for validityDays from `now`');
  t.same(result.bundle, { caCert: after['ca.crt'], caKey: after['ca.key'], cert: after['tls.crt'], key: after['tls.key'] });
});

t.test('a CA about to expire is replaced together with the serving certificate', async (t) => {
  const dir = await tempDir(t);
  await ensureCertificates(dir, { ...OPTIONS, caValidityDays: 400 });
  const before = await readAll(dir);
  const result = await ensureCertificates(dir, { ...OPTIONS, caValidityDays: 400, now: daysFromNow(380) });
  t.equal(result.generated, true);
  t.match(result.reason, /generated a new CA and serving certificate/);
  const after = await readAll(dir);
  t.not(after['ca.crt'], before['ca.crt']);
  t.ok(new X509Certificate(after['tls.crt'] ?? '').verify(new X509Certificate(after['ca.crt'] ?? '').publicKey));
});

t.test('corrupt files are an error naming the file, and are not overwritten', async (t) => {
  for (const name of FILES) {
    const dir = await tempDir(t);
    await ensureCertificates(dir, OPTIONS);
    const file = path.join(dir, name);
    await writeFile(file, 'this is not PEM\n');
    await t.rejects(ensureCertificates(dir, OPTIONS), { message: new RegExp(`^${file.replaceAll('.', '\\.')} does not contain`) }, name);
    t.equal(await readFile(file, 'utf8'), 'this is not PEM\n', `${name} left as it was`);
  }

  const dir = await tempDir(t);
  await ensureCertificates(dir, OPTIONS);
  const file = path.join(dir, 'tls.crt');
  await writeFile(file, '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n');
  await t.rejects(ensureCertificates(dir, OPTIONS), { message: new RegExp(`^${file.replaceAll('.', '\\.')}: certificate 1 is not a valid PEM certificate`) });
});

t.test('a tls.crt/tls.key-only directory (mounted TLS Secret) is reused without ca.key', async (t) => {
  const source = await tempDir(t);
  const generated = await ensureCertificates(source, OPTIONS);
  const dir = await tempDir(t);
  await copyFile(path.join(source, 'tls.crt'), path.join(dir, 'tls.crt'));
  await copyFile(path.join(source, 'tls.key'), path.join(dir, 'tls.key'));

  const result = await ensureCertificates(dir, OPTIONS);
  t.equal(result.generated, false);
  t.same(result.bundle, { cert: generated.bundle.cert, key: generated.bundle.key, caCert: undefined, caKey: undefined });
  t.same((await readdir(dir)).sort(), ['tls.crt', 'tls.key'], 'nothing written');

  // cert-manager also writes ca.crt; then the chain is checked but ca.key is still not needed.
  await copyFile(path.join(source, 'ca.crt'), path.join(dir, 'ca.crt'));
  const withCa = await ensureCertificates(dir, OPTIONS);
  t.equal(withCa.generated, false);
  t.equal(withCa.bundle.caCert, generated.bundle.caCert);
  t.equal(withCa.bundle.caKey, undefined);

  // During a CA rotation ca.crt lists two CAs; the serving certificate may chain to either.
  const otherCa = (await generateCertificates(OPTIONS)).caCert;
  await writeFile(path.join(dir, 'ca.crt'), otherCa + generated.bundle.caCert);
  const rotating = await ensureCertificates(dir, OPTIONS);
  t.equal(rotating.generated, false, rotating.reason);
});

t.test('a serving certificate issued through an intermediate CA is reused', async (t) => {
  const dir = await tempDir(t);
  const root = await generate([{ name: 'commonName', value: 'root' }], {
    keyType: 'ec', algorithm: 'sha256',
    extensions: [{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, critical: true }],
  });
  const intermediate = await generate([{ name: 'commonName', value: 'intermediate' }], {
    keyType: 'ec', algorithm: 'sha256', ca: { cert: root.cert, key: root.private },
    extensions: [{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, critical: true }],
  });
  const leaf = await generate([{ name: 'commonName', value: 'mesh-admission.mesh-system.svc' }], {
    keyType: 'ec', algorithm: 'sha256', ca: { cert: intermediate.cert, key: intermediate.private },
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'mesh-admission.mesh-system.svc' }] }],
  });
  await writeFile(path.join(dir, 'ca.crt'), `${root.cert}\n`);
  await writeFile(path.join(dir, 'tls.crt'), `${leaf.cert}\n${intermediate.cert}\n`);
  await writeFile(path.join(dir, 'tls.key'), leaf.private);

  const result = await ensureCertificates(dir, OPTIONS);
  t.equal(result.generated, false, result.reason);
});

t.test('unusable serving certificates are replaced, and the reason says why', async (t) => {
  const cases: { name: string; prepare: (dir: string) => Promise<void>; reason: RegExp }[] = [
    {
      name: 'key of another certificate',
      prepare: async (dir) => writeFile(path.join(dir, 'tls.key'), (await generateCertificates(OPTIONS)).key),
      reason: /tls\.key does not belong to .*tls\.crt/,
    },
    {
      name: 'signed by another CA',
      prepare: async (dir) => {
        const other = await generateCertificates(OPTIONS);
        await writeFile(path.join(dir, 'tls.crt'), other.cert);
        await writeFile(path.join(dir, 'tls.key'), other.key);
      },
      reason: /tls\.crt is not signed by .*ca\.crt/,
    },
    {
      name: 'for another service',
      prepare: async (dir) => {
        const other = await generateCertificates({ ...OPTIONS, serviceName: 'other' });
        await writeFile(path.join(dir, 'ca.crt'), other.caCert);
        await writeFile(path.join(dir, 'ca.key'), other.caKey);
        await writeFile(path.join(dir, 'tls.crt'), other.cert);
        await writeFile(path.join(dir, 'tls.key'), other.key);
      },
      reason: /tls\.crt does not cover mesh-admission\.mesh-system\.svc/,
    },
    {
      name: 'signed with SHA-1',
      prepare: async (dir) => {
        const ca = await readAll(dir);
        const sha1 = await generate([{ name: 'commonName', value: 'mesh-admission.mesh-system.svc' }], {
          keyType: 'ec', algorithm: 'sha1', ca: { cert: ca['ca.crt'] ?? '', key: ca['ca.key'] ?? '' },
          extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'mesh-admission.mesh-system.svc' }] }],
        });
        await writeFile(path.join(dir, 'tls.crt'), sha1.cert);
        await writeFile(path.join(dir, 'tls.key'), sha1.private);
      },
      reason: /tls\.crt is signed with SHA-1/,
    },
    {
      name: 'tls.key missing',
      prepare: async (dir) => rm(path.join(dir, 'tls.key')),
      reason: /tls\.key is missing/,
    },
  ];
  for (const { name, prepare, reason } of cases) {
    const dir = await tempDir(t);
    await ensureCertificates(dir, OPTIONS);
    await prepare(dir);
    const result = await ensureCertificates(dir, OPTIONS);
    t.equal(result.generated, true, name);
    t.match(result.reason, reason, name);
    const after = await ensureCertificates(dir, OPTIONS);
    t.equal(after.generated, false, `${name}: the replacement is valid and reused`);
  }
});

t.test('an unwritable directory is an error naming the directory', async (t) => {
  const base = await tempDir(t);
  const file = path.join(base, 'a-file');
  await writeFile(file, '');
  const dir = path.join(file, 'certs'); // a directory below a regular file cannot exist
  await t.rejects(ensureCertificates(dir, OPTIONS), { message: new RegExp(`cannot write certificates to directory ${dir.replaceAll('.', '\\.')}`) });
});

t.test('an expiring read-only TLS Secret mount: the error names the directory and the reason', async (t) => {
  const dir = await tempDir(t);
  await ensureCertificates(dir, OPTIONS);
  await rm(path.join(dir, 'ca.key'));
  await chmod(dir, 0o555);
  t.teardown(() => chmod(dir, 0o755));
  const expected = /cannot write certificates to directory .*needed because .*tls\.crt expires/;
  if (process.getuid?.() !== 0) {
    await t.rejects(ensureCertificates(dir, { ...OPTIONS, now: daysFromNow(360) }), { message: expected });
    return;
  }
  // Root ignores file modes, so the attempt runs in a child process as an unprivileged user.
  await chmod(path.dirname(dir), 0o755);
  for (const file of await readdir(dir)) await chmod(path.join(dir, file), 0o644);
  const module = new URL('../src/tls/ensure.ts', import.meta.url).href;
  const script = `import { ensureCertificates } from ${JSON.stringify(module)};
    ensureCertificates(${JSON.stringify(dir)}, { ...${JSON.stringify(OPTIONS)}, now: new Date(Date.now() + 360 * 864e5) })
      .then(() => console.log('no error'), (error) => console.log(error.message));`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { uid: 65534, gid: 65534, encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '' } });
  // (tap's process tracking may complain on stderr that it cannot write as that user: harmless.)
  t.match(child.stdout, expected);
});

t.test('bad renewBeforeDays is rejected', async (t) => {
  const dir = await tempDir(t);
  await t.rejects(ensureCertificates(dir, { ...OPTIONS, renewBeforeDays: -1 }), /renewBeforeDays must be zero or a positive number of days/);
  await mkdir(dir, { recursive: true });
  t.same(await readdir(dir), [], 'nothing written');
});

t.test('a directory the file system refuses to create fails at once with the directory and the errno', async (t) => {
  // procfs answers mkdir with ENOENT although /proc exists: Node's recursive mkdir retries
  // that forever, so the command must not use it.
  const cli = path.join(import.meta.dirname, '..', 'src', 'cli.ts');
  const result = spawnSync(process.execPath, [cli, 'certs', '--dir', '/proc/nope'], { encoding: 'utf8', timeout: 30_000 });
  t.equal(result.signal, null, 'exits by itself');
  t.equal(result.status, 1);
  const lines = result.stderr.trim().split('\n');
  t.equal(lines.length, 1, result.stderr);
  t.match(lines[0], /cannot write certificates to directory \/proc\/nope: ENOENT/);
});
