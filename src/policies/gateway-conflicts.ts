/**
 * `gateway-conflict` (warning, Istio IST0145): a server of this Gateway listens on the same
 * port, for the same host and bind address, as a server of another Gateway applied to the same
 * gateway workloads. The gateway proxy then has two servers for one host and port, and which
 * one gets the traffic is not up to either Gateway's owner.
 *
 * When two Gateways apply to the same workloads: their selectors are equal, or one holds every
 * label of the other (a pod the more specific one selects is then selected by both: the cache
 * holds no Pods, so such a pod is assumed to exist, as gateway deployments carry all their
 * selectors' labels). Namespaces do not matter: a Gateway's selector applies in all of them.
 * Hosts are compared as written, `namespace/host` forms included.
 *
 * The other Gateways come from the TrafficWorld's index by port, bind and host, so a Gateway costs a
 * lookup per server host, not a pass over the cluster's Gateways. The Gateway being judged is
 * never compared with itself: on UPDATE the world still holds its stored copy under its name.
 *
 * Pure: no I/O; never throws on untrusted input.
 */
import { quote } from './service-ports.ts';
import { stringMap, toTrafficGatewayServer, type TrafficGateway, type TrafficWorld } from './traffic-world.ts';
import { isRecord, type KubeObject, type Violation } from './types.ts';
import { LazilyWorded } from './messages.ts';

/** A message names at most this many of the conflicting Gateways. */
const LISTED_GATEWAYS = 3;

/**
 * The conflicts of every server of `gateway`, which lives in `namespace`. Without a world, or
 * with an unavailable one, there is nothing to compare with (validateGateway then reports the
 * world unavailable).
 */
export function validateGatewayConflicts(gateway: KubeObject, namespace: string, world?: TrafficWorld): Violation[] {
  if (!world?.available) return [];
  const spec = isRecord(gateway.spec) ? gateway.spec : {};
  if (!Array.isArray(spec.servers)) return [];
  const selector = stringMap(spec.selector) ?? {};
  const name = isRecord(gateway.metadata) && typeof gateway.metadata.name === 'string' ? gateway.metadata.name : '';
  const isSelf = (other: TrafficGateway) => other.namespace === namespace && other.name === name;

  const violations: Violation[] = [];
  const judged = new Set<string>();
  // The other Gateways on each port, bind and host, filtered once: servers repeating a host
  // (5,000 servers of `*` on port 80) cost a lookup each, not a pass over the same Gateways.
  // Only hosts some Gateway lists are remembered: the lookup of any other is cheaper than a key.
  const othersOn = new Map<string, readonly TrafficGateway[]>();
  const conflictingOn = (port: number, bind: string, host: string) => {
    const listening = world.gatewaysListening(port, bind, host);
    if (listening.length === 0) return listening;
    const key = `${port} ${bind} ${host}`;
    let found = othersOn.get(key);
    if (found === undefined) {
      found = listening.filter((other) => !isSelf(other) && sameWorkloads(selector, other.selector));
      othersOn.set(key, found);
    }
    return found;
  };
  spec.servers.forEach((entry: unknown, index) => {
    const server = toTrafficGatewayServer(entry);
    if (server?.port === undefined) return;
    const port = server.port;
    // Two servers of this Gateway alike in port, bind and hosts are one thing to fix, found once.
    const identity = `gateway-conflict|${port}|${server.bind}|${server.hosts.join(',')}`;
    if (judged.has(identity)) return;
    judged.add(identity);
    // Per shared host, the Gateways sharing it; merged only when the message is worded, so a
    // server costs a lookup per host whatever the number of Gateways it conflicts with.
    const groups: (readonly TrafficGateway[])[] = [];
    const shared: string[] = [];
    for (const host of new Set(server.hosts)) {
      const others = conflictingOn(port, server.bind, host);
      if (others.length === 0) continue;
      groups.push(others);
      shared.push(host);
    }
    if (groups.length > 0) violations.push(conflict(index, port, shared, groups, selector, identity));
  });
  return violations;
}

/** Whether one selector holds every label of the other: both then select the pods of the more specific one. */
function sameWorkloads(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const within = (small: Readonly<Record<string, string>>, large: Readonly<Record<string, string>>) =>
    Object.entries(small).every(([key, value]) => Object.hasOwn(large, key) && large[key] === value);
  return within(a, b) || within(b, a);
}

function conflict(
  index: number,
  port: number,
  /** The server's hosts another Gateway serves too. */
  hosts: readonly string[],
  /** Per shared host, the other Gateways listing it. */
  groups: readonly (readonly TrafficGateway[])[],
  selector: Readonly<Record<string, string>>,
  identity: string,
): Violation {
  const rule = 'gateway-conflict';
  const field = `spec.servers[${index}].hosts`;
  return new LazilyWorded(rule, 'warning', field, identity, () => {
    const names = [...new Set(groups.flat().map((other) => `${other.namespace}/${other.name}`))].sort();
    const listed = names.slice(0, LISTED_GATEWAYS).join(', ') + (names.length > LISTED_GATEWAYS ? ` and ${names.length - LISTED_GATEWAYS} more` : '');
    const gateways = `Gateway${names.length > 1 ? 's' : ''} ${listed}`;
    const labels = Object.entries(selector).map(([key, value]) => `${key}=${value}`).join(',');
    const pods = labels === '' ? 'every gateway pod' : `the same pods (${labels})`;
    const shownHosts = hosts.slice(0, LISTED_GATEWAYS).map(quote).join(', ') + (hosts.length > LISTED_GATEWAYS ? ', ...' : '');
    const shared = `host${hosts.length > 1 ? 's' : ''} ${shownHosts}`;
    const serves = `serve${names.length > 1 ? '' : 's'}`;
    const fix = 'use other hosts or ports, or one Gateway';
    return [
      `${field}: ${gateways} also ${serves} port ${port} for ${shared} on ${pods}; which one gets the traffic is ` +
        `undefined (IST0145); ${fix}.`,
      `${field}: ${gateways} also ${serves} port ${port} for ${shared} on the same pods (IST0145); ${fix}.`,
      `${field}: another Gateway serves port ${port} for the same host on the same pods (IST0145); ${fix}.`,
    ];
  });
}
