/**
 * The Gateways of a world, indexed for the lookups the Gateway and VirtualService rules make
 * at admission: one Gateway by namespace and name, the namespaces holding a name, and the
 * Gateways with a server on a given port and bind address listing a given host. Kept up to
 * date object by object (the offline world adds each Gateway read; the webhook's cache feeds it
 * its watch events), so judging a Gateway costs a lookup per server host rather than a pass over
 * every Gateway of the cluster.
 *
 * Pure: no I/O.
 */
import type { TrafficGateway } from './traffic-world.ts';

export class GatewayIndex {
  private readonly byName = new Map<string, TrafficGateway>();
  private readonly namespacesByName = new Map<string, Set<string>>();
  private readonly byPortAndHost = new Map<string, Map<string, TrafficGateway>>();

  /**
   * Records (or replaces) the Gateway `objectKey` (`namespace/name`); an undefined view only
   * removes it. When two Gateways share a namespace and name, the later one wins (files over cluster).
   */
  set(objectKey: string, gateway: TrafficGateway | undefined): void {
    this.delete(objectKey);
    if (gateway === undefined) return;
    this.byName.set(objectKey, gateway);
    let namespaces = this.namespacesByName.get(gateway.name);
    if (!namespaces) this.namespacesByName.set(gateway.name, (namespaces = new Set()));
    namespaces.add(gateway.namespace);
    for (const key of listenKeys(gateway)) {
      let listening = this.byPortAndHost.get(key);
      if (!listening) this.byPortAndHost.set(key, (listening = new Map()));
      listening.set(objectKey, gateway);
    }
  }

  delete(objectKey: string): void {
    const gateway = this.byName.get(objectKey);
    if (!gateway) return;
    this.byName.delete(objectKey);
    const namespaces = this.namespacesByName.get(gateway.name);
    namespaces?.delete(gateway.namespace);
    if (namespaces?.size === 0) this.namespacesByName.delete(gateway.name);
    for (const key of listenKeys(gateway)) {
      const listening = this.byPortAndHost.get(key);
      listening?.delete(objectKey);
      if (listening?.size === 0) this.byPortAndHost.delete(key);
    }
  }

  find(namespace: string, name: string): TrafficGateway | undefined {
    return this.byName.get(nameKey(namespace, name));
  }

  /** Sorted. */
  namespacesOf(name: string): readonly string[] {
    return [...(this.namespacesByName.get(name) ?? [])].sort();
  }

  /** The Gateways with a server on `port` and bind address `bind` whose hosts list `host` exactly as written. */
  listening(port: number, bind: string, host: string): readonly TrafficGateway[] {
    const listening = this.byPortAndHost.get(listenKey(port, bind, host));
    return listening ? [...listening.values()] : [];
  }
}

export function nameKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** Each port, bind address and host the Gateway listens on, once (a host listed twice on one port counts once). */
function listenKeys(gateway: TrafficGateway): Set<string> {
  const keys = new Set<string>();
  for (const server of gateway.servers) {
    if (server.port === undefined) continue;
    for (const host of server.hosts) keys.add(listenKey(server.port, server.bind, host));
  }
  return keys;
}

/** A bind address holds no space; the host comes last, so any host keeps the keys apart. */
function listenKey(port: number, bind: string, host: string): string {
  return `${port} ${bind} ${host}`;
}
