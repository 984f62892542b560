/**
 * What the Gateway and VirtualService checks need to know about the rest of the cluster
 * (the README's Istio traffic rules): which Services exist and which of them serve a gateway's pods, which
 * Gateways exist and what their servers listen on, which hosts ServiceEntries declare.
 *
 * The policies only see the `TrafficWorld` interface. Two implementations:
 * - `worldFromObjects` (here, pure): the offline world of `check`, built from every object
 *   given to it (optionally plus what `check --cluster` listed);
 * - the cluster world of the webhook (src/kube/informers.ts), which reads informer caches.
 */
import { readServicePorts } from './service-ports.ts';
import { isRecord, stringList, type KubeObject, type Violation } from './types.ts';
import { fitMessage } from './messages.ts';
import { ISTIO_NETWORKING_GROUP } from '../istio/api-versions.ts';
import { GatewayIndex, nameKey } from './gateway-index.ts';
import { DestinationRuleIndex, toTrafficDestinationRule, type TrafficDestinationRule } from './destination-rule.ts';
import { MeshHostIndex, readMeshHosts, type MeshHost, type MeshHostConflict } from './mesh-hosts.ts';

/** A Service as the traffic checks see it. */
export interface TrafficService {
  readonly namespace: string;
  readonly name: string;
  /** `spec.selector`; undefined when the Service has none (it then selects no pods). */
  readonly selector: Readonly<Record<string, string>> | undefined;
  readonly ports: readonly TrafficServicePort[];
  /**
   * The namespaces of the `networking.istio.io/exportTo` annotation (comma-separated, taken
   * as written); empty when absent, which exports the Service everywhere.
   */
  readonly exportTo: readonly string[];
}

export interface TrafficServicePort {
  readonly name: string;
  readonly port: number;
  /** Numeric or named target port; undefined when absent (Kubernetes then uses `port`). */
  readonly targetPort: number | string | undefined;
  /** Transport protocol, `TCP` when absent. */
  readonly protocol: string;
}

export interface TrafficWorld {
  /**
   * False when lookups cannot be trusted: the cluster API is unreachable or the caches
   * have not synced. The cluster-aware rules then give way to a single warning.
   */
  readonly available: boolean;
  /** Why the world is unavailable, phrased to follow "because" (e.g. "the Kubernetes API is unreachable"). */
  readonly unavailableReason: string | undefined;
  /**
   * True when the world holds every Service of the cluster (the webhook, `check --cluster`);
   * false for the files given to `check`, which rarely include the ingress gateway's Service.
   */
  readonly complete: boolean;
  /**
   * The Services serving a Gateway's pods (see gatewaySelectorMatch), the ones whose selector
   * matches the gateway's most closely first. Services in every namespace count, as Istio by
   * default applies a Gateway's selector in all namespaces.
   */
  servicesServingGateway(selector: Readonly<Record<string, string>>): readonly TrafficService[];
  findService(namespace: string, name: string): TrafficService | undefined;
  gatewayExists(namespace: string, name: string): boolean;
  /** Namespaces holding an Istio Gateway called `name`, sorted: where a reference may have meant. */
  gatewayNamespaces(name: string): readonly string[];
  findGateway(namespace: string, name: string): TrafficGateway | undefined;
  /**
   * The Gateways with a server on `port` and bind address `bind` (`''`: none) whose hosts list
   * `host` exactly as written (`ns/host` forms included).
   */
  gatewaysListening(port: number, bind: string, host: string): readonly TrafficGateway[];
  /** Every ServiceEntry, in the order later ones take precedence (see DestinationResolver). */
  serviceEntries(): readonly TrafficServiceEntry[];
  /** The DestinationRules whose host has this key (destinationRuleHostKey). */
  destinationRulesFor(hostKey: string): readonly TrafficDestinationRule[];
  /**
   * The VirtualServices bound to the mesh, other than `self` (`namespace/name`), whose hosts
   * collide with `host` (src/policies/mesh-hosts.ts); undefined when none does.
   */
  meshHostConflicts(host: MeshHost, self: string): MeshHostConflict | undefined;
}

/** A ServiceEntry reduced to what the checks use. */
export interface TrafficServiceEntry {
  readonly namespace: string;
  /** `''` when the object has no name. */
  readonly name: string;
  readonly hosts: readonly string[];
  /** `spec.exportTo`; empty means exported to every namespace (Istio's default). */
  readonly exportTo: readonly string[];
  /** `spec.ports[].number`. */
  readonly ports: readonly number[];
}

/** A Gateway reduced to what the checks use. */
export interface TrafficGateway {
  readonly namespace: string;
  readonly name: string;
  /** `spec.selector`; empty when absent, which Istio applies to every gateway workload. */
  readonly selector: Readonly<Record<string, string>>;
  readonly servers: readonly TrafficGatewayServer[];
}

export interface TrafficGatewayServer {
  /** `port.number`; undefined when absent or not an integer. */
  readonly port: number | undefined;
  /** `bind`; `''` when absent. */
  readonly bind: string;
  /** `hosts` as written, `namespace/host` forms included. */
  readonly hosts: readonly string[];
}

/** The annotation that limits which namespaces see a Service, as ServiceEntry's exportTo does. */
export const EXPORT_TO_ANNOTATION = 'networking.istio.io/exportTo';

/** Namespace assumed for an object without one: where `kubectl apply` puts it by default. */
export const DEFAULT_NAMESPACE = 'default';

// ---------------------------------------------------------------------------------------------
// Reading objects
// ---------------------------------------------------------------------------------------------

function namespaceOf(object: KubeObject, fallback = DEFAULT_NAMESPACE): string {
  const namespace = isRecord(object.metadata) ? object.metadata.namespace : undefined;
  return typeof namespace === 'string' && namespace !== '' ? namespace : fallback;
}

function nameOf(object: KubeObject): string | undefined {
  const name = isRecord(object.metadata) ? object.metadata.name : undefined;
  return typeof name === 'string' && name !== '' ? name : undefined;
}

/** The Service, or undefined when the object is not a readable Service. */
export function toTrafficService(object: KubeObject): TrafficService | undefined {
  const name = nameOf(object);
  if (name === undefined) return undefined;
  const spec = isRecord(object.spec) ? object.spec : {};
  const selector = stringMap(spec.selector);
  const ports = readServicePorts(object).map((entry): TrafficServicePort => {
    const target = entry.item.targetPort;
    return {
      name: entry.name,
      port: entry.port,
      protocol: entry.protocol,
      targetPort: typeof target === 'number' || typeof target === 'string' ? target : undefined,
    };
  });
  const annotations = isRecord(object.metadata) && isRecord(object.metadata.annotations) ? object.metadata.annotations : {};
  const exportTo = annotations[EXPORT_TO_ANNOTATION];
  return {
    namespace: namespaceOf(object),
    name,
    selector,
    ports,
    exportTo: typeof exportTo === 'string' && exportTo !== '' ? exportTo.split(',') : [],
  };
}

export function toTrafficServiceEntry(object: KubeObject): TrafficServiceEntry | undefined {
  const spec = isRecord(object.spec) ? object.spec : undefined;
  if (!spec) return undefined;
  const ports = Array.isArray(spec.ports)
    ? spec.ports.flatMap((port: unknown) => (isRecord(port) && typeof port.number === 'number' ? [port.number] : []))
    : [];
  return { namespace: namespaceOf(object), name: nameOf(object) ?? '', hosts: stringList(spec.hosts), exportTo: stringList(spec.exportTo), ports };
}

/** The Gateway, or undefined when the object has no name. */
export function toTrafficGateway(object: KubeObject): TrafficGateway | undefined {
  const name = nameOf(object);
  if (name === undefined) return undefined;
  const spec = isRecord(object.spec) ? object.spec : {};
  return { namespace: namespaceOf(object), name, selector: stringMap(spec.selector) ?? {}, servers: trafficGatewayServers(object) };
}

/** `spec.servers` of a Gateway, in order; entries that are not objects are left out. */
export function trafficGatewayServers(object: KubeObject): TrafficGatewayServer[] {
  const spec = isRecord(object.spec) ? object.spec : {};
  const servers = Array.isArray(spec.servers) ? spec.servers : [];
  return servers.flatMap((server: unknown) => toTrafficGatewayServer(server) ?? []);
}

/** One entry of a Gateway's `spec.servers`; undefined when it is not an object. */
export function toTrafficGatewayServer(server: unknown): TrafficGatewayServer | undefined {
  if (!isRecord(server)) return undefined;
  const number = isRecord(server.port) ? server.port.number : undefined;
  return {
    port: typeof number === 'number' && Number.isInteger(number) ? number : undefined,
    bind: typeof server.bind === 'string' ? server.bind : '',
    hosts: stringList(server.hosts),
  };
}

/** A selector as a plain string map; undefined when absent, empty, or not all string values. */
export function stringMap(value: unknown): Record<string, string> | undefined {
  if (!isRecord(value)) return undefined;
  const entries = Object.entries(value);
  if (entries.length === 0 || entries.some(([, v]) => typeof v !== 'string')) return undefined;
  return Object.fromEntries(entries) as Record<string, string>;
}

function isKind(object: KubeObject, group: string, kind: string): boolean {
  if (object.kind !== kind || typeof object.apiVersion !== 'string') return false;
  const slash = object.apiVersion.indexOf('/');
  return (slash < 0 ? '' : object.apiVersion.slice(0, slash)) === group;
}

// ---------------------------------------------------------------------------------------------
// Matching rules shared by both worlds
// ---------------------------------------------------------------------------------------------

/**
 * How a Service's selector relates to a Gateway's, or undefined when it selects other pods.
 * Istio counts a Service when it selects a pod the Gateway selects. Pods are not cached, so:
 * - `same` or `subset` (every pair of the Service's selector is in the Gateway's): every pod
 *   the Gateway selects carries those labels, so the Service selects it — certain;
 * - `superset` (the Service's selector holds every pair of the Gateway's and more): it selects
 *   those pods when they carry its other labels too — true of Istio's gateway deployments.
 */
export function gatewaySelectorMatch(
  service: TrafficService,
  gatewaySelector: Readonly<Record<string, string>>,
): 'same' | 'subset' | 'superset' | undefined {
  return selectorMatch(service.selector, gatewaySelector, Object.keys(gatewaySelector));
}

/**
 * gatewaySelectorMatch with the gateway's label names read once: servingServices calls it for
 * every Service of the cluster per Gateway judged, so it allocates nothing and stops at the
 * first label that differs. Plain lookups are exact here: every label value is a string
 * (stringMap), and an inherited property never is.
 */
function selectorMatch(
  selector: Readonly<Record<string, string>> | undefined,
  gatewaySelector: Readonly<Record<string, string>>,
  gatewayKeys: readonly string[],
): 'same' | 'subset' | 'superset' | undefined {
  // A Service without a selector has its endpoints managed by hand: it selects no pods.
  if (selector === undefined || gatewayKeys.length === 0) return undefined;
  let isSuperset = true;
  for (const key of gatewayKeys) {
    if (selector[key] !== gatewaySelector[key]) {
      isSuperset = false;
      break;
    }
  }
  let isSubset = true;
  for (const key in selector) {
    if (gatewaySelector[key] !== selector[key]) {
      isSubset = false;
      break;
    }
  }
  if (isSubset && isSuperset) return 'same';
  return isSubset ? 'subset' : isSuperset ? 'superset' : undefined;
}

const MATCH_ORDER = { same: 0, subset: 1, superset: 2 } as const;

/**
 * The Services that serve a gateway's pods, best match first (then by namespace and name):
 * the first is the one a fix should patch.
 */
export function servingServices(services: Iterable<TrafficService>, gatewaySelector: Readonly<Record<string, string>>): TrafficService[] {
  const matches: { service: TrafficService; rank: number }[] = [];
  const gatewayKeys = Object.keys(gatewaySelector);
  for (const service of services) {
    const match = selectorMatch(service.selector, gatewaySelector, gatewayKeys);
    if (match !== undefined) matches.push({ service, rank: MATCH_ORDER[match] });
  }
  matches.sort((a, b) => a.rank - b.rank || a.service.namespace.localeCompare(b.service.namespace) || a.service.name.localeCompare(b.service.name));
  return matches.map((match) => match.service);
}

/**
 * Istio's `host.Name.SubsetOf`: whether every name `host` stands for is also matched by
 * `pattern`. `*.example.com` covers `a.example.com` and `*.a.example.com`, `*` covers all,
 * a plain name covers only itself. Exact string comparison, as Istio's: it admits only
 * lower-case names, so folding case here would pass what it rejects.
 */
export function hostCoveredBy(host: string, pattern: string): boolean {
  if (pattern.startsWith('*')) {
    return host.startsWith('*')
      ? host.length >= pattern.length && host.endsWith(pattern.slice(1))
      : host.endsWith(pattern.slice(1));
  }
  return !host.startsWith('*') && host === pattern;
}

// ---------------------------------------------------------------------------------------------
// The offline world
// ---------------------------------------------------------------------------------------------

export interface OfflineWorldOptions {
  /** See TrafficWorld.complete; false for plain `check`. */
  readonly complete?: boolean;
}

/**
 * A world built from a list of objects: Services (core v1), Gateways, ServiceEntries,
 * DestinationRules and VirtualServices (networking.istio.io, any version). Objects of other
 * kinds are ignored. When two objects share a namespace and name, the later one wins (pass
 * cluster objects first, files last).
 */
export function worldFromObjects(objects: Iterable<KubeObject>, options: OfflineWorldOptions = {}): TrafficWorld {
  const builder = new OfflineWorldBuilder();
  for (const object of objects) builder.add(object);
  return builder.world(options);
}

/**
 * worldFromObjects one object at a time: each object is turned into the view the rules read
 * as it is added, so a caller reading the cluster page by page (`audit`) never holds the
 * objects and the views of all of them at once.
 */
export class OfflineWorldBuilder {
  private readonly services = new Map<string, TrafficService>();
  private readonly gateways = new GatewayIndex();
  private readonly serviceEntries = new Map<string, TrafficServiceEntry>();
  private readonly destinationRules = new DestinationRuleIndex();
  private readonly meshHosts = new MeshHostIndex();
  private unnamed = 0;

  add(object: KubeObject): void {
    if (object === null || typeof object !== 'object') return;
    if (isKind(object, '', 'Service')) {
      const service = toTrafficService(object);
      if (service) this.services.set(key(service.namespace, service.name), service);
    } else if (isKind(object, ISTIO_NETWORKING_GROUP, 'Gateway')) {
      const gateway = toTrafficGateway(object);
      if (gateway) this.gateways.set(nameKey(gateway.namespace, gateway.name), gateway);
    } else if (isKind(object, ISTIO_NETWORKING_GROUP, 'ServiceEntry')) {
      const entry = toTrafficServiceEntry(object);
      if (entry) this.serviceEntries.set(key(entry.namespace, nameOf(object) ?? `#${this.serviceEntries.size}`), entry);
    } else if (isKind(object, ISTIO_NETWORKING_GROUP, 'DestinationRule')) {
      this.destinationRules.set(key(namespaceOf(object), nameOf(object) ?? `#${this.unnamed++}`), toTrafficDestinationRule(object));
    } else if (isKind(object, ISTIO_NETWORKING_GROUP, 'VirtualService')) {
      // An unnamed VirtualService cannot be told from the one judged: it takes part in no conflict.
      const name = nameOf(object);
      if (name !== undefined) this.meshHosts.set(key(namespaceOf(object), name), readMeshHosts(object, namespaceOf(object)));
    }
  }

  /** The world of the objects added so far; objects added later are seen by it too. */
  world(options: OfflineWorldOptions = {}): TrafficWorld {
    const { services, gateways, serviceEntries, destinationRules, meshHosts } = this;
    return {
      available: true,
      unavailableReason: undefined,
      complete: options.complete ?? false,
      servicesServingGateway: (selector) => servingServices(services.values(), selector),
      findService: (namespace, name) => services.get(key(namespace, name)),
      gatewayExists: (namespace, name) => gateways.find(namespace, name) !== undefined,
      gatewayNamespaces: (name) => gateways.namespacesOf(name),
      findGateway: (namespace, name) => gateways.find(namespace, name),
      gatewaysListening: (port, bind, host) => gateways.listening(port, bind, host),
      serviceEntries: () => [...serviceEntries.values()],
      destinationRulesFor: (hostKey) => destinationRules.forHostKey(hostKey),
      meshHostConflicts: (host, self) => meshHosts.conflicts(host, self),
    };
  }
}

/** A world that cannot be consulted, with the reason given to users. */
export function unavailableWorld(reason: string): TrafficWorld {
  return {
    available: false,
    unavailableReason: reason,
    complete: false,
    servicesServingGateway: () => [],
    findService: () => undefined,
    gatewayExists: () => false,
    gatewayNamespaces: () => [],
    findGateway: () => undefined,
    gatewaysListening: () => [],
    serviceEntries: () => [],
    destinationRulesFor: () => [],
    meshHostConflicts: () => undefined,
  };
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------


/** The one warning that replaces the cluster-aware rules when the world is unavailable. */
export function unavailableViolation(kind: 'Gateway' | 'VirtualService' | 'DestinationRule', world: TrafficWorld): Violation {
  const checks = kind === 'Gateway'
    ? 'whether a Service exposes its ports'
    : kind === 'DestinationRule'
      ? 'whether a Service or ServiceEntry has its host'
      : 'its destinations, gateways and hosts';
  const reason = world.unavailableReason ?? 'the cluster state is unavailable';
  const rule = 'traffic-checks-unavailable';
  return {
    rule,
    severity: 'warning',
    field: 'spec',
    // A warning never blocks, so grandfathering needs no finer identity than the rule and kind.
    identity: `${rule}|${kind}`,
    ...fitMessage(
      rule,
      `could not check ${checks} because ${reason}; the other checks ran. ` +
        `Verify later with: mesh-admission check --cluster -f <file>`,
      `could not check ${checks} because ${reason}; verify later with: mesh-admission check --cluster -f <file>`,
      `could not check ${checks}: the cluster state is unavailable; verify later with: mesh-admission check --cluster`,
    ),
  };
}

function key(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}
