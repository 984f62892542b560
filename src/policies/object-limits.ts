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
 * judged at once ran the webhook out of heap under its 256 MiB limit, while 16 of 30,000 are
 * answered within it (`npm run test:limits` measures both).
 */
export const MAX_VIRTUAL_SERVICE_HOSTS = 30_000;

/** Why the object is beyond what the webhook judges, or undefined when it is not. */
export function exceededLimit(kind: string, object: KubeObject): string | undefined {
  if (kind === 'Service' && isRecord(object.spec) && Array.isArray(object.spec.ports) && object.spec.ports.length > MAX_SERVICE_PORTS) {
    return `it has ${object.spec.ports.length} ports; mesh-admission judges Services of at most ${MAX_SERVICE_PORTS} ports (an EndpointSlice holds at most 100): split it into several Services`;
  }
  if (kind === 'Namespace' && isRecord(object.metadata) && isRecord(object.metadata.labels)) {
    const labels = countKeys(object.metadata.labels, MAX_LABELS + 1);
    if (labels > MAX_LABELS) return `it has more than ${MAX_LABELS} labels; mesh-admission judges Namespaces of at most ${MAX_LABELS} labels`;
  }
  if (kind === 'VirtualService' && isRecord(object.spec)) {
    const hosts = countVirtualServiceHosts(object.spec);
    if (hosts > MAX_VIRTUAL_SERVICE_HOSTS) {
      return `it lists ${hosts} hosts and sniHosts; mesh-admission judges VirtualServices of at most ${MAX_VIRTUAL_SERVICE_HOSTS}: split it into several VirtualServices`;
    }
  }
  return undefined;
}

/** The entries of `spec.hosts` and of every `spec.tls[].match[].sniHosts` that are lists. */
function countVirtualServiceHosts(spec: Record<string, unknown>): number {
  let count = Array.isArray(spec.hosts) ? spec.hosts.length : 0;
  if (!Array.isArray(spec.tls)) return count;
  for (const route of spec.tls) {
    if (!isRecord(route) || !Array.isArray(route.match)) continue;
    for (const match of route.match) {
      if (isRecord(match) && Array.isArray(match.sniHosts)) count += match.sniHosts.length;
    }
  }
  return count;
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
