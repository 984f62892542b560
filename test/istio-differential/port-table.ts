/**
 * The generated table of Service ports on which `classifyPort` is compared with Istio's
 * ConvertProtocol: every combination of the names, appProtocols, port numbers and transport
 * protocols below. The values are the corners of the classification: each protocol word in
 * several cases, prefixes with and without a dash, the one prefix containing a dash
 * (grpc-web), Kubernetes' own appProtocols in exact and wrong case, the ports Istio never
 * sniffs, and characters whose lower case differs between Go's strings.ToLower and
 * JavaScript's toLowerCase.
 */
export interface PortRow {
  readonly port: number;
  readonly name: string;
  /** Kubernetes transport protocol; empty for a port without the field. */
  readonly protocol: string;
  /** Absent from the row (not `null`) when the port has no appProtocol. */
  readonly appProtocol?: string;
}

const WORDS = ['tcp', 'udp', 'grpc', 'grpc-web', 'http', 'http_proxy', 'http2', 'https', 'tls', 'mongo', 'redis', 'mysql'];

const NAMES = [
  '',
  ...WORDS,
  ...WORDS.map((word) => word.toUpperCase()),
  ...WORDS.map((word) => `${word}-x`),
  'Http-Web', 'httpfoo', 'http-', '-http', '-', 'web', '8080-8080', 'grpc-webx', 'grpcweb', 'grpc-we',
  'GRPC-Web-ui', 'grpc_web', 'tcp_x', 'hbone', 'DoubleHBONE', 'doublehbone', 'h2c',
  // Non-ASCII: U+0130 (capital dotted I) is "i" to Go and "i" + U+0307 to JavaScript; U+212A
  // (Kelvin sign) and U+017F (long s) fold to ASCII letters in Go's case-insensitive compare.
  'REDİS', 'redİs-cache', 'MYSQL-İ', 'tcp-K', 'httpſ', 'ſtcp', 'grpc-weſ', 'tlſ',
];

const APP_PROTOCOLS: readonly (string | undefined)[] = [
  undefined, '', 'http', 'HTTP', 'http2', 'grpc', 'grpc-web', 'GRPC-WEB', 'tcp', 'tls-x', 'mysql', 'kubernetes.io/h2c',
  'kubernetes.io/ws', 'kubernetes.io/wss', 'kubernetes.io/H2C', 'kubernetes.io/grpc', 'h2c', 'hbone', 'foo', 'REDİS',
];

const PORTS = [80, 25, 53, 3306, 27017, 8080, 15008];

const TRANSPORTS = ['', 'TCP', 'UDP', 'SCTP', 'udp'];

export function portTable(): PortRow[] {
  const rows: PortRow[] = [];
  for (const protocol of TRANSPORTS) {
    for (const port of PORTS) {
      for (const appProtocol of APP_PROTOCOLS) {
        for (const name of NAMES) {
          rows.push(appProtocol === undefined ? { port, name, protocol } : { port, name, protocol, appProtocol });
        }
      }
    }
  }
  return rows;
}

/**
 * The name Istio gives a protocol (its protocol.Instance strings), for the answer of
 * `classifyPort`, whose names are the same except for the unclassified case.
 */
export function istioProtocolName(protocol: string): string {
  return protocol === 'Unsupported' ? 'UnsupportedProtocol' : protocol;
}
