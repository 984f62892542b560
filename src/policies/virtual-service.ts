/**
 * Istio VirtualService checks (the README's Istio traffic rules).
 *
 * Structural rules, always run:
 * - `virtualservice-sni-hosts` (error): a TLS route's `sniHosts` entry is not within `spec.hosts`
 *   (Istio's validation rejects the route);
 * - `virtualservice-sni-host-address` (warning): an `sniHosts` entry is an IP address (Istio's
 *   validation warns, IST0133);
 * - the rest of Istio's validation of a VirtualService on its own, errors:
 *   virtual-service-validation.ts.
 * Cluster-aware rules, run when a TrafficWorld is given, all warnings (GitOps tools often apply a
 * VirtualService before the Service it routes to):
 * - `virtualservice-destination-not-found` (IST0101): a route's (or mirror's) destination host matches no
 *   Service and no ServiceEntry, resolved as Istio resolves it (src/policies/destination-hosts.ts);
 * - `virtualservice-port-not-found` (IST0101 `host:port`): the Service or ServiceEntry has no such port;
 * - `virtualservice-port-required` (IST0112): it has several ports, the route names none;
 * - `virtualservice-gateway-not-found` (IST0101): a referenced Gateway does not exist;
 * - `virtualservice-subset-not-found` (IST0101 host+subset): no DestinationRule for the host
 *   defines the route's subset (src/policies/virtual-service-subsets.ts);
 * - `virtualservice-mesh-host-conflict` (IST0109): another VirtualService bound to the mesh
 *   defines the same host for the same namespaces (src/policies/mesh-hosts.ts).
 *
 * Pure: no I/O; never throws on untrusted input.
 */
import { isIP } from 'node:net';
import { quote } from './service-ports.ts';
import { CLUSTER_DOMAIN, DestinationResolver, fullyQualifiedHost, serviceNameOf, type DestinationTarget } from './destination-hosts.ts';
import {
  unavailableViolation,
  type TrafficService,
  type TrafficWorld,
} from './traffic-world.ts';
import { HostPatterns } from './host-patterns.ts';
import { isRecord, stringList, type KubeObject, type Violation } from './types.ts';
import { LazilyWorded } from './messages.ts';
import { virtualServiceValidationViolations } from './virtual-service-validation.ts';
import { subsetViolations } from './virtual-service-subsets.ts';
import { meshHostViolations, readMeshHosts } from './mesh-hosts.ts';

const ROUTE_SECTIONS = ['http', 'tls', 'tcp'] as const;

/** One `route[].destination` of an http, tls or tcp route, or an http mirror. */
export interface RouteDestination {
  /** Field path of the destination, e.g. `spec.http[0].route[1].destination` or `spec.http[0].mirror`. */
  readonly path: string;
  readonly host: string;
  readonly port: number | undefined;
  /** `subset`; undefined when absent or empty. */
  readonly subset: string | undefined;
}

/**
 * A destination written without a host is kept with host '': Istio looks up the empty host
 * like any other and reports it, and such a route sends traffic nowhere. Only a mirror that is
 * not written at all is no destination (`required` false).
 */
function readDestination(path: string, destination: unknown, required: boolean): RouteDestination | undefined {
  if (destination === undefined && !required) return undefined;
  const { host, port, subset } = isRecord(destination) ? destination : {};
  const number = isRecord(port) ? port.number : undefined;
  return {
    path,
    host: typeof host === 'string' ? host : '',
    port: typeof number === 'number' && Number.isInteger(number) && number > 0 ? number : undefined,
    subset: typeof subset === 'string' && subset !== '' ? subset : undefined,
  };
}

/** Route destinations of every section, then the http mirrors: traffic goes to both. */
function readDestinations(virtualService: KubeObject): RouteDestination[] {
  const spec = isRecord(virtualService.spec) ? virtualService.spec : {};
  const destinations: RouteDestination[] = [];
  const push = (destination: RouteDestination | undefined) => {
    if (destination) destinations.push(destination);
  };
  for (const section of ROUTE_SECTIONS) {
    const routes = spec[section];
    if (!Array.isArray(routes)) continue;
    routes.forEach((route: unknown, i) => {
      if (!isRecord(route) || !Array.isArray(route.route)) return;
      route.route.forEach((weighted: unknown, j) => {
        if (isRecord(weighted)) push(readDestination(`spec.${section}[${i}].route[${j}].destination`, weighted.destination, true));
      });
    });
  }
  if (Array.isArray(spec.http)) {
    spec.http.forEach((route: unknown, i) => {
      if (!isRecord(route)) return;
      push(readDestination(`spec.http[${i}].mirror`, route.mirror, false));
      if (!Array.isArray(route.mirrors)) return;
      route.mirrors.forEach((mirror: unknown, j) => {
        if (isRecord(mirror)) push(readDestination(`spec.http[${i}].mirrors[${j}].destination`, mirror.destination, true));
      });
    });
  }
  return destinations;
}

/**
 * All VirtualService rules. `namespace` is where the VirtualService lives (short names and
 * gateway references resolve there). Without `world` only the structural rules run; with an
 * unavailable world the cluster-aware rules become one warning.
 */
export function validateVirtualService(virtualService: KubeObject, namespace: string, world?: TrafficWorld): Violation[] {
  const violations = virtualServiceValidationViolations(virtualService).concat(sniHostViolations(virtualService));
  if (!world) return violations;
  const destinations = readDestinations(virtualService);
  const gateways = readGatewayRefs(virtualService);
  const meshHosts = readMeshHosts(virtualService, namespace);
  if (destinations.length === 0 && gateways.length === 0 && meshHosts === undefined) return violations;
  if (!world.available) return [...violations, unavailableViolation('VirtualService', world)];

  const seen = new Set<string>();
  const add = (violation: Violation | undefined) => {
    // One warning per problem: ten routes to the same missing host are one fix.
    if (violation && !seen.has(violation.identity)) {
      seen.add(violation.identity);
      violations.push(violation);
    }
  };
  const spec = isRecord(virtualService.spec) ? virtualService.spec : {};
  const exportTo = stringList(spec.exportTo);
  const resolver = new DestinationResolver(world, namespace, exportTo);
  // The same host and port give the same findings: each pair is looked at once.
  const checked = new Set<string>();
  for (const destination of destinations) {
    const pair = `${destination.port ?? ''}/${destination.host}`;
    if (checked.has(pair)) continue;
    checked.add(pair);
    for (const violation of destinationViolations(destination, namespace, world, resolver)) add(violation);
  }
  for (const violation of subsetViolations(destinations, namespace, world)) add(violation);
  for (const ref of gateways) add(gatewayViolation(ref, namespace, world));
  if (meshHosts) {
    const name = isRecord(virtualService.metadata) && typeof virtualService.metadata.name === 'string' ? virtualService.metadata.name : '';
    for (const violation of meshHostViolations(meshHosts, `${namespace}/${name}`, world)) add(violation);
  }
  return violations;
}

// ---------------------------------------------------------------------------------------------
// Destinations
// ---------------------------------------------------------------------------------------------

function destinationViolations(destination: RouteDestination, namespace: string, world: TrafficWorld, resolver: DestinationResolver): Violation[] {
  const target = resolver.resolve(destination.host);
  if (target) return portViolations(destination, target);
  return [destinationNotFound(destination, namespace, world)];
}

/**
 * The Service a host with dots was probably meant to name: `reviews.shop` and
 * `reviews.shop.svc` look like Kubernetes DNS names, but Istio takes them literally.
 */
function intendedService(host: string, world: TrafficWorld): TrafficService | undefined {
  const parts = host.split('.');
  if (parts.length !== 2 && !(parts.length === 3 && parts[2] === 'svc')) return undefined;
  return world.findService(parts[1] as string, parts[0] as string);
}

function destinationNotFound(destination: RouteDestination, namespace: string, world: TrafficWorld): Violation {
  const rule = 'virtualservice-destination-not-found';
  const path = `${destination.path}.host`;
  return new LazilyWorded(rule, 'warning', path, `${rule}|${destination.host}`, () => destinationNotFoundWords(path, destination.host, namespace, world));
}

function destinationNotFoundWords(path: string, destinationHost: string, namespace: string, world: TrafficWorld): string[] {
  const host = quote(destinationHost);
  const fqdn = fullyQualifiedHost(destinationHost, namespace);
  const ref = serviceNameOf(fqdn);
  const intended = ref ? undefined : intendedService(destinationHost, world);
  const variants = destinationHost === ''
    ? [
        `${path}: the destination has no host, so Istio routes this traffic nowhere (IST0101); set it to the Service, e.g. <name>.<namespace>.svc.${CLUSTER_DOMAIN}.`,
        `${path}: the destination has no host (IST0101); set it to the Service.`,
      ]
    : intended
    ? (() => {
        const full = quote(`${intended.name}.${intended.namespace}.svc.${CLUSTER_DOMAIN}`);
        return [
          `${path}: Istio takes a host with a dot literally, so ${host} is not Service ${intended.namespace}/${intended.name} ` +
            `and routes nowhere (IST0101); write ${full}.`,
          `${path}: Istio takes ${host} literally, not as Service ${intended.namespace}/${intended.name} (IST0101); write ${full}.`,
          `${host} is taken literally and matches nothing (IST0101); write ${full}.`,
        ];
      })()
    : ref
    ? [
        `${path}: ${host} matches no Service (looked for ${ref.namespace}/${ref.name}) and no ServiceEntry, so ` +
          `Istio cannot route it (IST0101); create the Service, fix the host, or add a ServiceEntry.`,
        `${path}: no Service ${ref.namespace}/${ref.name} and no ServiceEntry for ${host} (IST0101); ` +
          `create the Service, fix the host, or add a ServiceEntry.`,
        `no Service ${ref.namespace}/${ref.name} and no ServiceEntry for ${host} (IST0101); ` +
          `create the Service, fix the host, or add a ServiceEntry.`,
      ]
    : [
        `${path}: ${host} matches no Service and no ServiceEntry, so Istio cannot route it (IST0101); for an ` +
          `external host add a ServiceEntry, for a Service use <name>.<namespace>.svc.${CLUSTER_DOMAIN}.`,
        `${path}: ${host} matches no Service and no ServiceEntry (IST0101); add a ServiceEntry for it.`,
        `${host} matches no Service and no ServiceEntry (IST0101); add a ServiceEntry for it.`,
      ];
  return [...variants, `${path}: the host matches no Service and no ServiceEntry (IST0101).`];
}

function portViolations(destination: RouteDestination, target: DestinationTarget): Violation[] {
  const ports = target.ports;
  if (destination.port === undefined) {
    return ports.length > 1 ? [portRequired(destination, target)] : [];
  }
  // A Service without ports is no exception: Istio has no port of it to route to either.
  if (ports.includes(destination.port)) return [];
  return [portNotFound(destination, destination.port, target)];
}

/** A message never shows more ports than fit in one warning; the rest are elided. */
const LISTED_PORTS = 16;

/** `Service ns/name` or `ServiceEntry ns/name`, and its ports with and without names. */
function describeTarget(target: DestinationTarget): { owner: string; named: string; numbers: string } {
  const more = target.ports.length > LISTED_PORTS ? ', ...' : '';
  const numbers = target.ports.slice(0, LISTED_PORTS).join(', ') + more;
  if (target.kind === 'ServiceEntry') {
    return { owner: `ServiceEntry ${target.entry.namespace}/${target.entry.name}`, named: numbers, numbers };
  }
  const { service } = target;
  const named = service.ports.slice(0, LISTED_PORTS).map((port) => (port.name ? `${port.port} (${port.name})` : String(port.port))).join(', ') + more;
  return { owner: `Service ${service.namespace}/${service.name}`, named, numbers };
}

function portNotFound(destination: RouteDestination, port: number, target: DestinationTarget): Violation {
  const rule = 'virtualservice-port-not-found';
  const path = `${destination.path}.port.number`;
  return new LazilyWorded(rule, 'warning', path, `${rule}|${destination.host}|${port}`, () => {
    const { owner, named, numbers } = describeTarget(target);
    const hostPort = quote(`${destination.host}:${port}`);
    return [
      `${path}: ${owner} has no port ${port}, so Istio cannot route ${hostPort} (IST0101); ` +
        `use one of its ports: ${named}.`,
      `${path}: ${owner} has no port ${port} (IST0101 ${hostPort}); use one of: ${numbers}.`,
      `${path}: ${owner} has no port ${port} (IST0101); use one of: ${numbers}`,
      `${path}: the destination ${target.kind} has no port ${port} (IST0101).`,
    ];
  });
}

function portRequired(destination: RouteDestination, target: DestinationTarget): Violation {
  const rule = 'virtualservice-port-required';
  const path = destination.path;
  return new LazilyWorded(rule, 'warning', `${path}.port`, `${rule}|${destination.host}`, () => {
    const { owner, named, numbers } = describeTarget(target);
    return [
      `${path}: ${owner} has several ports (${named}), so Istio needs to be told which one ` +
        `(IST0112); set port.number.`,
      `${path}: ${owner} has several ports (${numbers}); set port.number (IST0112).`,
      `${path}: the destination ${target.kind} has several ports; set port.number (IST0112).`,
    ];
  });
}

// ---------------------------------------------------------------------------------------------
// Gateways
// ---------------------------------------------------------------------------------------------

export interface GatewayRef {
  readonly index: number;
  readonly ref: string;
}

export function readGatewayRefs(virtualService: KubeObject): GatewayRef[] {
  const spec = isRecord(virtualService.spec) ? virtualService.spec : {};
  if (!Array.isArray(spec.gateways)) return [];
  return spec.gateways.flatMap((ref: unknown, index) =>
    // `mesh` is the reserved name for all sidecars, not a Gateway object.
    typeof ref === 'string' && ref !== '' && ref !== 'mesh' ? [{ index, ref }] : [],
  );
}

/** `name` (the VirtualService's namespace), `namespace/name`, or the legacy `name.namespace[...]`. */
export function gatewayRefTarget(ref: string, namespace: string): { namespace: string; name: string } {
  const slash = ref.indexOf('/');
  if (slash >= 0) return { namespace: ref.slice(0, slash), name: ref.slice(slash + 1) };
  const [name, legacyNamespace] = ref.split('.');
  return { namespace: legacyNamespace || namespace, name: name ?? ref };
}

/**
 * Istio names the Gateways it generates for a Kubernetes Gateway `<name>~istio-autogenerated-k8s-gateway~<listener>`:
 * they come and go with the Kubernetes Gateway's listeners, so a VirtualService must not bind to one.
 */
const GENERATED_GATEWAY_MARK = '~istio-autogenerated-k8s-gateway~';

/** Whether `ref` names a Gateway Istio generates for a Kubernetes Gateway. */
export function isGeneratedGatewayRef(ref: string): boolean {
  return (ref.split('/').at(-1) ?? '').includes(GENERATED_GATEWAY_MARK);
}

function gatewayViolation({ index, ref }: GatewayRef, namespace: string, world: TrafficWorld): Violation | undefined {
  const rule = 'virtualservice-gateway-not-found';
  const path = `spec.gateways[${index}]`;
  if (isGeneratedGatewayRef(ref)) {
    return new LazilyWorded(rule, 'warning', path, `${rule}|${ref}`, () => [
      `${path}: ${quote(ref)} is a Gateway Istio generates for a Kubernetes Gateway, not one to bind to (IST0165); attach the route to the Kubernetes Gateway (an HTTPRoute parentRef) or reference an Istio Gateway.`,
      `${path}: ${quote(ref)} is a Gateway Istio generates internally (IST0165); reference an Istio Gateway instead.`,
      `${path}: the reference is to a Gateway Istio generates internally (IST0165); reference an Istio Gateway instead.`,
    ]);
  }
  const target = gatewayRefTarget(ref, namespace);
  if (world.gatewayExists(target.namespace, target.name)) return undefined;
  const gateway = `${target.namespace}/${target.name}`;
  return new LazilyWorded(rule, 'warning', path, `${rule}|${gateway}`, () => {
    const elsewhere = world.gatewayNamespaces(target.name).filter((ns) => ns !== target.namespace);
    const fix =
      elsewhere.length > 0
        ? `create it, or write "${elsewhere[0]}/${target.name}": a Gateway ${target.name} exists in ${elsewhere.join(', ')}`
        : ref.includes('/')
          ? 'create it or fix the reference'
          : `create it, or write "<namespace>/${target.name}" for a Gateway in another namespace`;
    return [
      `${path}: Gateway ${gateway} does not exist, so this VirtualService gets no traffic through it (IST0101); ${fix}.`,
      `${path}: Gateway ${gateway} does not exist (IST0101); ${fix}.`,
      `${path}: the referenced Gateway does not exist (IST0101); create it or fix the reference.`,
    ];
  });
}

// ---------------------------------------------------------------------------------------------
// virtualservice-sni-hosts, virtualservice-sni-host-address
// ---------------------------------------------------------------------------------------------

function sniHostViolations(virtualService: KubeObject): Violation[] {
  const spec = isRecord(virtualService.spec) ? virtualService.spec : {};
  const hosts = stringList(spec.hosts);
  const routes = Array.isArray(spec.tls) ? spec.tls : [];
  const violations: Violation[] = [];
  // Built once per object: every SNI host is then checked in time linear in its length.
  let patterns: HostPatterns | undefined;
  routes.forEach((route: unknown, i) => {
    if (!isRecord(route) || !Array.isArray(route.match)) return;
    route.match.forEach((match: unknown, k) => {
      if (!isRecord(match) || !Array.isArray(match.sniHosts)) return;
      match.sniHosts.forEach((sni: unknown, m) => {
        if (typeof sni !== 'string') return;
        const path = `spec.tls[${i}].match[${k}].sniHosts[${m}]`;
        // Istio accepts an IP here with a warning and does not compare it with spec.hosts.
        if (isIP(sni) !== 0) {
          violations.push(sniIsAddress(path, sni));
          return;
        }
        patterns ??= new HostPatterns(hosts);
        if (patterns.covers(sni)) return;
        violations.push(sniNotCovered(path, sni, hosts));
      });
    });
  });
  return violations;
}

/**
 * A message shows at most this much of spec.hosts (one admission warning holds 256
 * characters), so describing it costs the same for ten hosts or ten thousand.
 */
const LISTED_HOSTS_LENGTH = 36;

/** How a message describes spec.hosts: empty, or the first hosts quoted, as many as fit. */
function listHosts(hosts: readonly string[]): string {
  if (hosts.length === 0) return 'spec.hosts is empty';
  const shown: string[] = [];
  let length = 0;
  for (const host of hosts) {
    const quoted = quote(host.length > LISTED_HOSTS_LENGTH ? `${host.slice(0, LISTED_HOSTS_LENGTH)}...` : host);
    if (shown.length > 0 && length + quoted.length + 2 > LISTED_HOSTS_LENGTH) {
      return `not covered by spec.hosts (${shown.join(', ')}, ...)`;
    }
    shown.push(quoted);
    length += quoted.length + 2;
  }
  return `not covered by spec.hosts (${shown.join(', ')})`;
}

function sniIsAddress(path: string, sni: string): Violation {
  const rule = 'virtualservice-sni-host-address';
  const fix = 'TLS clients send a host name in SNI, not an address, so this match rarely matches (IST0133); use the host name the clients connect to.';
  return new LazilyWorded(rule, 'warning', path, `${rule}|ip|${sni}`, () => [`${path}: SNI host ${quote(sni)} is an IP address; ${fix}`, `${path}: the SNI host is an IP address; ${fix}`]);
}

function sniNotCovered(path: string, sni: string, hosts: readonly string[]): Violation {
  const rule = 'virtualservice-sni-hosts';
  return new LazilyWorded(rule, 'error', path, `${rule}|${sni}`, () => {
    const wildcard = sni.includes('.') && !sni.startsWith('*') ? ` or a wildcard such as ${quote(`*${sni.slice(sni.indexOf('.'))}`)}` : '';
    const fix = `Istio rejects this route; add ${quote(sni)}${wildcard} to spec.hosts, or fix the SNI host.`;
    return [
      `${path}: SNI host ${quote(sni)} is ${listHosts(hosts)}; ${fix}`,
      `${path}: SNI host ${quote(sni)} is not covered by spec.hosts; ${fix}`,
      `${path}: the SNI host is not covered by spec.hosts; add it to spec.hosts.`,
    ];
  });
}
