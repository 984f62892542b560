/** Builders for AdmissionReview bodies used across tests. */
import { buildConfig, type Config } from '../../src/config.ts';

let sequence = 0;

export interface ReviewOptions {
  readonly kind?: string;
  readonly group?: string;
  readonly version?: string;
  readonly operation?: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  readonly namespace?: string;
  readonly object?: unknown;
  readonly oldObject?: unknown;
  readonly apiVersion?: string;
  readonly uid?: string;
}

export function review(options: ReviewOptions = {}) {
  sequence += 1;
  const object = 'object' in options ? options.object : service('web', [{ name: 'http-web', port: 80 }]);
  return {
    apiVersion: options.apiVersion ?? 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: options.uid ?? `uid-${sequence}`,
      kind: { group: options.group ?? '', version: options.version ?? 'v1', kind: options.kind ?? 'Service' },
      resource: { group: options.group ?? '', version: 'v1', resource: `${(options.kind ?? 'Service').toLowerCase()}s` },
      operation: options.operation ?? 'CREATE',
      ...(options.namespace === undefined ? { namespace: 'default' } : options.namespace === '' ? {} : { namespace: options.namespace }),
      object,
      ...(options.oldObject !== undefined ? { oldObject: options.oldObject } : {}),
    },
  };
}

export interface PortSpec {
  readonly name?: string;
  readonly port: number;
  readonly protocol?: string;
  readonly appProtocol?: string;
  readonly targetPort?: number;
}

export function service(name: string, ports: readonly PortSpec[], extra: { namespace?: string; type?: string; labels?: Record<string, string> } = {}) {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: extra.namespace ?? 'default', ...(extra.labels ? { labels: extra.labels } : {}) },
    spec: {
      ...(extra.type ? { type: extra.type } : {}),
      selector: { app: name },
      ports: ports.map((p) => ({ protocol: 'TCP', targetPort: p.port, ...p })),
    },
  };
}

export function namespace(name: string, labels?: Record<string, string>) {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, ...(labels ? { labels } : {}) } };
}

export function testConfig(flags: Record<string, string> = {}, fileText?: string): Config {
  return buildConfig({ flags: { 'log-level': 'silent', ...flags }, env: {}, ...(fileText ? { file: { path: 'test.yaml', text: fileText } } : {}) });
}

export function decodePatch(patch: string | undefined): unknown {
  return patch === undefined ? undefined : JSON.parse(Buffer.from(patch, 'base64').toString('utf8'));
}
