/**
 * What one object may cost the webhook. The mutating webhook sees objects before the API
 * server validates them, and anyone who reaches the port can post any object up to the body
 * limit: without a cap, one Service with 120,000 ports made a 57 MB answer and took the
 * process past its memory limit. Objects beyond these limits are refused with a message
 * instead of being judged.
 *
 * Pure: counts what it needs and stops at the limit, so the check itself stays cheap on the
 * largest input.
 */
import { isRecord, type KubeObject } from './types.ts';

/**
 * Ports per Service. Kubernetes sets no number for Services, but a Service only works through
 * its EndpointSlices, and an EndpointSlice holds at most 100 ports: a Service with more cannot
 * have its endpoints published. 1,000 is ten times that, so no working Service is refused,
 * and keeps the rules on the largest allowed Service to a few milliseconds.
 */
export const MAX_SERVICE_PORTS = 1000;

/**
 * Labels per object whose labels the rules copy (Namespaces). Kubernetes sets no number;
 * real objects carry tens. 5,000 keeps the copy and diff of the labels a few milliseconds.
 */
export const MAX_LABELS = 5000;

/**
 * Host names per VirtualService: `spec.hosts` plus the `sniHosts` of every TLS match. Istio
 * sets no number; real VirtualServices list tens. Each name can be a finding of its own, and
 * findings are objects while the object is judged: 16 VirtualServices of 180,000 sniHosts
 * judged at once ran the webhook out of heap under its 256 MiB limit. 10,000, with every other
 * list of a VirtualService at its limit and every entry a finding, keeps one judgement near
 * 50 ms (`npm run bench:judge`; `npm run test:limits` sends 16 at once).
 */
export const MAX_VIRTUAL_SERVICE_HOSTS = 10_000;

/**
 * Servers per Gateway, and hosts across its servers. Istio sets no number; real Gateways list
 * tens of servers, and a Gateway of one server per customer domain a few thousand. Every
 * server can break three rules at once and each finding is an object while the Gateway is
 * judged: 141,000 servers (7 MiB) held the event loop 0.5-1.1 s, a Gateway at these limits
 * with every server a finding is judged in about 40 ms (`npm run bench:judge`).
 */
export const MAX_GATEWAY_SERVERS = 5000;
export const MAX_GATEWAY_HOSTS = 30_000;

/**
 * Routes per VirtualService (`http`, `tls` and `tcp` entries), the destinations and mirrors
 * they send to, and the gateways it binds to. Istio sets no number; real VirtualServices have
 * tens of routes and a few gateways. 100,000 routes to distinct missing hosts held the event
 * loop 0.9-1.4 s; see MAX_VIRTUAL_SERVICE_HOSTS for what all the limits together cost.
 */
export const MAX_VIRTUAL_SERVICE_ROUTES = 5000;
export const MAX_VIRTUAL_SERVICE_DESTINATIONS = 5000;
export const MAX_VIRTUAL_SERVICE_GATEWAYS = 1000;

/** Why the object is beyond what the webhook judges, or undefined when it is not. */
export function exceededLimit(kind: string, object: KubeObject): string | undefined {
  if (kind === 'Service' && isRecord(object.spec) && Array.isArray(object.spec.ports) && object.spec.ports.length > MAX_SERVICE_PORTS) {
    return `it has ${object.spec.ports.length} ports; mesh-admission judges Services of at most ${MAX_SERVICE_PORTS} ports (an EndpointSlice holds at most 100): split it into several Services`;
  }
  if (kind === 'Namespace' && isRecord(object.metadata) && isRecord(object.metadata.labels)) {
    const labels = countKeys(object.metadata.labels, MAX_LABELS + 1);
    if (labels > MAX_LABELS) return `it has more than ${MAX_LABELS} labels; mesh-admission judges Namespaces of at most ${MAX_LABELS} labels`;
  }
  if (kind === 'Gateway' && isRecord(object.spec)) return exceededGatewayLimit(object.spec);
  if (kind === 'VirtualService' && isRecord(object.spec)) return exceededVirtualServiceLimit(object.spec);
  return undefined;
}

const splitGateway = 'split it into several Gateways';
const splitVirtualService = 'split it into several VirtualServices';

function exceededGatewayLimit(spec: Record<string, unknown>): string | undefined {
  const servers = listOf(spec.servers);
  if (servers.length > MAX_GATEWAY_SERVERS) {
    return `it has ${servers.length} servers; mesh-admission judges Gateways of at most ${MAX_GATEWAY_SERVERS} servers: ${splitGateway}`;
  }
  const hosts = servers.reduce((sum: number, server) => sum + (isRecord(server) ? listOf(server.hosts).length : 0), 0);
  if (hosts > MAX_GATEWAY_HOSTS) {
    return `its servers list ${hosts} hosts; mesh-admission judges Gateways of at most ${MAX_GATEWAY_HOSTS}: ${splitGateway}`;
  }
  return undefined;
}

const ROUTE_SECTIONS = ['http', 'tls', 'tcp'] as const;

function exceededVirtualServiceLimit(spec: Record<string, unknown>): string | undefined {
  const hosts = countVirtualServiceHosts(spec);
  if (hosts > MAX_VIRTUAL_SERVICE_HOSTS) {
    return `it lists ${hosts} hosts and sniHosts; mesh-admission judges VirtualServices of at most ${MAX_VIRTUAL_SERVICE_HOSTS}: ${splitVirtualService}`;
  }
  const gateways = listOf(spec.gateways).length;
  if (gateways > MAX_VIRTUAL_SERVICE_GATEWAYS) {
    return `it lists ${gateways} gateways; mesh-admission judges VirtualServices bound to at most ${MAX_VIRTUAL_SERVICE_GATEWAYS}: ${splitVirtualService}`;
  }
  const routes = ROUTE_SECTIONS.reduce((sum, section) => sum + listOf(spec[section]).length, 0);
  if (routes > MAX_VIRTUAL_SERVICE_ROUTES) {
    return `it has ${routes} routes (http, tls and tcp); mesh-admission judges VirtualServices of at most ${MAX_VIRTUAL_SERVICE_ROUTES}: ${splitVirtualService}`;
  }
  let destinations = 0;
  for (const section of ROUTE_SECTIONS) {
    for (const route of listOf(spec[section])) {
      if (!isRecord(route)) continue;
      destinations += listOf(route.route).length + listOf(route.mirrors).length + (isRecord(route.mirror) ? 1 : 0);
    }
  }
  if (destinations > MAX_VIRTUAL_SERVICE_DESTINATIONS) {
    return `its routes have ${destinations} destinations and mirrors; mesh-admission judges VirtualServices of at most ${MAX_VIRTUAL_SERVICE_DESTINATIONS}: ${splitVirtualService}`;
  }
  return undefined;
}

/** The entries of `spec.hosts` and of every `spec.tls[].match[].sniHosts` that are lists. */
function countVirtualServiceHosts(spec: Record<string, unknown>): number {
  let count = listOf(spec.hosts).length;
  for (const route of listOf(spec.tls)) {
    if (!isRecord(route)) continue;
    for (const match of listOf(route.match)) {
      if (isRecord(match)) count += listOf(match.sniHosts).length;
    }
  }
  return count;
}

/** `value` when it is a list, else no entries: the rules read nothing else from it. */
function listOf(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

/** Own keys of `record`, counted up to `stop`: a huge object is not walked to the end. */
function countKeys(record: Record<string, unknown>, stop: number): number {
  let count = 0;
  for (const key in record) {
    if (!Object.hasOwn(record, key)) continue;
    count += 1;
    if (count >= stop) break;
  }
  return count;
}
