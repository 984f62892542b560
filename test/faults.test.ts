/**
 * `serve` refuses to start on broken input — corrupt or unreadable certificates, a cert dir it
 * cannot write, bad settings — with a non-zero exit and a message naming the file or setting,
 * promptly and without ever listening.
 *
 * One case of each kind runs as a real process (`node src/cli.ts serve`, exit code and
 * stderr); the variations run through runCli in-process, the same code path without the
 * start-up cost of a process each.
 */
import t, { type Test } from 'tap';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { generateCertificates } from '../src/tls/generate.ts';
import { runCliCaptured } from './helpers/run-cli.ts';
import { tempDir } from './helpers/temp-dir.ts';

/** A refusal is quick; this only stops a server that started by mistake. */
const DEADLINE_MS = 30_000;
const LISTEN = ['--port', '0', '--probe-port', '0', '--host', '127.0.0.1', '--probe-host', '127.0.0.1'];

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function spawnServe(args: readonly string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['src/cli.ts', 'serve', ...LISTEN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`serve did not exit within ${DEADLINE_MS} ms; it should refuse to start.\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, DEADLINE_MS);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function runServe(args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  return runCliCaptured(['serve', ...LISTEN, ...args], '', env);
}

const dir = (prefix: string) => tempDir(t, `faults-${prefix}-`);
const pattern = (text: string) => text.replace(/[.]/g, '\\.');

function refused(t: Test, run: Run, code: number, message: RegExp): void {
  t.equal(run.code, code, `exit code ${code}`);
  t.match(run.stderr, message, 'the message names the file or setting');
  t.notMatch(run.stdout, /mesh-admission serving/, 'never started serving');
}

t.test('as real processes: one fault of each kind', async (t) => {
  const corrupt = await dir('corrupt');
  await writeFile(join(corrupt, 'tls.crt'), 'this is not a certificate\n');
  // A directory where tls.key belongs: unreadable even for root, who ignores permission bits.
  const unreadable = await dir('unreadable');
  await mkdir(join(unreadable, 'tls.key'));
  // A cert dir whose parent is a file cannot be created (mode bits would not stop root).
  const parent = await dir('unwritable');
  await writeFile(join(parent, 'file'), 'x');
  const unwritable = join(parent, 'file', 'certs');
  const config = join(await dir('config'), 'config.yaml');
  await writeFile(config, 'enforcment: warn\n');

  const [corruptRun, unreadableRun, unwritableRun, configRun] = await Promise.all([
    spawnServe(['--cert-dir', corrupt]),
    spawnServe(['--cert-dir', unreadable]),
    spawnServe(['--cert-dir', unwritable]),
    spawnServe(['--cert-dir', await dir('config-certs'), '--config', config]),
  ]);
  t.comment('corrupt certificate');
  refused(t, corruptRun as Run, 1, new RegExp(`${pattern(join(corrupt, 'tls.crt'))} does not contain a PEM certificate`));
  t.comment('unreadable certificate');
  refused(t, unreadableRun as Run, 1, new RegExp(`cannot read ${pattern(join(unreadable, 'tls.key'))}: EISDIR`));
  t.comment('unwritable cert dir');
  refused(t, unwritableRun as Run, 1, new RegExp(`cannot write certificates to directory ${pattern(unwritable)}: ENOTDIR`));
  t.comment('bad config');
  refused(t, configRun as Run, 2, new RegExp(`invalid setting "enforcment": unknown setting in ${pattern(config)}`));
});

t.test('more certificate faults', async (t) => {
  const bundle = await generateCertificates({ serviceName: 'mesh-admission', namespace: 'mesh-admission', validityDays: 30 });

  const badKey = await dir('corrupt-key');
  await writeFile(join(badKey, 'tls.crt'), bundle.cert);
  await writeFile(join(badKey, 'tls.key'), '-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n');
  const run = await runServe(['--cert-dir', badKey]);
  refused(t, run, 1, /tls\.key does not contain a usable unencrypted PEM private key/);
  t.notMatch(run.stderr, /bm90IGEga2V5/, 'the key file content is not echoed');

  const badCa = await dir('corrupt-ca');
  await writeFile(join(badCa, 'ca.crt'), 'garbage\n');
  refused(t, await runServe(['--cert-dir', badCa]), 1, new RegExp(`${pattern(join(badCa, 'ca.crt'))} does not contain a PEM certificate`));

  if (process.getuid?.() !== 0) {
    const locked = await dir('unreadable-mode');
    await writeFile(join(locked, 'tls.crt'), bundle.cert);
    await writeFile(join(locked, 'tls.key'), bundle.key);
    await chmod(join(locked, 'tls.key'), 0o000);
    refused(t, await runServe(['--cert-dir', locked]), 1, /cannot read \S*tls\.key: EACCES/);
  }
});

t.test('more bad settings: flags, environment, config file, client CA', async (t) => {
  const base = await dir('settings');
  const config = (name: string, text: string) => {
    const path = join(base, `${name}.yaml`);
    return writeFile(path, text).then(() => path);
  };
  const notPem = join(base, 'not-pem.crt');
  await writeFile(notPem, 'not a CA\n');
  const badValue = await config('value', 'requestTimeoutMs: soon\n');
  const notYaml = await config('yaml', 'a: [\n');
  const cases: [string, string[], Record<string, string>, RegExp][] = [
    ['a bad flag value', ['--enforcement', 'maybe'], {}, /invalid setting "--enforcement": expected one of deny, warn, got "maybe"/],
    ['a bad timeout', ['--headers-timeout-ms=0'], {}, /invalid setting "--headers-timeout-ms": must be a positive integer, got 0/],
    ['a bad environment variable', [], { MESH_ADMISSION_REQUEST_TIMEOUT_MS: 'soon' }, /invalid setting "MESH_ADMISSION_REQUEST_TIMEOUT_MS": expected an integer, got "soon"/],
    ['a bad value in the config file', ['--config', badValue], {}, /invalid setting "requestTimeoutMs": expected an integer, got "soon"/],
    ['a config file that is not YAML', ['--config', notYaml], {}, new RegExp(`invalid setting "${pattern(notYaml)}": not valid YAML`)],
    ['a missing config file', ['--config', join(base, 'nope.yaml')], {}, /cannot read config file \S*nope\.yaml: ENOENT/],
    ['a missing client CA file', ['--client-ca-file', join(base, 'client-ca.crt')], {}, /invalid setting "clientCaFile": cannot read \S*client-ca\.crt: ENOENT/],
    ['a client CA file that is not PEM', ['--client-ca-file', notPem], {}, /invalid setting "clientCaFile": \S*not-pem\.crt does not contain a PEM certificate/],
  ];
  for (const [label, args, env, message] of cases) {
    t.comment(label);
    const certDir = join(base, 'certs');
    refused(t, await runServe(['--cert-dir', certDir, ...args], env), 2, message);
  }
});
