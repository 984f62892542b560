/**
 * What a VirtualService destination host names, resolved the way Istio's destination
 * analyzer resolves it, so a warning here means Istio would route the host nowhere:
 *
 * - only a short name (no dot, no wildcard) is completed, to `<name>.<namespace>.svc.cluster.local`
 *   in the VirtualService's namespace; any host with a dot is taken literally, so
 *   `reviews.shop` and `reviews.shop.svc` name no Service;
 * - a Service is the host `<name>.<namespace>.svc.cluster.local`; a ServiceEntry is each of
 *   its hosts (a short one completed in the ServiceEntry's namespace);
 * - names are compared exactly, as strings (no case folding);
 * - a ServiceEntry with a wildcard host covers every host ending in the rest of it;
 * - visibility: a ServiceEntry's `exportTo` and a Service's `networking.istio.io/exportTo`
 *   annotation say which namespaces see it. The lookup asks for objects exported everywhere,
 *   then for those exported to each namespace of the VirtualService's own `exportTo` (its own
 *   namespace when it has none); wildcard hosts count when exported everywhere or to the
 *   VirtualService's namespace.
 *
 * Pure: no I/O.
 */
import type { TrafficService, TrafficServiceEntry, TrafficWorld } from './traffic-world.ts';

export const CLUSTER_DOMAIN = 'cluster.local';
const SERVICE_SUFFIX = `.svc.${CLUSTER_DOMAIN}`;

/** What a destination host resolved to: the object and the port numbers it declares. */
export type DestinationTarget =
  | { readonly kind: 'Service'; readonly service: TrafficService; readonly ports: readonly number[] }
  | { readonly kind: 'ServiceEntry'; readonly entry: TrafficServiceEntry; readonly ports: readonly number[] };

/** A host as Istio keys it: a short name completed in `namespace`, anything else unchanged. */
export function fullyQualifiedHost(host: string, namespace: string): string {
  return host.startsWith('*') || host.includes('.') ? host : `${host}.${namespace}${SERVICE_SUFFIX}`;
}

/** The Service a fully qualified host would name, or undefined when it is not of that form. */
export function serviceNameOf(fqdn: string): { namespace: string; name: string } | undefined {
  if (!fqdn.endsWith(SERVICE_SUFFIX)) return undefined;
  const parts = fqdn.slice(0, -SERVICE_SUFFIX.length).split('.');
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') return undefined;
  return { name: parts[0] as string, namespace: parts[1] as string };
}

interface WildcardHost {
  /** The namespace it is exported to, or `*`. */
  readonly scope: string;
  /** The host without its leading `*`: a name matches when it ends with this. */
  readonly suffix: string;
  readonly entry: TrafficServiceEntry;
}

const EVERYWHERE = '*';

/**
 * The namespaces a ServiceEntry (or Service) is exported to, `.` made its own; `*` alone when it is
 * exported everywhere (no `exportTo`, or `*` among them).
 */
function exportScopes(exportTo: readonly string[], namespace: string): string[] {
  if (exportTo.length === 0 || exportTo.includes(EVERYWHERE)) return [EVERYWHERE];
  return exportTo.map((target) => (target === '.' ? namespace : target));
}

/**
 * The lookups of one validation. Built once per VirtualService from the world's
 * ServiceEntries (Services are looked up by name), and remembers each host it resolved, so
 * the cost is linear in the number of distinct destination hosts.
 */
export class DestinationResolver {
  private readonly world: TrafficWorld;
  private readonly namespace: string;
  /** Where exact hosts are looked for, in order. */
  private readonly scopes: readonly string[];
  private readonly exact = new Map<string, TrafficServiceEntry>();
  private readonly wildcards: WildcardHost[] = [];
  private readonly resolved = new Map<string, DestinationTarget | undefined>();

  /** `namespace` and `exportTo` are the VirtualService's. */
  constructor(world: TrafficWorld, namespace: string, exportTo: readonly string[] = []) {
    this.world = world;
    this.namespace = namespace;
    const own = exportTo.length === 0 ? [namespace] : exportTo.map((target) => (target === '.' ? namespace : target));
    this.scopes = [...new Set([EVERYWHERE, ...own])];
    for (const entry of world.serviceEntries()) {
      const scopes = exportScopes(entry.exportTo, entry.namespace);
      for (const host of entry.hosts) {
        const fqdn = fullyQualifiedHost(host, entry.namespace);
        for (const scope of scopes) {
          // As in Istio's lookup table, a later ServiceEntry for the same host replaces an earlier one.
          this.exact.set(`${scope}/${fqdn}`, entry);
          if (fqdn.startsWith('*')) this.wildcards.push({ scope, suffix: fqdn.slice(1), entry });
        }
      }
    }
  }

  resolve(host: string): DestinationTarget | undefined {
    if (this.resolved.has(host)) return this.resolved.get(host);
    const target = this.lookup(host);
    this.resolved.set(host, target);
    return target;
  }

  private lookup(host: string): DestinationTarget | undefined {
    const fqdn = fullyQualifiedHost(host, this.namespace);
    const ref = serviceNameOf(fqdn);
    const service = ref ? this.world.findService(ref.namespace, ref.name) : undefined;
    const serviceScopes = service ? exportScopes(service.exportTo, service.namespace) : [];
    for (const scope of this.scopes) {
      // A Service wins over a ServiceEntry for the same host, as it does in Istio's table.
      if (service && serviceScopes.includes(scope)) return { kind: 'Service', service, ports: service.ports.map((port) => port.port) };
      const entry = this.exact.get(`${scope}/${fqdn}`);
      if (entry) return entryTarget(entry);
    }
    const name = host.startsWith('*') ? host.slice(1) : host;
    const wildcard = this.wildcards.find((candidate) =>
      (candidate.scope === EVERYWHERE || candidate.scope === this.namespace) && name.endsWith(candidate.suffix));
    return wildcard ? entryTarget(wildcard.entry) : undefined;
  }
}

function entryTarget(entry: TrafficServiceEntry): DestinationTarget {
  return { kind: 'ServiceEntry', entry, ports: entry.ports };
}
