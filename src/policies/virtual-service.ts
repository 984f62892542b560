/**
 * Istio VirtualService checks (DESIGN §1.6). All warnings: GitOps tools often apply a
 * VirtualService before the Service it routes to.
 *
 * Structural rule, always run:
 * - `virtualservice-sni-hosts`: a TLS route's `sniHosts` entry is not within `spec.hosts`.
 * Cluster-aware rules, run when a TrafficWorld is given:
 * - `virtualservice-destination-not-found` (IST0101): a route's destination host matches no
 *   Service and no ServiceEntry;
 * - `virtualservice-port-not-found` (IST0101 `host:port`): the Service has no such port;
 * - `virtualservice-port-required` (IST0112): the Service has several ports, the route names none;
 * - `virtualservice-gateway-not-found` (IST0101): a referenced Gateway does not exist.
 *
 * Pure: no I/O; never throws on untrusted input.
 */
import { isIP } from 'node:net';
import { quote } from './service-ports.ts';
import {
  hostCoveredBy,
  unavailableViolation,
  type TrafficService,
  type TrafficWorld,
} from './traffic-world.ts';
import { isRecord, type KubeObject, type Violation } from './types.ts';
import { fitMessage } from './messages.ts';

const ROUTE_SECTIONS = ['http', 'tls', 'tcp'] as const;
const CLUSTER_DOMAIN = 'cluster.local';

/** One `route[].destination` of an http, tls or tcp route. */
interface RouteDestination {
  /** Field path of the destination, e.g. `spec.http[0].route[1].destination`. */
  readonly path: string;
  readonly host: string;
  readonly port: number | undefined;
}

function readDestinations(virtualService: KubeObject): RouteDestination[] {
  const spec = isRecord(virtualService.spec) ? virtualService.spec : {};
  const destinations: RouteDestination[] = [];
  for (const section of ROUTE_SECTIONS) {
    const routes = spec[section];
    if (!Array.isArray(routes)) continue;
    routes.forEach((route: unknown, i) => {
      if (!isRecord(route) || !Array.isArray(route.route)) return;
      route.route.forEach((weighted: unknown, j) => {
        if (!isRecord(weighted) || !isRecord(weighted.destination)) return;
        const { host, port } = weighted.destination;
        if (typeof host !== 'string' || host === '') return;
        const number = isRecord(port) ? port.number : undefined;
        destinations.push({
          path: `spec.${section}[${i}].route[${j}].destination`,
          host,
          port: typeof number === 'number' && Number.isInteger(number) && number > 0 ? number : undefined,
        });
      });
    });
  }
  return destinations;
}

/**
 * The Service a destination host names, or undefined for a host outside the cluster's
 * service names. A short name is in the VirtualService's namespace; `<svc>.<ns>`,
 * `<svc>.<ns>.svc` and `<svc>.<ns>.svc.cluster.local` name a Service in `<ns>`.
 */
export function serviceForHost(host: string, namespace: string): { namespace: string; name: string } | undefined {
  const parts = host.toLowerCase().split('.');
  if (parts.length === 1) return { namespace, name: parts[0] as string };
  const [name, serviceNamespace, ...rest] = parts as [string, string, ...string[]];
  const suffix = rest.join('.');
  if (suffix === '' || suffix === 'svc' || suffix === `svc.${CLUSTER_DOMAIN}`) return { namespace: serviceNamespace, name };
  return undefined;
}

/**
 * All VirtualService rules. `namespace` is where the VirtualService lives (short names and
 * gateway references resolve there). Without `world` only the structural rule runs; with an
 * unavailable world the cluster-aware rules become one warning.
 */
export function validateVirtualService(virtualService: KubeObject, namespace: string, world?: TrafficWorld): Violation[] {
  const violations = sniHostViolations(virtualService);
  if (!world) return violations;
  const destinations = readDestinations(virtualService);
  const gateways = readGatewayRefs(virtualService);
  if (destinations.length === 0 && gateways.length === 0) return violations;
  if (!world.available) return [...violations, unavailableViolation('VirtualService', world)];

  const seen = new Set<string>();
  const add = (violation: Violation | undefined) => {
    // One warning per problem: ten routes to the same missing host are one fix.
    if (violation && !seen.has(violation.identity)) {
      seen.add(violation.identity);
      violations.push(violation);
    }
  };
  for (const destination of destinations) {
    for (const violation of destinationViolations(destination, namespace, world)) add(violation);
  }
  for (const ref of gateways) add(gatewayViolation(ref, namespace, world));
  return violations;
}

// ---------------------------------------------------------------------------------------------
// Destinations
// ---------------------------------------------------------------------------------------------

function destinationViolations(destination: RouteDestination, namespace: string, world: TrafficWorld): Violation[] {
  const host = destination.host;
  // Wildcards and IP addresses name no particular Service.
  if (host.includes('*') || isIP(host) !== 0) return [];
  const ref = serviceForHost(host, namespace);
  const service = ref ? world.findService(ref.namespace, ref.name) : undefined;
  if (service) return portViolations(destination, service);
  if (world.hostCoveredByServiceEntry(host, namespace)) return [];
  return [destinationNotFound(destination, ref)];
}

function destinationNotFound(destination: RouteDestination, ref: { namespace: string; name: string } | undefined): Violation {
  const rule = 'virtualservice-destination-not-found';
  const path = `${destination.path}.host`;
  const host = quote(destination.host);
  const variants = ref
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
  return {
    rule,
    severity: 'warning',
    field: path,
    identity: `${rule}|${destination.host.toLowerCase()}`,
    ...fitMessage(rule, ...variants, `${path}: the host matches no Service and no ServiceEntry (IST0101).`),
  };
}

function portViolations(destination: RouteDestination, service: TrafficService): Violation[] {
  const ports = service.ports;
  if (destination.port === undefined) {
    return ports.length > 1 ? [portRequired(destination, service)] : [];
  }
  if (ports.length === 0 || ports.some((port) => port.port === destination.port)) return [];
  return [portNotFound(destination, destination.port, service)];
}

function listPorts(service: TrafficService): string {
  return service.ports.map((port) => (port.name ? `${port.port} (${port.name})` : String(port.port))).join(', ');
}

function portNotFound(destination: RouteDestination, port: number, service: TrafficService): Violation {
  const rule = 'virtualservice-port-not-found';
  const path = `${destination.path}.port.number`;
  const svc = `${service.namespace}/${service.name}`;
  const hostPort = quote(`${destination.host}:${port}`);
  const numbers = service.ports.map((p) => p.port).join(', ');
  return {
    rule,
    severity: 'warning',
    field: path,
    identity: `${rule}|${destination.host.toLowerCase()}|${port}`,
    ...fitMessage(
      rule,
      `${path}: Service ${svc} has no port ${port}, so Istio cannot route ${hostPort} (IST0101); ` +
        `use one of its ports: ${listPorts(service)}.`,
      `${path}: Service ${svc} has no port ${port} (IST0101 ${hostPort}); use one of: ${numbers}.`,
      `${path}: Service ${svc} has no port ${port} (IST0101); use one of: ${numbers}`,
      `${path}: the destination Service has no port ${port} (IST0101).`,
    ),
  };
}

function portRequired(destination: RouteDestination, service: TrafficService): Violation {
  const rule = 'virtualservice-port-required';
  const svc = `${service.namespace}/${service.name}`;
  const path = destination.path;
  const numbers = service.ports.map((p) => p.port).join(', ');
  return {
    rule,
    severity: 'warning',
    field: `${path}.port`,
    identity: `${rule}|${destination.host.toLowerCase()}`,
    ...fitMessage(
      rule,
      `${path}: Service ${svc} has several ports (${listPorts(service)}), so Istio needs to be told which one ` +
        `(IST0112); set port.number.`,
      `${path}: Service ${svc} has several ports (${numbers}); set port.number (IST0112).`,
      `${path}: the destination Service has several ports; set port.number (IST0112).`,
    ),
  };
}

// ---------------------------------------------------------------------------------------------
// Gateways
// ---------------------------------------------------------------------------------------------

interface GatewayRef {
  readonly index: number;
  readonly ref: string;
}

function readGatewayRefs(virtualService: KubeObject): GatewayRef[] {
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

function gatewayViolation({ index, ref }: GatewayRef, namespace: string, world: TrafficWorld): Violation | undefined {
  const target = gatewayRefTarget(ref, namespace);
  if (world.gatewayExists(target.namespace, target.name)) return undefined;
  const rule = 'virtualservice-gateway-not-found';
  const path = `spec.gateways[${index}]`;
  const gateway = `${target.namespace}/${target.name}`;
  const elsewhere = world.gatewayNamespaces(target.name).filter((ns) => ns !== target.namespace);
  const fix =
    elsewhere.length > 0
      ? `create it, or write "${elsewhere[0]}/${target.name}": a Gateway ${target.name} exists in ${elsewhere.join(', ')}`
      : ref.includes('/')
        ? 'create it or fix the reference'
        : `create it, or write "<namespace>/${target.name}" for a Gateway in another namespace`;
  return {
    rule,
    severity: 'warning',
    field: path,
    identity: `${rule}|${gateway}`,
    ...fitMessage(
      rule,
      `${path}: Gateway ${gateway} does not exist, so this VirtualService gets no traffic through it (IST0101); ${fix}.`,
      `${path}: Gateway ${gateway} does not exist (IST0101); ${fix}.`,
      `${path}: the referenced Gateway does not exist (IST0101); create it or fix the reference.`,
    ),
  };
}

// ---------------------------------------------------------------------------------------------
// virtualservice-sni-hosts
// ---------------------------------------------------------------------------------------------

function sniHostViolations(virtualService: KubeObject): Violation[] {
  const spec = isRecord(virtualService.spec) ? virtualService.spec : {};
  const hosts = Array.isArray(spec.hosts) ? spec.hosts.filter((h): h is string => typeof h === 'string') : [];
  const routes = Array.isArray(spec.tls) ? spec.tls : [];
  const violations: Violation[] = [];
  routes.forEach((route: unknown, i) => {
    if (!isRecord(route) || !Array.isArray(route.match)) return;
    route.match.forEach((match: unknown, k) => {
      if (!isRecord(match) || !Array.isArray(match.sniHosts)) return;
      match.sniHosts.forEach((sni: unknown, m) => {
        if (typeof sni !== 'string' || hosts.some((host) => hostCoveredBy(sni, host))) return;
        violations.push(sniNotCovered(`spec.tls[${i}].match[${k}].sniHosts[${m}]`, sni, hosts));
      });
    });
  });
  return violations;
}

function sniNotCovered(path: string, sni: string, hosts: readonly string[]): Violation {
  const rule = 'virtualservice-sni-hosts';
  const listed = hosts.length === 0 ? 'spec.hosts is empty' : `not covered by spec.hosts (${hosts.map(quote).join(', ')})`;
  const wildcard = sni.includes('.') && !sni.startsWith('*') ? ` or a wildcard such as ${quote(`*${sni.slice(sni.indexOf('.'))}`)}` : '';
  const fix = `Istio rejects this route; add ${quote(sni)}${wildcard} to spec.hosts, or fix the SNI host.`;
  return {
    rule,
    severity: 'warning',
    field: path,
    identity: `${rule}|${sni.toLowerCase()}`,
    ...fitMessage(
      rule,
      `${path}: SNI host ${quote(sni)} is ${listed}; ${fix}`,
      `${path}: SNI host ${quote(sni)} is not covered by spec.hosts; ${fix}`,
      `${path}: the SNI host is not covered by spec.hosts; add it to spec.hosts.`,
    ),
  };
}
