/**
 * `virtualservice-host-not-in-gateway` (warning, Istio IST0132): a Gateway the VirtualService
 * binds to lists none of its hosts, so the gateway never routes a request to it.
 *
 * The hosts a Gateway offers a VirtualService of namespace N: each server host as written,
 * where `./host` means the Gateway's own namespace, `*` before the slash every namespace and
 * another name that namespace only; `N/host` and `* /host` offer `host`, a host of another
 * namespace offers nothing. A VirtualService host and a Gateway host match when they are equal
 * or one wildcard covers the other (`*.example.com` and `a.example.com` either way round).
 * Hosts are compared as written: a short VirtualService host is not expanded.
 *
 * A reference to a missing Gateway is left to `virtualservice-gateway-not-found`, and `mesh`
 * and the Gateways Istio generates are no Gateway objects to look into.
 *
 * Pure: no I/O; never throws on untrusted input.
 */
import { quote } from './service-ports.ts';
import { HostPatterns } from './host-patterns.ts';
import type { TrafficGateway, TrafficWorld } from './traffic-world.ts';
import { gatewayRefTarget, isGeneratedGatewayRef, readGatewayRefs } from './virtual-service.ts';
import { isRecord, stringList, type KubeObject, type Violation } from './types.ts';
import { LazilyWorded } from './messages.ts';

/** A message shows at most this many of spec.hosts. */
const LISTED_HOSTS = 2;

/**
 * The Gateway references of `virtualService` (which lives in `namespace`) whose Gateway offers
 * none of its hosts. Without a world, or with an unavailable one, nothing is looked up
 * (validateVirtualService then reports the world unavailable).
 */
export function validateVirtualServiceGatewayHosts(virtualService: KubeObject, namespace: string, world?: TrafficWorld): Violation[] {
  if (!world?.available) return [];
  const refs = readGatewayRefs(virtualService).filter(({ ref }) => !isGeneratedGatewayRef(ref));
  if (refs.length === 0) return [];
  const spec = isRecord(virtualService.spec) ? virtualService.spec : {};
  const hosts = stringList(spec.hosts);
  // Built once: each Gateway host is then checked in time linear in its length.
  const ownPatterns = new HostPatterns(hosts);
  const violations: Violation[] = [];
  // Each Gateway is looked into once, however many references name it.
  const checked = new Set<string>();
  for (const { index, ref } of refs) {
    const target = gatewayRefTarget(ref, namespace);
    const gateway = world.findGateway(target.namespace, target.name);
    if (gateway === undefined) continue;
    const label = `${gateway.namespace}/${gateway.name}`;
    if (checked.has(label)) continue;
    checked.add(label);
    if (hostsMeet(hosts, ownPatterns, hostsOffered(gateway, namespace))) continue;
    violations.push(hostNotInGateway(index, label, hosts, namespace));
  }
  return violations;
}

/** The hosts `gateway` offers a VirtualService of `namespace`, namespace parts removed. */
function hostsOffered(gateway: TrafficGateway, namespace: string): string[] {
  const offered: string[] = [];
  for (const server of gateway.servers) {
    for (const host of server.hosts) {
      const slash = host.indexOf('/');
      if (slash < 0) {
        offered.push(host);
        continue;
      }
      const scope = host.slice(0, slash);
      const name = host.slice(slash + 1);
      const scopeNamespace = scope === '.' ? gateway.namespace : scope;
      if (scopeNamespace === '*' || scopeNamespace === namespace) offered.push(name);
    }
  }
  return offered;
}

/**
 * Whether some VirtualService host and some Gateway host match: one covers the other (see
 * hostCoveredBy), which two pattern sets answer in time linear in the hosts' length.
 */
function hostsMeet(hosts: readonly string[], ownPatterns: HostPatterns, offered: readonly string[]): boolean {
  if (offered.length === 0 || hosts.length === 0) return false;
  if (offered.some((host) => ownPatterns.covers(host))) return true;
  const offeredPatterns = new HostPatterns(offered);
  return hosts.some((host) => offeredPatterns.covers(host));
}

function hostNotInGateway(index: number, gateway: string, hosts: readonly string[], namespace: string): Violation {
  const rule = 'virtualservice-host-not-in-gateway';
  const path = `spec.gateways[${index}]`;
  return new LazilyWorded(rule, 'warning', path, `${rule}|${gateway}`, () => {
    const example = quote(`${namespace}/${hosts[0] ?? '<host>'}`);
    const fix = `add e.g. ${example} to its servers' hosts, or fix spec.hosts`;
    if (hosts.length === 0) {
      return [
        `${path}: spec.hosts is empty, so Gateway ${gateway} sends this VirtualService no traffic (IST0132); add the hosts it serves.`,
        `${path}: spec.hosts is empty (IST0132); add the hosts Gateway ${gateway} serves.`,
        `${path}: spec.hosts is empty (IST0132); add the hosts the Gateway serves.`,
      ];
    }
    const listed = hosts.slice(0, LISTED_HOSTS).map(quote).join(', ') + (hosts.length > LISTED_HOSTS ? ', ...' : '');
    return [
      `${path}: Gateway ${gateway} routes none of spec.hosts (${listed}) for namespace ${namespace} (IST0132); ${fix}.`,
      `${path}: Gateway ${gateway} routes none of spec.hosts for namespace ${namespace} (IST0132); ${fix}.`,
      `${path}: Gateway ${gateway} routes none of spec.hosts for this namespace (IST0132); add one to its servers' hosts.`,
      `${path}: the Gateway routes none of spec.hosts for this namespace (IST0132); add one to its servers' hosts.`,
    ];
  });
}
