/**
 * The Gateways of a world, indexed for the lookups the Gateway and VirtualService rules make
 * at admission: one Gateway by namespace and name, the namespaces holding a name, and the
 * Gateways with a server on a given port and bind address listing a given host. Built once from the Gateways'
 * slim views, so judging a Gateway costs a lookup per server host rather than a pass over
 * every Gateway of the cluster.
 *
 * Pure: no I/O.
 */
import type { TrafficGateway } from './traffic-world.ts';

export class GatewayIndex {
  private readonly byName = new Map<string, TrafficGateway>();
  private readonly namespacesByName = new Map<string, string[]>();
  private readonly byPortAndHost = new Map<string, TrafficGateway[]>();

  /** When two Gateways share a namespace and name, the later one wins (files over cluster). */
  constructor(gateways: Iterable<TrafficGateway>) {
    for (const gateway of gateways) this.byName.set(nameKey(gateway.namespace, gateway.name), gateway);
    for (const gateway of this.byName.values()) {
      const namespaces = this.namespacesByName.get(gateway.name);
      if (namespaces) namespaces.push(gateway.namespace);
      else this.namespacesByName.set(gateway.name, [gateway.namespace]);
      // A Gateway listing a host twice on one port is indexed once under it.
      const keys = new Set<string>();
      for (const server of gateway.servers) {
        if (server.port === undefined) continue;
        for (const host of server.hosts) keys.add(listenKey(server.port, server.bind, host));
      }
      for (const key of keys) {
        const listening = this.byPortAndHost.get(key);
        if (listening) listening.push(gateway);
        else this.byPortAndHost.set(key, [gateway]);
      }
    }
    for (const namespaces of this.namespacesByName.values()) namespaces.sort();
  }

  find(namespace: string, name: string): TrafficGateway | undefined {
    return this.byName.get(nameKey(namespace, name));
  }

  /** Sorted. */
  namespacesOf(name: string): readonly string[] {
    return this.namespacesByName.get(name) ?? [];
  }

  /** The Gateways with a server on `port` and bind address `bind` whose hosts list `host` exactly as written. */
  listening(port: number, bind: string, host: string): readonly TrafficGateway[] {
    return this.byPortAndHost.get(listenKey(port, bind, host)) ?? [];
  }
}

function nameKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** A bind address holds no space; the host comes last, so any host keeps the keys apart. */
function listenKey(port: number, bind: string, host: string): string {
  return `${port} ${bind} ${host}`;
}
