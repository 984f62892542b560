/**
 * The webhook's view of the cluster for the Gateway, VirtualService and DestinationRule checks:
 * informer caches (list + watch, @kubernetes/client-node ListWatch) of Services, Gateways,
 * ServiceEntries, DestinationRules and VirtualServices, read through the TrafficWorld
 * interface. An admission never calls the API.
 *
 * - The caches hold slim objects (src/kube/slim-list-watch.ts): per object its identity and
 *   the view the rules read (TrafficService, TrafficGateway, TrafficServiceEntry,
 *   TrafficDestinationRule, a VirtualService's mesh hosts), built once as the object arrives;
 *   whole objects are never retained. Lists are read in pages.
 * - Gateways are looked up by port and host, DestinationRules and VirtualServices by host: their
 *   caches keep an index (CacheIndex) up to date from the informer's events, so an admission
 *   costs a few lookups however many objects the cluster holds.
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
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '../observability/logger.ts';
import { ISTIO_NETWORKING_GROUP } from '../istio/api-versions.ts';
import { GatewayIndex } from '../policies/gateway-index.ts';
import {
  servingServices,
  toTrafficGateway,
  toTrafficService,
  toTrafficServiceEntry,
  unavailableWorld,
  type TrafficService,
  type TrafficWorld,
} from '../policies/traffic-world.ts';
import { DestinationRuleIndex, toTrafficDestinationRule } from '../policies/destination-rule.ts';
import { MeshHostIndex, readMeshHosts, type MeshHosts } from '../policies/mesh-hosts.ts';
import { describeError, ISTIO_RESOURCES, servedIstioVersion, type IstioResource } from './istio-resources.ts';
import { listPageFetcher } from './list-request.ts';
import { isRecord } from '../policies/types.ts';
import { DEFAULT_PAGE_SIZE, type PageFetcher } from './paginated-list.ts';
import { makeSlimListWatch, type SlimObject, type ViewOf } from './slim-list-watch.ts';

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
  /** Objects per list page (default DEFAULT_PAGE_SIZE). */
  readonly pageSize?: number;
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

interface ObjectStore<V> {
  get(name: string, namespace?: string): SlimObject<V> | undefined;
  list(namespace?: string): ReadonlyArray<SlimObject<V>>;
}

interface Source<V> {
  /** For logs and messages, e.g. "Services". */
  readonly label: string;
  /** What the cache keeps of each object. */
  readonly viewOf: ViewOf<V>;
  /** The watch path and the list call, or undefined when the resource is not served. */
  resolve(): Promise<{ path: string; fetchPage: PageFetcher<KubernetesObject> } | undefined>;
}

/** A lookup structure kept up to date from a cache's events, keyed by `namespace/name`. */
export interface CacheIndex<V> {
  set(objectKey: string, view: V | undefined): void;
  delete(objectKey: string): void;
}

type CacheSettings = Required<Pick<TrafficCacheOptions, 'retryBaseMs' | 'retryMaxMs' | 'absentRecheckMs' | 'pageSize'>>;

/** One list+watch cache that restarts itself after failures. */
class ResourceCache<V, I extends CacheIndex<V> = CacheIndex<V>> {
  state: CacheState = 'pending';
  lastError: string | undefined;
  /** The informer being started or running. */
  private informer: (ObjectStore<V> & { stop(): Promise<void> }) | undefined;
  /** The last informer that synced: what lookups read. */
  private served: ObjectStore<V> | undefined;
  /** The index of the served informer, built from its events alone. */
  private servedIndex: I | undefined;
  private readonly newIndex: (() => I) | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private failures = 0;
  private stopped = false;
  private readonly listeners = new Set<() => void>();
  private readonly source: Source<V>;
  private readonly kubeConfig: KubeConfig;
  private readonly log: Logger;
  private readonly settings: CacheSettings;

  /** `newIndex`: an empty index for each informer, filled as its objects arrive. */
  constructor(source: Source<V>, kubeConfig: KubeConfig, log: Logger, settings: CacheSettings, newIndex?: () => I) {
    this.source = source;
    this.kubeConfig = kubeConfig;
    this.log = log;
    this.settings = settings;
    this.newIndex = newIndex;
  }

  get label(): string {
    return this.source.label;
  }

  get usable(): boolean {
    return this.state === 'synced' || this.state === 'recovering' || this.state === 'absent';
  }

  /** The cached objects; empty unless synced (or recovering). */
  objects(): ObjectStore<V> {
    return (this.state === 'synced' || this.state === 'recovering') && this.served ? this.served : EMPTY_STORE;
  }

  /** The index of the cached objects; undefined unless synced (or recovering) or without one. */
  index(): I | undefined {
    return (this.state === 'synced' || this.state === 'recovering') && this.served ? this.servedIndex : undefined;
  }

  /** The view of one cached object. */
  find(namespace: string, name: string): V | undefined {
    return this.objects().get(name, namespace)?.view;
  }

  /** The views of every cached object. */
  views(): V[] {
    return this.objects().list().flatMap((object) => (object.view === undefined ? [] : [object.view]));
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
        this.servedIndex = undefined;
        this.failures = 0;
        this.setState('absent');
        this.schedule(this.settings.absentRecheckMs);
        return;
      }
      // A fresh informer each time: after a failure the cache is rebuilt from a new list
      // rather than trusted to have missed nothing.
      const informer = makeSlimListWatch({
        kubeConfig: this.kubeConfig,
        path: resolved.path,
        fetchPage: resolved.fetchPage,
        viewOf: this.source.viewOf,
        pageSize: this.settings.pageSize,
        label: this.source.label,
      });
      let failedDuringStart = false;
      informer.on('error', (error: unknown) => {
        // Errors of a replaced or stopped informer (its aborted watch) are not news.
        if (this.informer !== informer || this.stopped) return;
        failedDuringStart = true;
        this.fail(error);
      });
      // Subscribed before the list is read, so the index sees every object the informer does.
      const index = this.newIndex?.();
      if (index) {
        const keyOf = (object: SlimObject<V>) => `${object.metadata.namespace ?? ''}/${object.metadata.name ?? ''}`;
        informer.on('add', (object) => index.set(keyOf(object), object.view));
        informer.on('update', (object) => index.set(keyOf(object), object.view));
        informer.on('delete', (object) => index.delete(keyOf(object)));
      }
      this.informer = informer;
      // Resolves once the list is in and the watch is connected (or either failed).
      await informer.start();
      if (this.stopped || this.informer !== informer || failedDuringStart) return;
      this.served = informer;
      this.servedIndex = index;
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
      this.log.info({ resource: this.source.label, reason: this.lastError }, 'traffic cache watch ended; re-listing');
      this.setState('recovering');
      this.schedule(0);
      return;
    }
    const delay = Math.min(this.settings.retryBaseMs * 2 ** Math.max(0, this.failures - 2), this.settings.retryMaxMs);
    if (this.state !== 'failed') this.log.warn({ resource: this.source.label, reason: this.lastError, retryInMs: delay }, 'traffic cache failed');
    this.served = undefined;
    this.servedIndex = undefined;
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

const EMPTY_STORE: ObjectStore<never> = { get: () => undefined, list: () => [] };

function servicesSource(kubeConfig: KubeConfig): Source<TrafficService> {
  const path = '/api/v1/services';
  return {
    label: 'Services',
    viewOf: toTrafficService,
    resolve: async () => ({ path, fetchPage: listPageFetcher(kubeConfig, path) }),
  };
}

function istioSource<V>(kubeConfig: KubeConfig, resource: IstioResource, viewOf: ViewOf<V>): Source<V> {
  return {
    label: resource.pluralKind,
    viewOf,
    resolve: async () => {
      const version = await servedIstioVersion(kubeConfig, resource);
      if (version === undefined) return undefined;
      const path = `/apis/${ISTIO_NETWORKING_GROUP}/${version}/${resource.plural}`;
      return { path, fetchPage: listPageFetcher(kubeConfig, path) };
    },
  };
}

/**
 * A VirtualService is only read for its mesh hosts (the conflicts of other VirtualServices):
 * its cache keeps them, in the namespace the object lives in, and nothing else.
 */
const meshHostsOf: ViewOf<MeshHosts> = (object) => {
  const namespace = isRecord(object.metadata) && typeof object.metadata.namespace === 'string' ? object.metadata.namespace : '';
  return readMeshHosts(object, namespace);
};

/** Starts the caches (in the background) and returns the world that reads them. */
export function startTrafficCaches(options: TrafficCacheOptions): TrafficCaches {
  const settings = {
    retryBaseMs: options.retryBaseMs ?? 1000,
    retryMaxMs: options.retryMaxMs ?? 30_000,
    absentRecheckMs: options.absentRecheckMs ?? 60_000,
    pageSize: options.pageSize ?? DEFAULT_PAGE_SIZE,
  };
  const syncTimeoutMs = options.syncTimeoutMs ?? 30_000;
  const log = options.logger;
  const istio = (kind: IstioResource['kind']) => ISTIO_RESOURCES.find((resource) => resource.kind === kind) as IstioResource;
  const services = new ResourceCache(servicesSource(options.kubeConfig), options.kubeConfig, log, settings);
  const gateways = new ResourceCache(istioSource(options.kubeConfig, istio('Gateway'), toTrafficGateway), options.kubeConfig, log, settings, () => new GatewayIndex());
  const serviceEntries = new ResourceCache(istioSource(options.kubeConfig, istio('ServiceEntry'), toTrafficServiceEntry), options.kubeConfig, log, settings);
  const destinationRules = new ResourceCache(
    istioSource(options.kubeConfig, istio('DestinationRule'), (object) => toTrafficDestinationRule(object)),
    options.kubeConfig, log, settings, () => new DestinationRuleIndex(),
  );
  const virtualServices = new ResourceCache(istioSource(options.kubeConfig, istio('VirtualService'), meshHostsOf), options.kubeConfig, log, settings, () => new MeshHostIndex());
  const caches = [services, gateways, serviceEntries, destinationRules, virtualServices];
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
        log.info(
          {
            syncMs: Math.round(performance.now() - startedAt),
            objects: Object.fromEntries(caches.map((c) => [c.label, c.objects().list().length])),
            absent: caches.filter((c) => c.state === 'absent').map((c) => c.label),
          },
          'traffic caches synced',
        );
      }
      for (const wake of waiters) wake();
    });
  }
  for (const cache of caches) cache.start();

  // Once one cache has failed, every lookup answers as an empty cluster, not only the failed
  // kind's: the caches fail one by one, and a rule must not judge by the half still served.
  const world: TrafficWorld = {
    get available() {
      return isAvailable();
    },
    get unavailableReason() {
      if (isAvailable()) return undefined;
      const failed = caches.find((cache) => cache.state === 'failed');
      if (failed) return `the Kubernetes API could not be read (${failed.label}: ${failed.lastError ?? 'error'})`;
      return "the webhook's caches of Services and Istio's networking objects have not synced yet";
    },
    complete: true,
    servicesServingGateway: (selector) => (isAvailable() ? servingServices(services.views(), selector) : []),
    findService: (namespace, name) => (isAvailable() ? services.find(namespace, name) : undefined),
    gatewayExists: (namespace, name) => isAvailable() && gateways.find(namespace, name) !== undefined,
    gatewayNamespaces: (name) => (isAvailable() && gateways.index()?.namespacesOf(name)) || [],
    findGateway: (namespace, name) => (isAvailable() ? gateways.find(namespace, name) : undefined),
    gatewaysListening: (port, bind, host) => (isAvailable() && gateways.index()?.listening(port, bind, host)) || [],
    serviceEntries: () => (isAvailable() ? serviceEntries.views() : []),
    destinationRulesFor: (hostKey) => (isAvailable() && destinationRules.index()?.forHostKey(hostKey)) || [],
    meshHostConflicts: (host, self) => (isAvailable() ? virtualServices.index()?.conflicts(host, self) : undefined),
  };

  return {
    world,
    notReadyReason() {
      if (everSynced) return undefined;
      if (performance.now() - startedAt < syncTimeoutMs) return "waiting for the caches of Services and Istio's networking objects to sync";
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
  options: Omit<TrafficCacheOptions, 'kubeConfig'> & {
    readonly kubeConfig?: KubeConfig;
    readonly context?: string;
    readonly env?: Readonly<Record<string, string | undefined>>;
  },
): Promise<TrafficCaches> {
  let kubeConfig = options.kubeConfig;
  if (!kubeConfig) {
    const { loadKubeConfig } = await import('./kubeconfig.ts');
    try {
      kubeConfig = loadKubeConfig({ context: options.context, env: options.env ?? {} });
    } catch (error) {
      const reason = `no usable kubeconfig (${(error as Error).message})`;
      options.logger.error({ reason: (error as Error).message }, 'traffic checks degraded: cannot load a kubeconfig');
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
