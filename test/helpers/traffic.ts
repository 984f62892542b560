/** Builders for the Gateway / VirtualService tests: the seed's manifests and small variations. */
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import type { KubeObject } from '../../src/policies/types.ts';

/** All objects of a YAML file (multi-document). */
export function loadYaml(path: string): KubeObject[] {
  return parseAllDocuments(readFileSync(path, 'utf8')).map((d) => d.toJS() as KubeObject).filter((o) => o !== null);
}

export function byName(objects: readonly KubeObject[], kind: string, name: string): KubeObject {
  const found = objects.find((o) => o.kind === kind && o.metadata?.name === name);
  if (!found) throw new Error(`no ${kind} ${name}`);
  return structuredClone(found);
}

/** The seed's manifests, as kept under examples/istio/. */
export const seed = {
  gateways: loadYaml('examples/istio/gateways.yaml'),
  virtualServices: loadYaml('examples/istio/virtualservices.yaml'),
  services: loadYaml('examples/istio/services.yaml'),
};

export interface ServerSpec {
  readonly number?: number;
  readonly name?: string;
  readonly protocol?: string;
  readonly tls?: unknown;
  readonly hosts?: string[];
}

export function gateway(name: string, servers: readonly ServerSpec[], extra: { namespace?: string; selector?: Record<string, string>; apiVersion?: string } = {}): KubeObject {
  return {
    apiVersion: extra.apiVersion ?? 'networking.istio.io/v1',
    kind: 'Gateway',
    metadata: { name, namespace: extra.namespace ?? 'default' },
    spec: {
      selector: extra.selector ?? { istio: 'ingressgateway' },
      servers: servers.map((s) => ({
        port: {
          ...(s.number !== undefined ? { number: s.number } : {}),
          ...(s.name !== undefined ? { name: s.name } : {}),
          ...(s.protocol !== undefined ? { protocol: s.protocol } : {}),
        },
        hosts: s.hosts ?? ['*'],
        ...(s.tls !== undefined ? { tls: s.tls } : {}),
      })),
    },
  };
}

export interface SvcPort {
  readonly name?: string;
  readonly port: number;
  readonly targetPort?: number | string;
  readonly protocol?: string;
}

export function svc(namespace: string, name: string, ports: readonly SvcPort[], selector: Record<string, string> | undefined = { app: name }, labels?: Record<string, string>): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace, ...(labels ? { labels } : {}) },
    spec: { ...(selector ? { selector } : {}), ports: ports.map((p) => ({ protocol: 'TCP', ...p })) },
  };
}

/** The seed's ingress Service: istio-system/istio-ingressgateway exposing 80 and 443. */
export function ingressService(extraPorts: readonly SvcPort[] = []): KubeObject {
  return svc(
    'istio-system',
    'istio-ingressgateway',
    [{ name: 'status-port', port: 15021 }, { name: 'http2', port: 80, targetPort: 8080 }, { name: 'https', port: 443, targetPort: 8443 }, ...extraPorts],
    { app: 'istio-ingressgateway', istio: 'ingressgateway' },
    { app: 'istio-ingressgateway', istio: 'ingressgateway' },
  );
}

export function virtualService(name: string, spec: Record<string, unknown>, namespace = 'default'): KubeObject {
  return { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name, namespace }, spec };
}

export function serviceEntry(namespace: string, name: string, hosts: string[], exportTo?: string[]): KubeObject {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name, namespace },
    spec: { hosts, ...(exportTo ? { exportTo } : {}), ports: [{ number: 443, name: 'tls', protocol: 'TLS' }], resolution: 'DNS' },
  };
}

/** An http route to one destination. */
export function httpTo(host: string, port?: number) {
  return { route: [{ destination: { host, ...(port !== undefined ? { port: { number: port } } : {}) } }] };
}

export function destinationRule(namespace: string, name: string, host: string, subsets: readonly string[] = [], exportTo?: string[]): KubeObject {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name, namespace },
    spec: { host, ...(exportTo ? { exportTo } : {}), subsets: subsets.map((subset) => ({ name: subset, labels: { version: subset } })) },
  };
}
