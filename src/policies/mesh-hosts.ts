/**
 * `virtualservice-mesh-host-conflict` (IST0109): two VirtualServices bound to the mesh (no
 * `spec.gateways`, or `mesh` among them) that define the same host for the same namespaces.
 * Sidecars then follow one of them, and which one is undefined.
 *
 * When two hosts collide, as Istio's analyzer decides it:
 * - a host is taken in every namespace its VirtualService is exported to: everywhere (`*`) when
 *   `spec.exportTo` is empty or holds `*`, else in each namespace listed (`.` is its own); a
 *   short name is completed to `<name>.<namespace>.svc.cluster.local` in the VirtualService's
 *   namespace;
 * - two hosts exported to the same namespace collide when they are equal; two exported
 *   everywhere collide when they are equal;
 * - a host exported to a namespace also collides with a host exported everywhere when either
 *   matches the other, wildcards included (`*.shop.example` and `a.shop.example`).
 * A VirtualService whose hosts times its exportTo namespaces exceed MAX_VIRTUAL_SERVICE_HOSTS
 * is left out. A VirtualService never conflicts with itself: the webhook judging an UPDATE leaves the
 * stored copy of the same VirtualService out.
 *
 * The other VirtualServices' hosts are looked up in a MeshHostIndex: each host of the object
 * judged costs a few map lookups and looks at no more than 16 of the VirtualServices it
 * collides with, not a pass over every VirtualService. Wildcards are matched
 * at label boundaries (`*.example.com` covers `a.example.com`), the only wildcards Istio's
 * validation admits.
 *
 * Pure: no I/O; never throws on untrusted input.
 */
import { quote } from './service-ports.ts';
import { fullyQualifiedHost } from './destination-hosts.ts';
import type { TrafficWorld } from './traffic-world.ts';
import { isRecord, stringList, type KubeObject, type Violation } from './types.ts';
import { LazilyWorded } from './messages.ts';
import { MAX_VIRTUAL_SERVICE_HOSTS } from './object-limits.ts';

/** The scope of a host exported to every namespace. */
const EVERYWHERE = '*';

/** One host of a mesh-bound VirtualService in one of the namespaces it is exported to. */
export interface MeshHost {
  /** A namespace, or `*` for every namespace. */
  readonly scope: string;
  /** The host, a short name completed in the VirtualService's namespace. */
  readonly host: string;
}

/** The hosts of a VirtualService bound to the mesh, with the index of each in `spec.hosts`. */
export interface MeshHosts {
  readonly hosts: readonly (MeshHost & { readonly index: number })[];
}

/** Whether the VirtualService applies to sidecars: no gateways means the mesh only. */
function boundToMesh(spec: Record<string, unknown>): boolean {
  const gateways = stringList(spec.gateways);
  return !Array.isArray(spec.gateways) || gateways.length === 0 || gateways.includes('mesh');
}

/** The namespaces the VirtualService's hosts are visible in: `*` alone, or each one named. */
function exportScopes(exportTo: readonly string[], namespace: string): string[] {
  if (exportTo.length === 0 || exportTo.includes(EVERYWHERE)) return [EVERYWHERE];
  return [...new Set(exportTo.map((target) => (target === '.' ? namespace : target)))];
}

/** The mesh hosts of a VirtualService in `namespace`, or undefined when it is not bound to the mesh or has no hosts. */
export function readMeshHosts(virtualService: KubeObject, namespace: string): MeshHosts | undefined {
  const spec = isRecord(virtualService.spec) ? virtualService.spec : {};
  if (!boundToMesh(spec) || !Array.isArray(spec.hosts)) return undefined;
  const scopes = exportScopes(stringList(spec.exportTo), namespace);
  // Each host is kept once per scope: a product past what the webhook judges at admission
  // (MAX_VIRTUAL_SERVICE_HOSTS) would make a cache entry of millions, so such an object
  // takes part in no conflict.
  if (spec.hosts.length * scopes.length > MAX_VIRTUAL_SERVICE_HOSTS) return undefined;
  const hosts: (MeshHost & { index: number })[] = [];
  spec.hosts.forEach((host: unknown, index) => {
    if (typeof host !== 'string' || host === '') return;
    const fqdn = fullyQualifiedHost(host, namespace);
    for (const scope of scopes) hosts.push({ scope, host: fqdn, index });
  });
  return hosts.length === 0 ? undefined : { hosts };
}

/**
 * The suffixes a host is found under when a wildcard asks which hosts it covers: each suffix
 * starting at a dot, and the empty one (what `*` covers).
 */
function labelSuffixes(name: string): string[] {
  const suffixes = [''];
  for (let i = name.indexOf('.'); i >= 0; i = name.indexOf('.', i + 1)) suffixes.push(name.slice(i));
  return suffixes;
}

/** Counts per object under one key: an object with two hosts under a key is still one object. */
type ObjectCounts = Map<string, number>;

class CountingMap {
  private readonly map = new Map<string, ObjectCounts>();

  add(key: string, objectKey: string): void {
    let counts = this.map.get(key);
    if (!counts) {
      counts = new Map();
      this.map.set(key, counts);
    }
    counts.set(objectKey, (counts.get(objectKey) ?? 0) + 1);
  }

  remove(key: string, objectKey: string): void {
    const counts = this.map.get(key);
    const count = counts?.get(objectKey);
    if (!counts || count === undefined) return;
    if (count > 1) counts.set(objectKey, count - 1);
    else counts.delete(objectKey);
    if (counts.size === 0) this.map.delete(key);
  }

  get(key: string): ObjectCounts | undefined {
    return this.map.get(key);
  }
}

/**
 * Which VirtualServices another one's host collides with: objects other than `self`
 * (`namespace/name`), how many were found and a few of their names, sorted.
 */
export interface MeshHostConflict {
  /** At most CONFLICTS_COUNTED; `more` tells that the search stopped there. */
  readonly count: number;
  readonly more: boolean;
  readonly names: readonly string[];
}

/** How many names a conflict keeps for its message: enough to act on. */
const NAMED_CONFLICTS = 3;

/**
 * Where the search for colliding VirtualServices stops: a wildcard such as `*.com` may cover
 * thousands, and one host must not cost a pass over all of them.
 */
const CONFLICTS_COUNTED = 16;

/** Hosts of the mesh-bound VirtualServices, kept up to date one object at a time. */
export class MeshHostIndex {
  private readonly byObject = new Map<string, MeshHosts>();
  /** `scope/host` -> objects: equal hosts in the same scope. */
  private readonly exact = new CountingMap();
  /** `plane/host`, plane `*` (exported everywhere) or `~` (exported to namespaces). */
  private readonly plain = new CountingMap();
  /** `plane/rest` of wildcard hosts (the host without its `*`). */
  private readonly wildcards = new CountingMap();
  /** `plane/suffix` -> objects with a host (or wildcard rest) ending in it (labelSuffixes). */
  private readonly under = new CountingMap();

  /** Records (or replaces) the object `objectKey`; undefined only removes it. */
  set(objectKey: string, hosts: MeshHosts | undefined): void {
    this.delete(objectKey);
    if (hosts === undefined) return;
    this.byObject.set(objectKey, hosts);
    this.apply(hosts, (map, key) => map.add(key, objectKey));
  }

  delete(objectKey: string): void {
    const hosts = this.byObject.get(objectKey);
    if (!hosts) return;
    this.byObject.delete(objectKey);
    this.apply(hosts, (map, key) => map.remove(key, objectKey));
  }

  private apply(hosts: MeshHosts, change: (map: CountingMap, key: string) => void): void {
    for (const { scope, host } of hosts.hosts) {
      const plane = planeOf(scope);
      change(this.exact, `${scope}/${host}`);
      const name = host.startsWith('*') ? host.slice(1) : host;
      change(host.startsWith('*') ? this.wildcards : this.plain, `${plane}/${name}`);
      for (const suffix of labelSuffixes(name)) change(this.under, `${plane}/${suffix}`);
    }
  }

  /** The other VirtualServices `host` collides with, or undefined when none does. */
  conflicts(host: MeshHost, self: string): MeshHostConflict | undefined {
    const found = new Set<string>();
    let more = false;
    const collect = (counts: ObjectCounts | undefined) => {
      for (const objectKey of counts?.keys() ?? []) {
        if (found.size >= CONFLICTS_COUNTED) {
          more ||= !found.has(objectKey) && objectKey !== self;
          if (more) return;
          continue;
        }
        if (objectKey !== self) found.add(objectKey);
      }
    };
    collect(this.exact.get(`${host.scope}/${host.host}`));
    // The other plane: namespaced hosts meet those exported everywhere, and the reverse.
    const other = host.scope === EVERYWHERE ? '~' : EVERYWHERE;
    if (host.host.startsWith('*')) {
      const rest = host.host.slice(1);
      // Hosts it covers, wildcards narrower than it included...
      collect(this.under.get(`${other}/${rest}`));
      // ...and wildcards at least as wide, which cover it.
      for (const suffix of labelSuffixes(rest)) collect(this.wildcards.get(`${other}/${suffix}`));
    } else {
      collect(this.plain.get(`${other}/${host.host}`));
      for (const suffix of labelSuffixes(host.host)) collect(this.wildcards.get(`${other}/${suffix}`));
    }
    if (found.size === 0) return undefined;
    const names = [...found].sort().slice(0, NAMED_CONFLICTS);
    return { count: found.size, more, names };
  }
}

function planeOf(scope: string): string {
  return scope === EVERYWHERE ? EVERYWHERE : '~';
}

/**
 * The conflicts of a VirtualService's mesh hosts with the other VirtualServices of the
 * world, one warning per host of `spec.hosts` that collides (each is one thing to fix).
 */
export function meshHostViolations(hosts: MeshHosts, self: string, world: TrafficWorld): Violation[] {
  const byIndex = new Map<number, { host: MeshHost; conflict: MeshHostConflict }>();
  for (const host of hosts.hosts) {
    if (byIndex.has(host.index)) continue;
    const conflict = world.meshHostConflicts(host, self);
    if (conflict) byIndex.set(host.index, { host, conflict });
  }
  return [...byIndex].map(([index, { host, conflict }]) => conflictViolation(index, host, conflict));
}

function conflictViolation(index: number, host: MeshHost, conflict: MeshHostConflict): Violation {
  const rule = 'virtualservice-mesh-host-conflict';
  const path = `spec.hosts[${index}]`;
  return new LazilyWorded(rule, 'warning', path, `${rule}|${host.host}`, () => {
    const left = conflict.count - conflict.names.length;
    const more = conflict.more ? ' and more' : left > 0 ? ` and ${left} more` : '';
    const others = `${conflict.count > 1 ? 'VirtualServices' : 'VirtualService'} ${conflict.names.join(', ')}${more}`;
    const where = host.scope === EVERYWHERE ? 'for the mesh' : `for the mesh in namespace ${host.scope}`;
    return [
      `${path}: ${quote(host.host)} is also defined ${where} by ${others}, so sidecars' routing is undefined (IST0109); ` +
        `merge them into one VirtualService or narrow their exportTo.`,
      `${path}: ${quote(host.host)} is also defined ${where} by ${others} (IST0109); merge them into one VirtualService.`,
      `${path}: ${quote(host.host)} is also defined for the mesh by ${others} (IST0109); merge them.`,
      `${path}: the host is also defined for the mesh by another VirtualService (IST0109); merge them into one.`,
    ];
  });
}
