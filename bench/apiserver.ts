/**
 * Latency the webhook adds to `create` through a real kube-apiserver (the e2e harness: real
 * etcd + kube-apiserver on loopback).
 *
 * Three namespaces, created one Service at a time in strict rotation so that load from other
 * processes on the machine hits every mode alike:
 *   - `bench-none`: no webhook is called (the baseline);
 *   - `bench-webhook`: mesh-admission (production build) is called, mutating and validating;
 *   - `bench-echo`: the bare Fastify echo is called the same way, i.e. the cost of calling any
 *     webhook from this API server on this machine (TLS, HTTP/2, AdmissionReview encoding);
 *   - `bench-policies`: no webhook; the ValidatingAdmissionPolicies of `mesh-admission policies`
 *     judge the Service inside the API server (they rename nothing, so every Service created
 *     there already has prefixed ports).
 * Both webhook configurations are registered for the whole run and pick their namespace with a
 * namespaceSelector (kept with the generated system-namespace exclusions). Registration goes
 * through the API (no kubectl processes); the timed creates start once a dry-run create shows
 * that the API server calls mesh-admission. Half of the Services need a port renamed (patch),
 * half are already fine; all are allowed.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  KubeConfig,
  type V1LabelSelector,
  type V1MutatingWebhookConfiguration,
  type V1Service,
  type V1ServicePort,
  type V1ValidatingAdmissionPolicy,
  type V1ValidatingAdmissionPolicyBinding,
  type V1ValidatingWebhookConfiguration,
} from '@kubernetes/client-node';
import { webhookConfigurations } from '../src/webhook-config.ts';
import { validatingPolicies } from '../src/cel/validating-policies.ts';
import { buildConfig } from '../src/config.ts';
import { findBinaries, startControlPlane, type ControlPlane } from '../test/e2e/control-plane.ts';
import { FIXABLE_PORTS, GOOD_PORTS, serviceObject } from './fixtures.ts';
import { percentile } from './load.ts';
import { freePort, sleep, spawnEcho, spawnWebhook, waitReady, type Child } from './processes.ts';

export type Mode = 'none' | 'webhook' | 'echo' | 'policies';
const MODES: readonly Mode[] = ['none', 'webhook', 'echo', 'policies'];
const MODE_LABEL = 'mesh-admission-bench';

export interface ModeStats {
  readonly median: number;
  readonly p99: number;
}

export interface ApiServerResult {
  readonly skipped?: string;
  readonly version?: string;
  readonly perMode?: number;
  /** Milliseconds per create. */
  readonly stats?: Record<Mode, ModeStats>;
  /** Median added to a create by mesh-admission, by the echo, and by the admission policies. */
  readonly addedByWebhook?: number;
  readonly addedByEcho?: number;
  readonly addedByPolicies?: number;
  /** Medians by mode for Services that mesh-admission leaves alone, and for those it patches. */
  readonly bySubset?: Record<'fine' | 'renamed', Record<Mode, number>>;
}

/** What kubectl sends for `kubectl apply` of a new Service: the manifest plus the last-applied annotation. */
function serviceBody(name: string, namespace: string, needsMutation: boolean): V1Service {
  const full = serviceObject({ name, namespace, ports: needsMutation ? FIXABLE_PORTS : GOOD_PORTS }) as {
    metadata: Record<string, unknown>;
    spec: Record<string, unknown>;
  };
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace, labels: full.metadata['labels'] as Record<string, string>, annotations: full.metadata['annotations'] as Record<string, string> },
    spec: { type: 'ClusterIP', selector: full.spec['selector'] as Record<string, string>, ports: full.spec['ports'] as V1ServicePort[] },
  };
}

/** Both configurations for a webhook at `url`, limited to the namespace of `mode`. */
function configurationsFor(mode: Mode, url: string, caPem: string): [V1ValidatingWebhookConfiguration, V1MutatingWebhookConfiguration] {
  const configs = webhookConfigurations({ url, caPem, name: `mesh-admission-bench-${mode}`, failurePolicy: 'Fail', timeoutSeconds: 5, excludedNamespaces: [] }) as [
    V1ValidatingWebhookConfiguration,
    V1MutatingWebhookConfiguration,
  ];
  for (const config of configs) {
    for (const webhook of config.webhooks ?? []) {
      const selector: V1LabelSelector = webhook.namespaceSelector ?? {};
      webhook.namespaceSelector = { ...selector, matchLabels: { ...selector.matchLabels, [MODE_LABEL]: mode } };
    }
  }
  return configs;
}

function medians(samples: Record<Mode, number[]>): Record<Mode, number> {
  return Object.fromEntries(MODES.map((mode) => [mode, percentile(Float64Array.from(samples[mode]).sort(), 50)])) as Record<Mode, number>;
}

export async function runApiServer(options: { certDir: string; perMode?: number; log?: (line: string) => void }): Promise<ApiServerResult> {
  const log = options.log ?? (() => {});
  const perMode = options.perMode ?? 300;
  // Never start a 35-minute Go build from a benchmark: use the cached binaries or skip.
  process.env['E2E_BUILD'] ??= '0';
  const found = await findBinaries({ log });
  if (!found.binDir) return { skipped: `kube-apiserver/etcd unavailable (${found.reason ?? 'unknown'}); run scripts/envtest-binaries.sh once` };

  let cp: ControlPlane | undefined;
  let webhook: Child | undefined;
  let echo: Child | undefined;
  try {
    // A /16 service range: 900+ ClusterIPs are allocated, the harness's /24 holds 254.
    cp = await startControlPlane({ binDir: found.binDir, log, apiserverArgs: ['--service-cluster-ip-range=10.0.0.0/16'] });
    const [port, probePort] = [await freePort(), await freePort()];
    webhook = spawnWebhook({ certDir: options.certDir, port, probePort });
    await waitReady(probePort, webhook, performance.now());
    const echoServer = await spawnEcho(options.certDir);
    echo = echoServer;

    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    const core = kc.makeApiClient(CoreV1Api);
    const admission = kc.makeApiClient(AdmissionregistrationV1Api);
    for (const mode of MODES) {
      await core.createNamespace({ body: { metadata: { name: `bench-${mode}`, labels: { [MODE_LABEL]: mode } } } });
    }
    const caPem = await readFile(path.join(options.certDir, 'ca.crt'), 'utf8');
    // The echo first: once the API server calls mesh-admission, it has seen the echo's configurations too.
    for (const [mode, url] of [['echo', `https://127.0.0.1:${echoServer.port}`], ['webhook', `https://127.0.0.1:${port}`]] as const) {
      const [validating, mutating] = configurationsFor(mode, url, caPem);
      await admission.createValidatingWebhookConfiguration({ body: validating });
      await admission.createMutatingWebhookConfiguration({ body: mutating });
    }
    // The policies judge only their namespace.
    const policyObjects = validatingPolicies(buildConfig({ file: { path: 'bench', text: 'serviceName: mesh-admission-bench\n' } }));
    for (const object of policyObjects) {
      if (object['kind'] === 'ValidatingAdmissionPolicy') await admission.createValidatingAdmissionPolicy({ body: object as unknown as V1ValidatingAdmissionPolicy });
      else {
        const binding = object as unknown as V1ValidatingAdmissionPolicyBinding;
        binding.spec!.matchResources = { namespaceSelector: { matchLabels: { [MODE_LABEL]: 'policies' } } };
        await admission.createValidatingAdmissionPolicyBinding({ body: binding });
      }
    }
    // Active when the mutating webhook renames `web` and the validating one denies `debug` (no
    // hint), and the policies deny `web`.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const probe = await core.createNamespacedService({
        namespace: 'bench-webhook',
        dryRun: 'All',
        body: { metadata: { name: 'probe' }, spec: { ports: [{ name: 'web', port: 80 }] } },
      });
      const denied = await core
        .createNamespacedService({ namespace: 'bench-webhook', dryRun: 'All', body: { metadata: { name: 'probe' }, spec: { ports: [{ name: 'debug', port: 5005 }] } } })
        .then(() => false, () => true);
      const deniedByPolicies = await core
        .createNamespacedService({ namespace: 'bench-policies', dryRun: 'All', body: { metadata: { name: 'probe' }, spec: { ports: [{ name: 'web', port: 80 }] } } })
        .then(() => false, () => true);
      if (probe.spec?.ports?.[0]?.name === 'http-web' && denied && deniedByPolicies) break;
      if (Date.now() > deadline) throw new Error('the API server did not start calling the webhook within 15 s');
      await sleep(20);
    }

    let sequence = 0;
    const subsets: Record<'fine' | 'renamed', Record<Mode, number[]>> = {
      fine: { none: [], webhook: [], echo: [], policies: [] },
      renamed: { none: [], webhook: [], echo: [], policies: [] },
    };
    const create = async (mode: Mode): Promise<number> => {
      sequence += 1;
      const namespace = `bench-${mode}`;
      const renamed = mode !== 'policies' && Math.floor(sequence / MODES.length) % 2 === 0;
      const body = serviceBody(`svc-${sequence}`, namespace, renamed);
      const t0 = performance.now();
      await core.createNamespacedService({ namespace, body, fieldManager: 'kubectl-client-side-apply' });
      const elapsed = performance.now() - t0;
      subsets[renamed ? 'renamed' : 'fine'][mode].push(elapsed);
      return elapsed;
    };
    // Warm-up: connections from the API server to both webhooks, caches, JIT.
    for (let i = 0; i < 20; i++) for (const mode of MODES) await create(mode);
    for (const subset of Object.values(subsets)) for (const mode of MODES) subset[mode].length = 0;
    const samples: Record<Mode, number[]> = { none: [], webhook: [], echo: [], policies: [] };
    for (let i = 0; i < perMode; i++) {
      // Rotate the order too, so no mode always follows the same one.
      for (let j = 0; j < MODES.length; j++) {
        const mode = MODES[(i + j) % MODES.length] as Mode;
        samples[mode].push(await create(mode));
      }
      if ((i + 1) % 100 === 0) log(`${i + 1}/${perMode} creates per mode`);
    }
    const stats = Object.fromEntries(
      MODES.map((mode) => {
        const sorted = Float64Array.from(samples[mode]).sort();
        return [mode, { median: percentile(sorted, 50), p99: percentile(sorted, 99) }];
      }),
    ) as Record<Mode, ModeStats>;
    return {
      version: cp.version,
      perMode,
      stats,
      addedByWebhook: stats.webhook.median - stats.none.median,
      addedByEcho: stats.echo.median - stats.none.median,
      addedByPolicies: stats.policies.median - stats.none.median,
      bySubset: {
        fine: medians(subsets.fine),
        renamed: medians(subsets.renamed),
      },
    };
  } finally {
    await echo?.stop();
    await webhook?.stop();
    await cp?.stop();
  }
}
