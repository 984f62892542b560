/**
 * How Istio decides the protocol of a Kubernetes Service port.
 *
 * Mirrors Istio's ConvertProtocol (pkg/config/kube/conversion.go) and protocol.Parse
 * (pkg/config/protocol/instance.go). When this returns `Unsupported`, Istio falls back to
 * protocol sniffing — the situation this project exists to prevent.
 */

import { goToLower } from './go-lower-case.ts';

export type IstioProtocol =
  | 'TCP'
  | 'UDP'
  | 'GRPC'
  | 'GRPC-Web'
  | 'HTTP'
  | 'HTTP_PROXY'
  | 'HTTP2'
  | 'HTTPS'
  | 'TLS'
  | 'Mongo'
  | 'Redis'
  | 'MySQL'
  | 'Unsupported';

/** Lower-case words Istio's protocol parser recognises, mapped to the protocol. */
export const PROTOCOL_WORDS: ReadonlyMap<string, IstioProtocol> = new Map([
  ['tcp', 'TCP'],
  ['udp', 'UDP'],
  ['grpc', 'GRPC'],
  ['grpc-web', 'GRPC-Web'],
  ['http', 'HTTP'],
  ['http_proxy', 'HTTP_PROXY'],
  ['http2', 'HTTP2'],
  ['https', 'HTTPS'],
  ['tls', 'TLS'],
  ['mongo', 'Mongo'],
  ['redis', 'Redis'],
  ['mysql', 'MySQL'],
]);

/** The prefixes a developer can put in front of a port name, in the order messages list them. */
export const ISTIO_PORT_PREFIXES: readonly string[] = [
  'http', 'http2', 'https', 'grpc', 'grpc-web', 'tcp', 'tls', 'udp', 'mongo', 'mysql', 'redis',
];

/**
 * Ports that Istio never sniffs: sniffing breaks server-first protocols (SMTP, DNS, MySQL,
 * MongoDB), so Istio treats an unclassified port with one of these numbers as plain TCP.
 */
export const SERVER_FIRST_PORTS: ReadonlySet<number> = new Set([25, 53, 3306, 27017]);

/** Kubernetes' standard appProtocol values, matched exactly (case-sensitive) as Istio does. */
export const KUBERNETES_APP_PROTOCOLS: ReadonlyMap<string, IstioProtocol> = new Map([
  ['kubernetes.io/h2c', 'HTTP2'],
  ['kubernetes.io/ws', 'HTTP'],
  ['kubernetes.io/wss', 'HTTPS'],
]);

export const GRPC_WEB = 'grpc-web';

/** Parses one protocol word, ignoring case as Istio does (Go's lower-casing); anything else is Unsupported. */
export function parseProtocolWord(word: string): IstioProtocol {
  return PROTOCOL_WORDS.get(goToLower(word)) ?? 'Unsupported';
}

function asciiLower(text: string): string {
  return text.replace(/[A-Z]/g, (letter) => letter.toLowerCase());
}

export interface PortDescription {
  /** Kubernetes transport protocol; absent means TCP. */
  readonly protocol?: string | undefined;
  readonly name?: string | undefined;
  readonly appProtocol?: string | undefined;
  readonly port?: number | undefined;
}

/** The protocol Istio assigns to a Service port. */
export function classifyPort(port: PortDescription): IstioProtocol {
  if (port.protocol === 'UDP') return 'UDP';

  // appProtocol, when present, replaces the name entirely: a good name cannot rescue an
  // unrecognised appProtocol. It then goes through the same parsing as a name would.
  let label = port.appProtocol ?? port.name ?? '';
  if (port.appProtocol !== undefined) {
    const standard = KUBERNETES_APP_PROTOCOLS.get(port.appProtocol);
    if (standard) return standard;
  }

  let result: IstioProtocol;
  // Istio compares the first bytes case-insensitively; every byte of `grpc-web` is ASCII, so
  // only ASCII letters can match them and ASCII lower-casing decides.
  if (label.length >= GRPC_WEB.length && asciiLower(label.slice(0, GRPC_WEB.length)) === GRPC_WEB) {
    result = 'GRPC-Web';
  } else {
    const dash = label.indexOf('-');
    if (dash >= 0) label = label.slice(0, dash);
    result = parseProtocolWord(label);
  }

  if (result === 'Unsupported' && port.port !== undefined && SERVER_FIRST_PORTS.has(port.port)) {
    return 'TCP';
  }
  return result;
}

/** The lower-case prefix that names a protocol in a port name (`HTTP2` → `http2`). */
export function prefixFor(protocol: Exclude<IstioProtocol, 'Unsupported'>): string {
  return protocol.toLowerCase();
}
