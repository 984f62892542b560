/**
 * Latency the webhook adds to `create` through a real kube-apiserver (the e2e harness: real
 * etcd + kube-apiserver on loopback). 300 Services are created with the webhook registered and
 * 300 without, one at a time, in alternating blocks (without, with, without, …) so that load
 * from other processes on the machine hits both sides alike. Registration is done through the
 * API (no kubectl processes) and a block starts only once a dry-run create shows that the API
 * server really calls (or no longer calls) the webhook. Half of the Services need a port
 * renamed (mutation + patch), half are already fine.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  KubeConfig,
  type V1MutatingWebhookConfiguration,
  type V1Service,
  type V1ServicePort,
  type V1ValidatingWebhookConfiguration,
} from '@kubernetes/client-node';
import { webhookConfigurations } from '../src/webhook-config.ts';
import { findBinaries, startControlPlane, type ControlPlane } from '../test/e2e/control-plane.ts';
import { FIXABLE_PORTS, GOOD_PORTS, serviceObject } from './fixtures.ts';
import { percentile } from './load.ts';
import { freePort, sleep, spawnWebhook, waitReady, type Child } from './processes.ts';

export interface ApiServerResult {
  readonly skipped?: string;
  readonly version?: string;
  readonly perMode?: number;
  /** Milliseconds per create. */
  readonly without?: { median: number; p99: number };
  readonly with?: { median: number; p99: number };
  readonly addedMedian?: number;
  /** Median of the per-block-pair differences, a check on drift. */
  readonly addedPairs?: number[];
  readonly startupMs?: number;
}

const NAMESPACE = 'bench';
const CONFIG_NAME = 'mesh-admission-bench';

/** What kubectl sends for `kubectl apply` of a new Service: the manifest plus the last-applied annotation. */
function serviceBody(name: string, needsMutation: boolean): V1Service {
  const full = serviceObject({ name, namespace: NAMESPACE, ports: needsMutation ? FIXABLE_PORTS : GOOD_PORTS }) as {
    metadata: Record<string, unknown>;
    spec: Record<string, unknown>;
  };
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: NAMESPACE, labels: full.metadata['labels'] as Record<string, string>, annotations: full.metadata['annotations'] as Record<string, string> },
    spec: { type: 'ClusterIP', selector: full.spec['selector'] as Record<string, string>, ports: full.spec['ports'] as V1ServicePort[] },
  };
}

export async function runApiServer(options: { certDir: string; perMode?: number; blocks?: number; log?: (line: string) => void }): Promise<ApiServerResult> {
  const log = options.log ?? (() => {});
  const perMode = options.perMode ?? 300;
  const blocksPerMode = options.blocks ?? 3;
  const blockSize = Math.ceil(perMode / blocksPerMode);
  // Never start a 35-minute Go build from a benchmark: use the cached binaries or skip.
  process.env['E2E_BUILD'] ??= '0';
  const found = await findBinaries({ log });
  if (!found.binDir) return { skipped: `kube-apiserver/etcd unavailable (${found.reason ?? 'unknown'}); run scripts/envtest-binaries.sh once` };

  let cp: ControlPlane | undefined;
  let webhook: Child | undefined;
  try {
    // A /16 service range: 600+ ClusterIPs are allocated, the harness's /24 holds 254.
    cp = await startControlPlane({ binDir: found.binDir, log, apiserverArgs: ['--service-cluster-ip-range=10.0.0.0/16'] });
    const [port, probePort] = [await freePort(), await freePort()];
    const started = performance.now();
    webhook = spawnWebhook({ certDir: options.certDir, port, probePort });
    const startupMs = await waitReady(probePort, webhook, started);

    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    const core = kc.makeApiClient(CoreV1Api);
    const admission = kc.makeApiClient(AdmissionregistrationV1Api);
    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });

    const caPem = await readFile(path.join(options.certDir, 'ca.crt'), 'utf8');
    const [validating, mutating] = webhookConfigurations({
      url: `https://127.0.0.1:${port}`,
      caPem,
      name: CONFIG_NAME,
      failurePolicy: 'Fail',
      timeoutSeconds: 5,
      excludedNamespaces: [],
    }) as [V1ValidatingWebhookConfiguration, V1MutatingWebhookConfiguration];

    /** Whether the API server currently sends Services to the webhook: a dry-run create of a port it would rename. */
    const webhookActive = async (): Promise<boolean> => {
      const probe = await core.createNamespacedService({ namespace: NAMESPACE, dryRun: 'All', body: { metadata: { name: 'probe' }, spec: { ports: [{ name: 'web', port: 80 }] } } });
      return probe.spec?.ports?.[0]?.name === 'http-web';
    };
    const waitActive = async (wanted: boolean): Promise<void> => {
      const deadline = Date.now() + 15_000;
      while ((await webhookActive()) !== wanted) {
        if (Date.now() > deadline) throw new Error(`the API server did not ${wanted ? 'start' : 'stop'} calling the webhook within 15 s`);
        await sleep(20);
      }
    };
    const setRegistered = async (registered: boolean): Promise<void> => {
      if (registered) {
        await admission.createValidatingWebhookConfiguration({ body: validating });
        await admission.createMutatingWebhookConfiguration({ body: mutating });
      } else {
        await admission.deleteValidatingWebhookConfiguration({ name: CONFIG_NAME });
        await admission.deleteMutatingWebhookConfiguration({ name: CONFIG_NAME });
      }
      await waitActive(registered);
    };

    let sequence = 0;
    const create = async (): Promise<number> => {
      sequence += 1;
      const body = serviceBody(`svc-${sequence}`, sequence % 2 === 0);
      const t0 = performance.now();
      await core.createNamespacedService({ namespace: NAMESPACE, body, fieldManager: 'kubectl-client-side-apply' });
      return performance.now() - t0;
    };

    const samples: Record<'with' | 'without', number[]> = { with: [], without: [] };
    const blockMedians: Record<'with' | 'without', number[]> = { with: [], without: [] };
    let registered = false;
    for (let block = 0; block < blocksPerMode * 2; block++) {
      const mode = block % 2 === 0 ? 'without' : 'with';
      if ((mode === 'with') !== registered) {
        registered = mode === 'with';
        await setRegistered(registered);
      }
      for (let i = 0; i < 20; i++) await create(); // warm-up: connections, caches, JIT
      const times: number[] = [];
      for (let i = 0; i < blockSize && samples[mode].length < perMode; i++) times.push(await create());
      samples[mode].push(...times);
      blockMedians[mode].push(percentile(Float64Array.from(times).sort(), 50));
      log(`block ${block + 1}: ${mode} webhook, median ${percentile(Float64Array.from(times).sort(), 50).toFixed(2)} ms`);
    }
    const stats = (values: number[]) => {
      const sorted = Float64Array.from(values).sort();
      return { median: percentile(sorted, 50), p99: percentile(sorted, 99) };
    };
    const withStats = stats(samples.with);
    const withoutStats = stats(samples.without);
    return {
      version: cp.version,
      perMode,
      with: withStats,
      without: withoutStats,
      addedMedian: withStats.median - withoutStats.median,
      addedPairs: blockMedians.with.map((value, i) => value - (blockMedians.without[i] ?? NaN)),
      startupMs,
    };
  } finally {
    await webhook?.stop();
    await cp?.stop();
  }
}
