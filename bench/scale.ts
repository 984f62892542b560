/**
 * `npm run bench:scale`: how `audit` and `serve --traffic-checks` grow with the cluster.
 *
 * Starts the e2e control plane (real etcd + kube-apiserver on loopback), installs the Istio
 * CRD stand-ins, and fills the cluster step by step up to each count of SCALE_COUNTS (default
 * 1000,10000,20000) headless Services spread over 100 namespaces (2 ports each, the labels and
 * kubectl's last-applied annotation a real `kubectl apply` leaves; two in five have a port
 * Istio cannot classify, so audit has findings to report), plus one Gateway and one
 * ServiceEntry per 100 Services and one VirtualService per 10. At each step it runs, with the
 * image's runtime settings (NODE_ENV, NODE_OPTIONS and MALLOC_ARENA_MAX from the Dockerfile):
 *   - `node dist/cli.js audit -o json`: wall time, peak RSS (the kernel's high-water mark), findings;
 *   - `node dist/cli.js serve --traffic-checks true`: time from spawn to /readyz 200, RSS once
 *     synced (after SCALE_SETTLE_MS, default 3000) and its peak.
 * First it measures the floor under both: the peak RSS of a bare Node process, of one that only
 * loads @kubernetes/client-node, and of `serve` without the traffic checks.
 * SCALE_NODE_ARGS adds Node flags to both (e.g. --max-old-space-size=64).
 * Markdown on stdout, progress on stderr. Bounded: stops itself (and the control plane) after
 * SCALE_DEADLINE_S seconds (default 1500); the npm script's `timeout` backs that up.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { CoreV1Api, CustomObjectsApi, KubeConfig, type V1Service } from '@kubernetes/client-node';
import { findBinaries, startControlPlane, type ControlPlane } from '../test/e2e/control-plane.ts';
import { ISTIO_CRD_NAMES, istioCrdsManifest } from '../test/e2e/istio-crds.ts';
import { slimObject } from '../src/kube/slim-list-watch.ts';
import { toTrafficService } from '../src/policies/traffic-world.ts';
import { FIXABLE_PORTS, GOOD_PORTS, serviceObject } from './fixtures.ts';
import { DIST_CLI, REPO_ROOT, freePort, imageEnvironment, memoryOf, sleep, spawnWebhook, waitReady } from './processes.ts';

const COUNTS = (process.env['SCALE_COUNTS'] ?? '1000,10000,20000').split(',').map(Number).filter((n) => n > 0).sort((a, b) => a - b);
const NAMESPACES = 100;
const DEADLINE_S = Number(process.env['SCALE_DEADLINE_S'] ?? 1500);
const SETTLE_MS = Number(process.env['SCALE_SETTLE_MS'] ?? 3000);
/** Parallel creates: enough to keep the API server busy without queueing on its in-flight limit. */
const CONCURRENCY = 48;
/** The container image's environment (Dockerfile), plus SCALE_NODE_ARGS (space-separated) to try other flags. */
const IMAGE_NODE_ARGS = (process.env['SCALE_NODE_ARGS'] ?? '').split(' ').filter(Boolean);
const IMAGE_ENV = imageEnvironment();
const GROUP = 'networking.istio.io';
const MIB = 1024 * 1024;

const progress = (line: string) => process.stderr.write(`[bench:scale] ${line}\n`);

interface Step {
  readonly services: number;
  readonly gateways: number;
  readonly virtualServices: number;
  readonly serviceEntries: number;
  readonly createSeconds: number;
  readonly audit: { readonly seconds: number; readonly peakRss: number; readonly findings: number; readonly exitCode: number | null };
  readonly serve: { readonly readyMs: number; readonly rss: number; readonly peakRss: number; readonly synced: string };
}

/** Runs `task` over `items` with at most `limit` in flight. */
async function inParallel<T>(items: readonly T[], limit: number, task: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
const namespaceOf = (i: number) => `team-${String(i % NAMESPACES).padStart(3, '0')}`;
const serviceName = (i: number) => `svc-${i}`;

/** A Service as `kubectl apply` creates it: headless, 2 ports, labels, the last-applied annotation. */
function serviceBody(i: number): V1Service {
  const name = serviceName(i);
  const namespace = namespaceOf(i);
  const ports = (i % 5 < 2 ? FIXABLE_PORTS : GOOD_PORTS).slice(0, 2);
  const full = serviceObject({ name, namespace, ports }) as { metadata: Record<string, unknown>; spec: Record<string, unknown> };
  const manifest = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace, labels: full.metadata['labels'], annotations: full.metadata['annotations'] },
    spec: { clusterIP: 'None', selector: full.spec['selector'], ports: full.spec['ports'] },
  };
  const annotations = { ...(manifest.metadata.annotations as Record<string, string>), 'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify(manifest) };
  return { ...manifest, metadata: { ...manifest.metadata, annotations } } as V1Service;
}

function gatewayBody(i: number): Record<string, unknown> {
  return {
    apiVersion: `${GROUP}/v1`,
    kind: 'Gateway',
    metadata: { name: `gw-${i}`, namespace: namespaceOf(i) },
    spec: {
      selector: { istio: 'ingressgateway' },
      servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: [`app-${i}.example.com`] }],
    },
  };
}

function virtualServiceBody(i: number): Record<string, unknown> {
  const namespace = namespaceOf(i);
  return {
    apiVersion: `${GROUP}/v1`,
    kind: 'VirtualService',
    metadata: { name: `vs-${i}`, namespace },
    spec: {
      hosts: [`${serviceName(i)}.${namespace}.svc.cluster.local`],
      http: [{ route: [{ destination: { host: serviceName(i), port: { number: 80 } } }] }],
    },
  };
}

function serviceEntryBody(i: number): Record<string, unknown> {
  return {
    apiVersion: `${GROUP}/v1`,
    kind: 'ServiceEntry',
    metadata: { name: `se-${i}`, namespace: namespaceOf(i) },
    spec: { hosts: [`api-${i}.partner.example`], location: 'MESH_EXTERNAL', ports: [{ number: 443, name: 'https', protocol: 'TLS' }], resolution: 'DNS' },
  };
}

/** Creates objects [from, to) of each kind the step needs, in parallel. */
async function fillTo(kc: KubeConfig, from: number, to: number): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const createCustom = (plural: string, body: Record<string, unknown>) =>
    custom.createNamespacedCustomObject({ group: GROUP, version: 'v1', namespace: (body['metadata'] as { namespace: string }).namespace, plural, body });
  const jobs: (() => Promise<unknown>)[] = [
    ...range(from, to).map((i) => () => core.createNamespacedService({ namespace: namespaceOf(i), body: serviceBody(i), fieldManager: 'kubectl-client-side-apply' })),
    ...range(Math.ceil(from / 100), Math.ceil(to / 100)).map((i) => () => createCustom('gateways', gatewayBody(i))),
    ...range(Math.ceil(from / 100), Math.ceil(to / 100)).map((i) => () => createCustom('serviceentries', serviceEntryBody(i))),
    ...range(Math.ceil(from / 10), Math.ceil(to / 10)).map((i) => () => createCustom('virtualservices', virtualServiceBody(i))),
  ];
  let done = 0;
  await inParallel(jobs, CONCURRENCY, async (job) => {
    await job();
    done += 1;
    if (done % 5000 === 0) progress(`  ${done}/${jobs.length} objects created`);
  });
}

/** `node dist/cli.js audit -o json` with the image's flags; peak RSS from GNU time (wait4's ru_maxrss). */
async function measureAudit(kubeconfigPath: string, scratch: string): Promise<Step['audit']> {
  const timeFile = path.join(scratch, 'audit.time');
  const started = performance.now();
  const { stdout, exitCode } = await new Promise<{ stdout: string; exitCode: number | null }>((resolve, reject) => {
    const child = execFile(
      '/usr/bin/time',
      ['-f', '%M', '-o', timeFile, process.execPath, ...IMAGE_NODE_ARGS, DIST_CLI, 'audit', '-o', 'json'],
      { cwd: REPO_ROOT, env: { ...process.env, ...IMAGE_ENV, KUBECONFIG: kubeconfigPath }, maxBuffer: 512 * MIB, timeout: 300_000 },
      (error, out, err) => {
        const code = child.exitCode;
        // Exit 1 means "error-level findings exist": the expected outcome here.
        if (error && code !== 1) reject(new Error(`audit failed (${code ?? error.message}): ${err.slice(0, 500)}`));
        else resolve({ stdout: out, exitCode: code });
      },
    );
  });
  const seconds = (performance.now() - started) / 1000;
  const peakKib = Number((await readFile(timeFile, 'utf8')).trim().split('\n').at(-1));
  const findings = (JSON.parse(stdout) as { violations: unknown[] }).violations.length;
  return { seconds, peakRss: peakKib * 1024, findings, exitCode };
}

/** `serve --traffic-checks true` (or `trafficChecks` false): time from spawn to ready, then RSS once synced. */
async function measureServe(kubeconfigPath: string, scratch: string, trafficChecks = true): Promise<Step['serve']> {
  const [port, probePort] = [await freePort(), await freePort()];
  const logFile = path.join(scratch, `serve-${Date.now()}.log`);
  process.env['KUBECONFIG'] = kubeconfigPath;
  Object.assign(process.env, IMAGE_ENV);
  const started = performance.now();
  const child = spawnWebhook({ certDir: path.join(scratch, 'certs'), port, probePort, logFile, nodeArgs: IMAGE_NODE_ARGS, args: ['--traffic-checks', String(trafficChecks)] });
  try {
    const readyMs = await waitReady(probePort, child, started, { timeoutMs: 120_000, intervalMs: 20 });
    await sleep(SETTLE_MS);
    const memory = memoryOf(child.pid);
    if (!memory) throw new Error('serve exited after it became ready');
    const log = await readFile(logFile, 'utf8');
    const synced = log.split('\n').find((line) => line.includes('"traffic caches synced"')) ?? '';
    return { readyMs, rss: memory.rss, peakRss: memory.hwm, synced };
  } finally {
    await child.stop();
  }
}

/** Peak RSS of `node --input-type=module -e CODE` with the image's settings. */
async function peakRssOf(code: string, scratch: string): Promise<number> {
  const timeFile = path.join(scratch, 'floor.time');
  await new Promise<void>((resolve, reject) => {
    execFile('/usr/bin/time', ['-f', '%M', '-o', timeFile, process.execPath, ...IMAGE_NODE_ARGS, '--input-type=module', '-e', code], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...IMAGE_ENV },
      timeout: 60_000,
    }, (error) => (error ? reject(error) : resolve()));
  });
  return Number((await readFile(timeFile, 'utf8')).trim().split('\n').at(-1)) * 1024;
}

/**
 * What both commands pay before reading a single object: a bare Node process, one that only
 * loads @kubernetes/client-node, and `serve` without the traffic checks (no client at all).
 */
async function measureFloor(kubeconfigPath: string, scratch: string): Promise<{ bareNode: number; kubernetesClient: number; serveWithoutTrafficChecks: number }> {
  const bareNode = await peakRssOf('', scratch);
  const kubernetesClient = await peakRssOf("await import('@kubernetes/client-node')", scratch);
  const serveWithoutTrafficChecks = (await measureServe(kubeconfigPath, scratch, false)).peakRss;
  return { bareNode, kubernetesClient, serveWithoutTrafficChecks };
}

/**
 * Heap bytes per Service of the webhook's Service cache, measured in this process: the slim
 * objects of `count` Services of the benchmark's shape (parsed from JSON, as they arrive),
 * keyed by namespace and name as the cache keys them, heap used after a full GC minus before.
 */
function indexBytesPerService(count: number): number {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  gc();
  const before = process.memoryUsage().heapUsed;
  const index = new Map<string, Map<string, unknown>>();
  for (let i = 0; i < count; i++) {
    const slim = slimObject(JSON.parse(JSON.stringify(serviceBody(i))) as V1Service, toTrafficService);
    const namespace = index.get(namespaceOf(i)) ?? new Map<string, unknown>();
    index.set(namespaceOf(i), namespace.set(serviceName(i), slim));
  }
  gc();
  const bytes = (process.memoryUsage().heapUsed - before) / count;
  index.clear();
  return bytes;
}

function table(steps: readonly Step[]): string {
  const mib = (bytes: number) => (bytes / MIB).toFixed(1);
  return [
    '| Services | Gateways / ServiceEntries / VirtualServices | audit time | audit peak RSS | findings | serve ready | serve RSS after sync | serve peak RSS |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...steps.map((s) =>
      `| ${s.services.toLocaleString('en')} | ${s.gateways} / ${s.serviceEntries} / ${s.virtualServices} | ${s.audit.seconds.toFixed(2)} s | ${mib(s.audit.peakRss)} MiB | ${s.audit.findings} | ${(s.serve.readyMs / 1000).toFixed(2)} s | ${mib(s.serve.rss)} MiB | ${mib(s.serve.peakRss)} MiB |`,
    ),
  ].join('\n');
}

async function main(): Promise<void> {
  await stat(DIST_CLI).catch(() => {
    throw new Error(`${DIST_CLI} is missing: run \`npm run build\` first (npm run bench:scale does)`);
  });
  await stat('/usr/bin/time').catch(() => {
    throw new Error('/usr/bin/time (GNU time, Debian package "time") is needed to read the peak RSS of audit');
  });
  process.env['E2E_BUILD'] ??= '0';
  const found = await findBinaries({ log: progress });
  if (!found.binDir) throw new Error(`kube-apiserver/etcd unavailable (${found.reason ?? 'unknown'}); run scripts/envtest-binaries.sh once`);

  const scratch = await mkdtemp(path.join(os.tmpdir(), 'mesh-admission-scale-'));
  let cp: ControlPlane | undefined;
  const deadline = setTimeout(() => {
    progress(`deadline of ${DEADLINE_S} s reached; stopping`);
    void (cp?.stop() ?? Promise.resolve()).finally(() => process.exit(124));
  }, DEADLINE_S * 1000);
  deadline.unref();
  try {
    // Headless Services take no ClusterIP, but the default /24 range is widened anyway so the
    // benchmark never fails for want of addresses.
    cp = await startControlPlane({ binDir: found.binDir, log: progress, apiserverArgs: ['--service-cluster-ip-range=10.0.0.0/16'] });
    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    await cp.kubectl(['apply', '-f', '-'], { input: istioCrdsManifest() });
    await cp.kubectl(['wait', '--for=condition=Established', '--timeout=60s', ...ISTIO_CRD_NAMES]);
    const core = kc.makeApiClient(CoreV1Api);
    await inParallel(range(0, NAMESPACES), 16, (i) => core.createNamespace({ body: { metadata: { name: namespaceOf(i) } } }));
    progress(`kube-apiserver ${cp.version} ready; ${NAMESPACES} namespaces`);

    const floor = await measureFloor(cp.kubeconfigPath, scratch);
    progress(`floor: bare node ${(floor.bareNode / MIB).toFixed(1)} MiB, with @kubernetes/client-node loaded ${(floor.kubernetesClient / MIB).toFixed(1)} MiB, serve without traffic checks ${(floor.serveWithoutTrafficChecks / MIB).toFixed(1)} MiB`);
    const steps: Step[] = [];
    let created = 0;
    for (const count of COUNTS) {
      const t0 = performance.now();
      await fillTo(kc, created, count);
      const createSeconds = (performance.now() - t0) / 1000;
      progress(`${count} Services in the cluster (${(count - created)} created in ${createSeconds.toFixed(1)} s)`);
      created = count;
      const audit = await measureAudit(cp.kubeconfigPath, scratch);
      progress(`  audit: ${audit.seconds.toFixed(2)} s, peak RSS ${(audit.peakRss / MIB).toFixed(1)} MiB, ${audit.findings} findings`);
      const serve = await measureServe(cp.kubeconfigPath, scratch);
      progress(`  serve: ready after ${(serve.readyMs / 1000).toFixed(2)} s, RSS ${(serve.rss / MIB).toFixed(1)} MiB (peak ${(serve.peakRss / MIB).toFixed(1)} MiB)`);
      progress(`  ${serve.synced}`);
      steps.push({
        services: count,
        gateways: Math.ceil(count / 100),
        serviceEntries: Math.ceil(count / 100),
        virtualServices: Math.ceil(count / 10),
        createSeconds,
        audit,
        serve,
      });
    }
    process.stdout.write(
      `### Scale: audit and serve --traffic-checks against kube-apiserver ${cp.version}\n\n` +
        `Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'}, load average at end ${os.loadavg().map((l) => l.toFixed(2)).join(' / ')}. ` +
        `Node ${process.version}, NODE_OPTIONS=${IMAGE_ENV.NODE_OPTIONS ?? ''} ${IMAGE_NODE_ARGS.join(' ')}, NODE_ENV=${IMAGE_ENV.NODE_ENV ?? ''}, MALLOC_ARENA_MAX=${IMAGE_ENV.MALLOC_ARENA_MAX ?? ''}; ${NAMESPACES} namespaces; RSS after sync read ${SETTLE_MS} ms after /readyz.\n\n` +
        `${table(steps)}\n\n` +
        `Before any object is read (peak RSS, same settings): a bare Node process ${(floor.bareNode / MIB).toFixed(1)} MiB; one that only loads @kubernetes/client-node ${(floor.kubernetesClient / MIB).toFixed(1)} MiB; ` +
        `\`serve\` without the traffic checks (which never loads the client) ${(floor.serveWithoutTrafficChecks / MIB).toFixed(1)} MiB.\n\n` +
        `The Service cache's own cost: ${Math.round(indexBytesPerService(COUNTS.at(-1) ?? 20_000))} bytes of heap per Service (slim objects of this shape, after a full GC).\n`,
    );
  } finally {
    clearTimeout(deadline);
    await cp?.stop();
    await rm(scratch, { recursive: true, force: true });
  }
}

await main();
