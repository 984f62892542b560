/**
 * A list+watch cache (client-node's ListWatch) that keeps, per object, only its identity and
 * the view the rules read, never the object itself: managedFields, status, annotations such as
 * kubectl's last-applied-configuration are dropped as each object arrives. The cost of the
 * cache is then the size of the views, whatever the objects weigh. The initial list is read in
 * pages, each reduced to slim objects before the next is fetched.
 */
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { ListWatch } from '@kubernetes/client-node/dist/cache.js';
import type { Watch } from '@kubernetes/client-node/dist/watch.js';
import { ClusterWatch } from './watch-request.ts';
import { isRecord, type KubeObject } from '../policies/types.ts';
import { listPages, type PageFetcher } from './paginated-list.ts';

/** What the cache holds for one object: enough for ListWatch to key and version it, plus the view. */
export interface SlimObject<V> extends KubernetesObject {
  readonly metadata: { readonly name?: string; readonly namespace?: string; readonly resourceVersion?: string };
  /** The rules' view of the object; undefined when the object is not readable as one. */
  readonly view: V | undefined;
}

/** Builds the view the rules read from a whole object (pure; see src/policies/traffic-world.ts). */
export type ViewOf<V> = (object: KubeObject) => V | undefined;

export function slimObject<V>(object: KubernetesObject, viewOf: ViewOf<V>): SlimObject<V> {
  const { name, namespace, resourceVersion } = object.metadata ?? {};
  return { metadata: { name, namespace, resourceVersion }, view: viewOf(object as KubeObject) };
}

/**
 * A watch whose ADDED/MODIFIED/DELETED objects are slimmed before ListWatch sees them.
 * BOOKMARK events (a resourceVersion only) and ERROR events (a Status) pass as they are.
 * Bookmarks are asked for: they keep the resourceVersion current on quiet resources, so a
 * watch the server ends is resumed instead of expiring into a full re-list.
 */
class SlimmingWatch<V> extends ClusterWatch {
  private readonly viewOf: ViewOf<V>;

  constructor(kubeConfig: KubeConfig, viewOf: ViewOf<V>) {
    super(kubeConfig);
    this.viewOf = viewOf;
  }

  override watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    return super.watch(
      path,
      { ...queryParams, allowWatchBookmarks: true },
      (phase, object) => {
        if ((phase === 'ADDED' || phase === 'MODIFIED' || phase === 'DELETED') && isRecord(object)) {
          const slim = slimObject(object as KubernetesObject, this.viewOf);
          callback(phase, slim, { type: phase, object: slim });
        } else {
          callback(phase, object, { type: phase, object });
        }
      },
      done,
    );
  }
}

export interface SlimListWatchOptions<V> {
  readonly kubeConfig: KubeConfig;
  /** The watch path, e.g. /api/v1/services. */
  readonly path: string;
  readonly fetchPage: PageFetcher<KubernetesObject>;
  readonly viewOf: ViewOf<V>;
  readonly pageSize?: number;
  /** For messages, e.g. "Services". */
  readonly label: string;
}

/** The list of slim objects, page by page; its resourceVersion is the snapshot's (where the watch starts). */
export async function listSlim<V>(options: Omit<SlimListWatchOptions<V>, 'kubeConfig' | 'path'>): Promise<{ items: SlimObject<V>[]; metadata: { resourceVersion?: string } }> {
  const items: SlimObject<V>[] = [];
  let resourceVersion: string | undefined;
  for await (const page of listPages(options.fetchPage, { pageSize: options.pageSize, what: `listing ${options.label}` })) {
    for (const object of page.items ?? []) items.push(slimObject(object, options.viewOf));
    resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
  }
  return { items, metadata: { resourceVersion } };
}

/** A ListWatch (not started) over slim objects. */
export function makeSlimListWatch<V>(options: SlimListWatchOptions<V>): ListWatch<SlimObject<V>> {
  // ListWatch only ever calls watch(); its parameter type names client-node's class, whose private fields no other class can have.
  const watch = new SlimmingWatch(options.kubeConfig, options.viewOf) as unknown as Watch;
  return new ListWatch<SlimObject<V>>(options.path, watch, () => listSlim(options), false);
}
