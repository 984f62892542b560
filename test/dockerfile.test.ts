/**
 * The Dockerfile, without Docker (it cannot run here): its instructions are parsed and its
 * steps replayed in a temporary folder that stands in for the image's file system — the build
 * stage's `npm run build` on the files it copies, the runtime stage's COPY and RUN steps
 * (`npm ci --omit=dev`, directories), then `node dist/cli.js serve` as the image would run it:
 * as its numeric non-root user (when this test runs as root), with the image's environment,
 * a read-only pre-generated cert dir and a read-only application folder. One admission review
 * over HTTPS must be answered, the probes must answer, SIGTERM must exit 0, and nothing may be
 * written outside the temporary /tmp.
 *
 * RUN steps are replayed only in the forms this file knows (npm ci / npm run / npm cache
 * clean / mkdir -p / chown); any other step fails the test, which must then learn it.
 */
import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { chmod, chown, cp, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import https from 'node:https';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateCertificates } from '../src/tls/generate.ts';
import { followServeLogs } from './helpers/serve-logs.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// `npm ci` and a build on a busy machine can take longer than the suite's 60 s.
t.setTimeout(180_000);

// ---------------------------------------------------------------------------------------------
// Parsing

interface Instruction {
  readonly keyword: string;
  readonly args: string;
  readonly line: number;
}

interface Stage {
  readonly image: string;
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}

function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index++) {
    let line = lines[index]!;
    const start = index + 1;
    if (/^\s*(#|$)/.test(line)) continue;
    // Continuation lines (a trailing backslash); comment lines inside are skipped as Docker does.
    while (/\\\s*$/.test(line) && index + 1 < lines.length) {
      index++;
      const next = lines[index]!;
      if (/^\s*#/.test(next)) continue;
      line = line.replace(/\\\s*$/, ' ') + next.trim();
    }
    const match = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!match) throw new Error(`Dockerfile line ${start}: cannot parse "${line}"`);
    const keyword = match[1]!.toUpperCase();
    const args = match[2]!.trim();
    if (keyword === 'FROM') {
      const from = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!from) throw new Error(`Dockerfile line ${start}: cannot parse FROM ${args}`);
      stages.push({ image: from[1]!, name: from[2], instructions: [] });
    } else {
      const stage = stages[stages.length - 1];
      if (!stage) throw new Error(`Dockerfile line ${start}: ${keyword} before FROM`);
      stage.instructions.push({ keyword, args, line: start });
    }
  }
  return stages;
}

/** `KEY=value KEY2="value 2"` (ENV) as a record. */
function parseEnv(args: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const match of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("([^"]*)"|\S*)/g)) env[match[1]!] = match[3] ?? match[2]!;
  return env;
}

function jsonArray(args: string, what: string): string[] {
  const value = JSON.parse(args) as unknown;
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw new Error(`${what} must be an exec-form JSON array, got ${args}`);
  return value;
}

/** `COPY [--from=x] src... dest` */
function parseCopy(args: string): { from: string | undefined; sources: string[]; dest: string } {
  const parts = args.split(/\s+/);
  let from: string | undefined;
  while (parts[0]?.startsWith('--')) {
    const flag = parts.shift()!;
    const m = /^--from=(.+)$/.exec(flag);
    if (m) from = m[1];
    else throw new Error(`COPY flag ${flag} is not replayed by this test`);
  }
  const dest = parts.pop()!;
  return { from, sources: parts, dest };
}

/** Docker's .dockerignore: patterns in order, `!` re-includes, the last match wins. */
function dockerignoreMatcher(text: string): (file: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = path.posix.normalize((negate ? l.slice(1) : l).replace(/^\/+/, ''));
      const source = pattern
        .split('/')
        .map((part) => (part === '**' ? '.*' : part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')))
        .join('/');
      // A pattern matching a directory also matches everything below it.
      return { negate, regex: new RegExp(`^${source.replace(/\/\.\*$/, '(/.*)?')}(/.*)?$`) };
    });
  return (file) => {
    let ignored = false;
    for (const rule of rules) if (rule.regex.test(file)) ignored = !rule.negate;
    return ignored;
  };
}

// ---------------------------------------------------------------------------------------------
// Replaying

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Under `tap`, child_process is wrapped to put tap's loader into NODE_OPTIONS of every child;
 * the replayed steps and the server must run as in the image, so `env -u` removes it again.
 */
const UNHOOKED = ['-u', 'NODE_OPTIONS'];

function run(command: string, args: readonly string[], options: { cwd: string; env: NodeJS.ProcessEnv }): Promise<Run> {
  return new Promise((resolve) => {
    execFile('env', [...UNHOOKED, command, ...args], { ...options, maxBuffer: 32 * 1024 * 1024, timeout: 180_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** A folder standing in for the root of one stage's file system. */
class StageRoot {
  readonly root: string;
  workdir = '/';
  env: Record<string, string> = {};
  constructor(root: string) {
    this.root = root;
  }
  /** The host path of an image path (relative ones against WORKDIR). */
  host(imagePath: string): string {
    return path.join(this.root, path.posix.resolve(this.workdir, imagePath));
  }
}

const stagesText = await readFile(path.join(REPO, 'Dockerfile'), 'utf8');
const stages = parseDockerfile(stagesText);
const ignored = dockerignoreMatcher(await readFile(path.join(REPO, '.dockerignore'), 'utf8'));
const packageJson = JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> };

const build = stages.find((s) => s.name === 'build');
const runtime = stages[stages.length - 1]!;
const last = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.keyword === keyword).pop();

t.test('the Dockerfile has the expected shape', async (t) => {
  t.equal(stages.length, 2, 'two stages: build and runtime');
  t.ok(build, 'a stage named "build"');
  t.match(build!.image, /^node:24(-|$)/, 'the build stage uses node:24');
  t.match(runtime.image, /^node:24-(bookworm-)?slim$/, 'the runtime stage uses node:24-slim');
  const runs = runtime.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
  t.ok(runs.some((r) => /\bnpm ci\b.*--omit=dev/.test(r)), 'the runtime installs production dependencies only');
  const user = last(runtime, 'USER')?.args ?? '';
  t.match(user, /^[1-9][0-9]*(:[1-9][0-9]*)?$/, 'USER is a numeric non-root uid[:gid]');
  t.same(jsonArray(last(runtime, 'ENTRYPOINT')!.args, 'ENTRYPOINT'), ['node', 'dist/cli.js']);
  t.same(jsonArray(last(runtime, 'CMD')!.args, 'CMD'), ['serve']);
  t.same(last(runtime, 'EXPOSE')!.args.split(/\s+/).sort(), ['8443', '9090']);
  const copies = runtime.instructions.filter((i) => i.keyword === 'COPY').map((i) => parseCopy(i.args));
  t.same(
    copies.map((c) => [c.from ?? 'context', ...c.sources]),
    [['context', 'package.json', 'package-lock.json'], ['build', '/app/dist']],
    'the runtime image gets the package files and the compiled dist only',
  );
  const env = Object.assign({}, ...runtime.instructions.filter((i) => i.keyword === 'ENV').map((i) => parseEnv(i.args))) as Record<string, string>;
  t.equal(env['NODE_ENV'], 'production');
  t.equal(env['MALLOC_ARENA_MAX'], '1', 'one malloc arena: what threads free stays reusable by all (the benchmarks read the same line)');
  const certDir = env['MESH_ADMISSION_CERT_DIR'];
  t.ok(certDir?.startsWith('/'), 'the default cert dir is an absolute path');
  t.ok(jsonArray(last(runtime, 'VOLUME')!.args, 'VOLUME').includes(certDir!), 'the cert dir is a volume');
  const uid = user.split(':')[0];
  t.ok(runs.some((r) => r.includes(`chown ${uid}`) && r.includes(certDir!)), 'the cert dir belongs to the runtime user (docker run without a volume)');
  t.equal(packageJson.scripts['build'], 'tsc -p tsconfig.build.json', 'npm run build compiles with tsconfig.build.json');
});

t.test('.dockerignore keeps the build context to what the Dockerfile copies', async (t) => {
  for (const file of ['node_modules/fastify/package.json', 'dist/cli.js', 'certs/ca.key', '.git/config', 'test/chart.test.ts', 'charts/mesh-admission/values.yaml', '.tap/report', 'Dockerfile', '.env', 'coverage/x']) {
    t.ok(ignored(file), `${file} is not sent to the builder`);
  }
  const sources = stages.flatMap((s) => s.instructions.filter((i) => i.keyword === 'COPY').map((i) => parseCopy(i.args))).filter((c) => c.from === undefined).flatMap((c) => c.sources);
  for (const source of sources) t.notOk(ignored(source), `COPY source ${source} is in the build context`);
  t.notOk(ignored('src/kube/ca-bundle.ts'), 'files under src/ are in the context');
});

t.test('replaying the Dockerfile: the image serves one review over HTTPS as a non-root user', async (t) => {
  const temp = await mkdtemp(path.join(os.tmpdir(), 'mesh-admission-docker-'));
  t.teardown(() => rm(temp, { recursive: true, force: true }));
  await chmod(temp, 0o755);
  const npmCache = path.join(temp, 'npm-cache');
  // npm keeps the machine's settings (registry, proxy CA); its cache is a temporary one, so
  // `npm cache clean --force` cleans that and never the machine's.
  const toolEnv = { ...process.env, npm_config_cache: npmCache, npm_config_update_notifier: 'false' };

  /** Replays one RUN: each `&&` part must be a known form. */
  const replayRun = async (stage: StageRoot, instruction: Instruction, known: { npmCi?: (args: string[]) => Promise<void> }) => {
    for (const part of instruction.args.split('&&').map((p) => p.trim())) {
      const words = part.split(/\s+/);
      const where = `Dockerfile line ${instruction.line}: ${part}`;
      if (words[0] === 'npm' && words[1] === 'ci') {
        if (!known.npmCi) throw new Error(`${where}: no replay for npm ci in this stage`);
        await known.npmCi(words.slice(2));
      } else if (words[0] === 'npm' && words[1] === 'run') {
        const result = await run('npm', words.slice(1), { cwd: stage.host('.'), env: { ...toolEnv, ...stage.env } });
        if (result.code !== 0) throw new Error(`${where} failed:\n${result.stdout}\n${result.stderr}`);
      } else if (part === 'npm cache clean --force') {
        const result = await run('npm', ['cache', 'clean', '--force'], { cwd: stage.host('.'), env: { ...toolEnv, ...stage.env } });
        if (result.code !== 0) throw new Error(`${where} failed: ${result.stderr}`);
      } else if (words[0] === 'mkdir' && words[1] === '-p' && words.length >= 3) {
        for (const dir of words.slice(2)) await mkdir(stage.host(dir), { recursive: true });
      } else if (words[0] === 'chown' && words.length === 3 && /^\d+:\d+$/.test(words[1]!)) {
        const [uid, gid] = words[1]!.split(':').map(Number) as [number, number];
        if (process.getuid?.() === 0) await chown(stage.host(words[2]!), uid, gid);
      } else {
        throw new Error(`${where}: test/dockerfile.test.ts cannot replay this step; teach it the new form`);
      }
    }
  };

  const replayStage = async (stage: Stage, root: StageRoot, known: { npmCi?: (args: string[]) => Promise<void>; stages: Map<string, Promise<StageRoot>> }) => {
    for (const instruction of stage.instructions) {
      switch (instruction.keyword) {
        case 'WORKDIR':
          root.workdir = path.posix.resolve(root.workdir, instruction.args);
          await mkdir(root.host('.'), { recursive: true });
          break;
        case 'ENV':
          Object.assign(root.env, parseEnv(instruction.args));
          break;
        case 'COPY': {
          const copy = parseCopy(instruction.args);
          const from = copy.from === undefined ? undefined : await known.stages.get(copy.from);
          if (copy.from !== undefined && !from) throw new Error(`COPY --from=${copy.from}: no such stage was replayed`);
          for (const source of copy.sources) {
            if (!from && ignored(source)) throw new Error(`COPY ${source}: excluded by .dockerignore`);
            const sourcePath = from ? from.host(source) : path.join(REPO, source);
            const target = copy.dest.endsWith('/') ? path.join(root.host(copy.dest), path.basename(source)) : root.host(copy.dest);
            await cp(sourcePath, target, { recursive: true, filter: (file) => from !== undefined || !ignored(path.relative(REPO, file)) });
          }
          break;
        }
        case 'RUN':
          await replayRun(root, instruction, known);
          break;
        case 'USER':
        case 'EXPOSE':
        case 'ENTRYPOINT':
        case 'CMD':
        case 'VOLUME':
          break; // checked by the shape test and used below
        default:
          throw new Error(`Dockerfile line ${instruction.line}: ${instruction.keyword} is not replayed by this test`);
      }
    }
  };

  const started = Date.now();
  const buildRoot = new StageRoot(path.join(temp, 'build'));
  const runtimeRoot = new StageRoot(path.join(temp, 'runtime'));
  const stageRoots = new Map<string, Promise<StageRoot>>();
  // The build stage's `npm ci` installs the dev dependencies, as this checkout's node_modules
  // holds them: link those instead of downloading them again. Its `npm run build` really runs.
  stageRoots.set(
    'build',
    replayStage(build!, buildRoot, {
      stages: stageRoots,
      npmCi: async (args) => {
        t.ok(args.includes('--ignore-scripts'), 'the build stage skips install scripts (the `node` dev dependency would download Node)');
        await symlink(path.join(REPO, 'node_modules'), path.join(buildRoot.host('.'), 'node_modules'));
      },
    }).then(() => buildRoot),
  );
  // The runtime stage's `npm ci --omit=dev` really runs while the build stage compiles (its
  // COPY --from=build waits for that stage). It installs from this machine's npm cache, which
  // the checkout's own `npm ci` filled, so the replay needs no network; the registry is asked
  // only for what that cache lacks. The stage's `npm cache clean --force` cleans its own cache.
  const machineCache = (await run('npm', ['config', 'get', 'cache'], { cwd: REPO, env: process.env })).stdout.trim();
  await replayStage(runtime, runtimeRoot, {
    stages: stageRoots,
    npmCi: async (args) => {
      const env = { ...toolEnv, ...runtimeRoot.env, npm_config_cache: machineCache };
      const result = await run('npm', ['ci', ...args, '--prefer-offline'], { cwd: runtimeRoot.host('.'), env });
      if (result.code !== 0) throw new Error(`npm ci ${args.join(' ')} failed:\n${result.stderr}`);
    },
  });
  t.ok((await stat(buildRoot.host('dist/cli.js'))).isFile(), 'the build stage produced dist/cli.js');
  t.comment(`Dockerfile replayed in ${Math.round((Date.now() - started) / 1000)} s`);

  const app = runtimeRoot.host('.');
  const installed = await readdir(path.join(app, 'node_modules'));
  for (const runtimeDependency of ['fastify', 'pino', 'selfsigned', 'yaml', '@kubernetes']) t.ok(installed.includes(runtimeDependency), `${runtimeDependency} is installed`);
  for (const devDependency of ['typescript', 'tap', 'eslint', 'node', 'fast-check', 'typescript-eslint']) t.notOk(installed.includes(devDependency), `dev dependency ${devDependency} is not in the image`);
  t.notOk(installed.includes('.bin') && (await readdir(path.join(app, 'node_modules', '.bin'))).includes('tsc'), 'no compiler in the image');

  // The pod's view: a read-only cert dir mounted from a Secret, a writable /tmp, a read-only app.
  const certDir = path.join(temp, 'mounted-certs');
  const bundle = await generateCertificates({ serviceName: 'mesh-admission', namespace: 'mesh-system', validityDays: 365 });
  await mkdir(certDir);
  for (const [file, text] of [['ca.crt', bundle.caCert], ['tls.crt', bundle.cert], ['tls.key', bundle.key]] as const) {
    await writeFile(path.join(certDir, file), text, { mode: 0o444 });
  }
  await chmod(certDir, 0o555);
  const tmpDir = path.join(temp, 'tmp');
  await mkdir(tmpDir, { mode: 0o1777 });
  await chmod(tmpDir, 0o1777);
  await chmod(runtimeRoot.root, 0o755);
  const user = last(runtime, 'USER')!.args.split(':').map(Number) as [number, number?];
  const asRoot = process.getuid?.() === 0;
  if (!asRoot) t.comment('not running as root: the server runs as the current user instead of the image USER');
  const snapshot = async (dir: string): Promise<string[]> => (await readdir(dir, { recursive: true })).sort();
  const appBefore = await snapshot(app);

  const entrypoint = jsonArray(last(runtime, 'ENTRYPOINT')!.args, 'ENTRYPOINT');
  const cmd = jsonArray(last(runtime, 'CMD')!.args, 'CMD');
  t.equal(entrypoint[0], 'node');
  const child = spawn('env', [...UNHOOKED, process.execPath, ...entrypoint.slice(1), ...cmd, `--cert-dir=${certDir}`, '--port=0', '--probe-port=0', '--host=127.0.0.1', '--probe-host=127.0.0.1'], {
    cwd: app,
    // The image's environment plus what the chart adds (the namespace from the downward API).
    env: { PATH: '/usr/bin:/bin', HOME: '/nonexistent', TMPDIR: tmpDir, ...runtimeRoot.env, MESH_ADMISSION_NAMESPACE: 'mesh-system' },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(asRoot ? { uid: user[0], gid: user[1] ?? user[0] } : {}),
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const followed = followServeLogs(child);
  const logs = followed.lines as any[];
  const serving = await followed.serving(20_000);
  t.ok(serving.webhookPort > 0 && serving.probePort > 0, 'listening');
  if (asRoot) {
    const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
    t.match(status, new RegExp(`\\nUid:\\s+${user[0]}\\s`), `the server runs as the image user ${user[0]}, not root`);
  }
  t.match(logs.find((l) => l.msg === 'certificates ready')?.reason ?? '', /reusing/, 'the mounted certificate is used as is');

  const review = {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'docker-replay-1',
      kind: { group: '', version: 'v1', kind: 'Service' },
      resource: { group: '', version: 'v1', resource: 'services' },
      operation: 'CREATE',
      namespace: 'shop',
      object: { apiVersion: 'v1', kind: 'Service', metadata: { name: 'cart', namespace: 'shop' }, spec: { ports: [{ name: 'web', port: 8080, protocol: 'TCP' }] } },
    },
  };
  const answer = await new Promise<{ status: number; body: any }>((resolve, reject) => {
    const payload = JSON.stringify(review);
    const request = https.request(
      { host: '127.0.0.1', port: serving.webhookPort, servername: 'mesh-admission.mesh-system.svc', path: '/validate', method: 'POST', ca: bundle.caCert, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
      (response) => {
        let text = '';
        response.on('data', (d) => (text += d));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) }));
      },
    );
    request.on('error', reject);
    request.end(payload);
  });
  t.equal(answer.status, 200);
  t.equal(answer.body.response.uid, 'docker-replay-1', 'the uid is echoed');
  t.equal(answer.body.response.allowed, false, 'the bad Service is denied');
  t.match(answer.body.response.status.message, /spec\.ports\[0\]/);

  const probe = (probePath: string) =>
    new Promise<number>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: serving.probePort, path: probePath }, (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      }).on('error', reject);
    });
  t.equal(await probe('/healthz'), 200, 'liveness answers');
  t.equal(await probe('/readyz'), 200, 'readiness answers');

  child.kill('SIGTERM');
  t.equal(await exited, 0, 'SIGTERM: drained and exited 0');
  t.same(await snapshot(app), appBefore, 'nothing was written into the application folder');
  t.same(await snapshot(certDir), ['ca.crt', 'tls.crt', 'tls.key'], 'nothing was written into the cert dir');
  t.comment(`whole replay took ${Math.round((Date.now() - started) / 1000)} s`);
});
