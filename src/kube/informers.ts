/**
 * The webhook's view of the cluster for the Gateway and VirtualService checks: informer
 * caches (list + watch, @kubernetes/client-node makeInformer) of Services, Gateways and
 * ServiceEntries, read through the TrafficWorld interface. An admission never calls the API.
 *
 * - Istio's CRDs may be absent: a 404 means "none exist" (rechecked now and then), not an
 *   outage. The newest served version (v1, v1beta1, v1alpha3) is used.
 * - A failed list or a broken watch marks the world unavailable (the policies then answer
 *   with one warning instead of guessing from stale data) and is retried with backoff,
 *   re-listing from scratch.
 * - Readiness waits for the first sync, but only up to `syncTimeoutMs`: after that the
 *   webhook serves in degraded mode rather than never becoming ready.
 *
 * Pods are not cached: which Services serve a Gateway is approximated from selectors (see
 * TrafficWorld.servicesServingGateway).
 */
import { CoreV1Api, CustomObjectsApi, makeInformer, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '../observability/logger.ts';
import type { KubeObject } from '../policies/types.ts';
import {
  ISTIO_NETWORKING_GROUP,
  serviceEntriesCover,
  serviceServesGateway,
  toTrafficService,
  toTrafficServiceEntry,
  unavailableWorld,
  type TrafficService,
  type TrafficServiceEntry,
  type TrafficWorld,
} from '../policies/traffic-world.ts';
import { describeError, ISTIO_RESOURCES, LIST_TIMEOUT_MS, servedIstioVersion, withTimeout, type IstioResource } from './istio-resources.ts';

export interface TrafficCacheOptions {
  readonly kubeConfig: KubeConfig;
  readonly logger: Logger;
  /** How long readiness waits for the first sync before serving degraded (default 30 s). */
  readonly syncTimeoutMs?: number;
  /** First retry delay after a failure; doubles up to retryMaxMs (defaults 1 s, 30 s). */
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
  /** How often to look again for absent Istio CRDs (default 60 s). */
  readonly absentRecheckMs?: number;
}

export interface TrafficCaches {
  /** Reads the caches at call time; `available` follows their state. */
  readonly world: TrafficWorld;
  /** For /readyz: undefined once synced, or once the sync timeout has passed (degraded). */
  notReadyReason(): string | undefined;
  /** Resolves true when every cache has synced, false when the timeout passed first. */
  waitForSync(timeoutMs?: number): Promise<boolean>;
  stop(): Promise<void>;
}

/**
 * `recovering`: the watch broke after a sync; the last data is still served while one
 * immediate re-list runs (a restarted API server or a reset connection is not an outage).
 */
type CacheState = 'pending' | 'synced' | 'recovering' | 'absent' | 'failed';

interface ObjectStore {
  get(name: string, namespace?: string): KubernetesObject | undefined;
  list(namespace?: string): ReadonlyArray<KubernetesObject>;
}

interface Source {
  /** For logs and messages, e.g. "Services". */
  readonly label: string;
  /** The informer path and list function, or undefined when the resource is not served. */
  resolve(): Promise<{ path: string; list: () => Promise<{ items: KubernetesObject[]; metadata?: { resourceVersion?: string } }> } | undefined>;
}

type Timing = Required<Pick<TrafficCacheOptions, 'retryBaseMs' | 'retryMaxMs' | 'absentRecheckMs'>>;

/** One list+watch cache that restarts itself after failures. */
class ResourceCache {
  state: CacheState = 'pending';
  lastError: string | undefined;
  /** The informer being started or running. */
  private informer: (ObjectStore & { stop(): Promise<void> }) | undefined;
  /** The last informer that synced: what lookups read. */
  private served: ObjectStore | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private failures = 0;
  private stopped = false;
  private readonly listeners = new Set<() => void>();
  private readonly source: Source;
  private readonly kubeConfig: KubeConfig;
  private readonly log: Logger;
  private readonly timing: Timing;

  constructor(source: Source, kubeConfig: KubeConfig, log: Logger, timing: Timing) {
    this.source = source;
    this.kubeConfig = kubeConfig;
    this.log = log;
    this.timing = timing;
  }

  get label(): string {
    return this.source.label;
  }

  get usable(): boolean {
    return this.state === 'synced' || this.state === 'recovering' || this.state === 'absent';
  }

  /** The cached objects; empty unless synced (or recovering). */
  objects(): ObjectStore {
    return (this.state === 'synced' || this.state === 'recovering') && this.served ? this.served : EMPTY_STORE;
  }

  onStateChange(listener: () => void): void {
    this.listeners.add(listener);
  }

  start(): void {
    void this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const informer = this.informer;
    this.informer = undefined;
    await informer?.stop();
  }

  private async run(): Promise<void> {
    this.timer = undefined;
    if (this.stopped) return;
    // Stopping only ends the watch: a stopped informer's objects stay readable.
    const previous = this.informer;
    this.informer = undefined;
    await previous?.stop();
    try {
      const resolved = await this.source.resolve();
      if (this.stopped) return;
      if (!resolved) {
        this.served = undefined;
        this.failures = 0;
        this.setState('absent');
        this.schedule(this.timing.absentRecheckMs);
        return;
      }
      // A fresh informer each time: after a failure the cache is rebuilt from a new list
      // rather than trusted to have missed nothing.
      const informer = makeInformer(this.kubeConfig, resolved.path, () =>
        withTimeout(resolved.list(), LIST_TIMEOUT_MS, `listing ${this.source.label}`),
      );
      let failedDuringStart = false;
      informer.on('error', (error: unknown) => {
        // Errors of a replaced or stopped informer (its aborted watch) are not news.
        if (this.informer !== informer || this.stopped) return;
        failedDuringStart = true;
        this.fail(error);
      });
      this.informer = informer;
      // Resolves once the list is in and the watch is connected (or either failed).
      await informer.start();
      if (this.stopped || this.informer !== informer || failedDuringStart) return;
      this.served = informer;
      this.failures = 0;
      this.setState('synced');
    } catch (error) {
      this.fail(error);
    }
  }

  private fail(error: unknown): void {
    if (this.stopped) return;
    this.lastError = describeError(error);
    this.failures += 1;
    if (this.state === 'synced') {
      this.log.info({ resource: this.source.label, err: this.lastError }, 'traffic cache watch ended; re-listing');
      this.setState('recovering');
      this.schedule(0);
      return;
    }
    const delay = Math.min(this.timing.retryBaseMs * 2 ** Math.max(0, this.failures - 2), this.timing.retryMaxMs);
    if (this.state !== 'failed') this.log.warn({ resource: this.source.label, err: this.lastError, retryInMs: delay }, 'traffic cache failed');
    this.served = undefined;
    this.setState('failed');
    this.schedule(delay);
  }

  private schedule(delay: number): void {
    if (this.stopped || this.timer !== undefined) return;
    this.timer = setTimeout(() => void this.run(), delay);
    this.timer.unref();
  }

  private setState(state: CacheState): void {
    if (this.state === state) return;
    const was = this.state;
    this.state = state;
    if (state !== 'failed') this.lastError = undefined;
    this.log.info({ resource: this.source.label, state, was }, 'traffic cache state');
    for (const listener of this.listeners) listener();
  }
}

const EMPTY_STORE: ObjectStore = { get: () => undefined, list: () => [] };

function servicesSource(kubeConfig: KubeConfig): Source {
  const api = kubeConfig.makeApiClient(CoreV1Api);
  return {
    label: 'Services',
    resolve: async () => ({ path: '/api/v1/services', list: () => api.listServiceForAllNamespaces() }),
  };
}

function istioSource(kubeConfig: KubeConfig, resource: IstioResource): Source {
  const api = kubeConfig.makeApiClient(CustomObjectsApi);
  return {
    label: resource.pluralKind,
    resolve: async () => {
      const version = await servedIstioVersion(kubeConfig, resource);
      if (version === undefined) return undefined;
      return {
        path: `/apis/${ISTIO_NETWORKING_GROUP}/${version}/${resource.plural}`,
        list: () => api.listClusterCustomObject({ group: ISTIO_NETWORKING_GROUP, version, plural: resource.plural }),
      };
    },
  };
}

/** Starts the caches (in the background) and returns the world that reads them. */
export function startTrafficCaches(options: TrafficCacheOptions): TrafficCaches {
  const timing = {
    retryBaseMs: options.retryBaseMs ?? 1000,
    retryMaxMs: options.retryMaxMs ?? 30_000,
    absentRecheckMs: options.absentRecheckMs ?? 60_000,
  };
  const syncTimeoutMs = options.syncTimeoutMs ?? 30_000;
  const log = options.logger;
  const services = new ResourceCache(servicesSource(options.kubeConfig), options.kubeConfig, log, timing);
  const [gateways, serviceEntries] = ISTIO_RESOURCES.map(
    (resource) => new ResourceCache(istioSource(options.kubeConfig, resource), options.kubeConfig, log, timing),
  ) as [ResourceCache, ResourceCache];
  const caches = [services, gateways, serviceEntries];
  const startedAt = performance.now();
  let everSynced = false;
  let degradedLogged = false;
  const waiters = new Set<() => void>();

  const isAvailable = () => caches.every((cache) => cache.usable);
  for (const cache of caches) {
    cache.onStateChange(() => {
      if (!isAvailable()) return;
      if (!everSynced) {
        everSynced = true;
        log.info({ syncMs: Math.round(performance.now() - startedAt), absent: caches.filter((c) => c.state === 'absent').map((c) => c.label) }, 'traffic caches synced');
      }
      for (const wake of waiters) wake();
    });
  }
  for (const cache of caches) cache.start();

  // Conversions are cached per object: informer objects are replaced, never mutated.
  const serviceViews = new WeakMap<object, TrafficService | null>();
  const entryViews = new WeakMap<object, TrafficServiceEntry | null>();
  const serviceView = (object: KubernetesObject): TrafficService | undefined => {
    let view = serviceViews.get(object);
    if (view === undefined) {
      view = toTrafficService(object as KubeObject) ?? null;
      serviceViews.set(object, view);
    }
    return view ?? undefined;
  };
  const entryView = (object: KubernetesObject): TrafficServiceEntry | undefined => {
    let view = entryViews.get(object);
    if (view === undefined) {
      view = toTrafficServiceEntry(object as KubeObject) ?? null;
      entryViews.set(object, view);
    }
    return view ?? undefined;
  };

  const world: TrafficWorld = {
    get available() {
      return isAvailable();
    },
    get unavailableReason() {
      if (isAvailable()) return undefined;
      const failed = caches.find((cache) => cache.state === 'failed');
      if (failed) return `the Kubernetes API could not be read (${failed.label}: ${failed.lastError ?? 'error'})`;
      return "the webhook's caches of Services, Gateways and ServiceEntries have not synced yet";
    },
    complete: true,
    servicesServingGateway(selector) {
      return services.objects().list().flatMap((object) => {
        const view = serviceView(object);
        return view && serviceServesGateway(view, selector) ? [view] : [];
      });
    },
    findService(namespace, name) {
      const object = services.objects().get(name, namespace);
      return object ? serviceView(object) : undefined;
    },
    gatewayExists(namespace, name) {
      return gateways.objects().get(name, namespace) !== undefined;
    },
    gatewayNamespaces(name) {
      return gateways.objects().list().filter((object) => object.metadata?.name === name).map((object) => object.metadata?.namespace ?? '').sort();
    },
    hostCoveredByServiceEntry(host, namespace) {
      const entries = serviceEntries.objects().list().flatMap((object) => entryView(object) ?? []);
      return serviceEntriesCover(entries, host, namespace);
    },
  };

  return {
    world,
    notReadyReason() {
      if (everSynced) return undefined;
      if (performance.now() - startedAt < syncTimeoutMs) return 'waiting for the Service, Gateway and ServiceEntry caches to sync';
      if (!degradedLogged) {
        degradedLogged = true;
        log.warn(
          { syncTimeoutMs, reason: world.unavailableReason },
          'traffic caches did not sync in time; serving degraded: Gateway/VirtualService cluster checks answer with a warning until they do',
        );
      }
      return undefined;
    },
    waitForSync(timeoutMs = syncTimeoutMs) {
      if (isAvailable()) return Promise.resolve(true);
      return new Promise<boolean>((resolve) => {
        const done = (result: boolean) => {
          clearTimeout(timer);
          waiters.delete(wake);
          resolve(result);
        };
        const wake = () => done(true);
        const timer = setTimeout(() => done(isAvailable()), timeoutMs);
        waiters.add(wake);
      });
    },
    async stop() {
      await Promise.all(caches.map((cache) => cache.stop()));
    },
  };
}

/**
 * What `serve` starts with traffic checks on: the kubeconfig (KUBECONFIG, ~/.kube/config, or
 * the in-cluster service account) and the caches. Without a usable kubeconfig the webhook
 * still serves, degraded: the cluster-aware rules answer with their warning.
 */
export async function startTrafficChecks(
  options: Omit<TrafficCacheOptions, 'kubeConfig'> & { readonly kubeConfig?: KubeConfig; readonly context?: string },
): Promise<TrafficCaches> {
  let kubeConfig = options.kubeConfig;
  if (!kubeConfig) {
    const { loadKubeConfig } = await import('./kubeconfig.ts');
    try {
      kubeConfig = loadKubeConfig({ context: options.context });
    } catch (error) {
      const reason = `no usable kubeconfig (${(error as Error).message})`;
      options.logger.error({ err: (error as Error).message }, 'traffic checks degraded: cannot load a kubeconfig');
      return {
        world: unavailableWorld(reason),
        notReadyReason: () => undefined,
        waitForSync: async () => false,
        stop: async () => {},
      };
    }
  }
  options.logger.info({ server: kubeConfig.getCurrentCluster()?.server }, 'starting traffic caches');
  return startTrafficCaches({ ...options, kubeConfig });
}
