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
  /**
   * Host first, then port and bind address: a host is a string read from JSON, whose hash V8
   * keeps, so the common lookup (a host no other Gateway lists) builds no key string. Keyed by
   * a built `port bind host` string, 30,000 hosts cost 100 ms.
   */
  private readonly byHostAndPort = new Map<string, Map<string, Map<string, TrafficGateway>>>();

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
    for (const [host, port] of listenKeys(gateway)) {
      let ports = this.byHostAndPort.get(host);
      if (!ports) this.byHostAndPort.set(host, (ports = new Map()));
      let listening = ports.get(port);
      if (!listening) ports.set(port, (listening = new Map()));
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
    for (const [host, port] of listenKeys(gateway)) {
      const ports = this.byHostAndPort.get(host);
      const listening = ports?.get(port);
      listening?.delete(objectKey);
      if (listening?.size === 0) ports?.delete(port);
      if (ports?.size === 0) this.byHostAndPort.delete(host);
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
    const listening = this.byHostAndPort.get(host)?.get(portKey(port, bind));
    return listening ? [...listening.values()] : NONE;
  }
}

export function nameKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

const NONE: readonly TrafficGateway[] = [];

/** Each host and port key the Gateway listens on, once (a host listed twice on one port counts once). */
function listenKeys(gateway: TrafficGateway): [host: string, port: string][] {
  const seen = new Map<string, Set<string>>();
  for (const server of gateway.servers) {
    if (server.port === undefined) continue;
    const port = portKey(server.port, server.bind);
    for (const host of server.hosts) {
      let ports = seen.get(host);
      if (!ports) seen.set(host, (ports = new Set()));
      ports.add(port);
    }
  }
  return [...seen].flatMap(([host, ports]) => [...ports].map((port): [string, string] => [host, port]));
}

/** A port number and a bind address: the number ends at the space. */
function portKey(port: number, bind: string): string {
  return `${port} ${bind}`;
}
