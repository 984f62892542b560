import t from 'tap';
import {
  classifyPort,
  ISTIO_PORT_PREFIXES,
  parseProtocolWord,
  prefixFor,
  type IstioProtocol,
  type PortDescription,
} from '../src/istio/protocol.ts';

interface ClassificationCase {
  readonly why: string;
  readonly port: PortDescription;
  readonly expected: IstioProtocol;
}

/** Every branch of the port classification, in its order. */
const cases: readonly ClassificationCase[] = [
  // 1. protocol UDP decides alone
  { why: 'UDP ignores a good name', port: { protocol: 'UDP', name: 'http-web', port: 80 }, expected: 'UDP' },
  { why: 'UDP ignores an unknown appProtocol', port: { protocol: 'UDP', appProtocol: 'foo', port: 53 }, expected: 'UDP' },
  { why: 'UDP ignores a missing name', port: { protocol: 'UDP', port: 8080 }, expected: 'UDP' },
  { why: 'SCTP is not special: its name decides', port: { protocol: 'SCTP', name: 'http-x', port: 80 }, expected: 'HTTP' },
  { why: 'SCTP with a bad name is sniffed like TCP', port: { protocol: 'SCTP', name: 'web', port: 80 }, expected: 'Unsupported' },

  // 2. appProtocol replaces the name
  { why: 'appProtocol overrides a good name', port: { name: 'http-web', appProtocol: 'tcp', port: 80 }, expected: 'TCP' },
  { why: 'an unknown appProtocol spoils a good name', port: { name: 'http-web', appProtocol: 'foo', port: 80 }, expected: 'Unsupported' },
  { why: 'a good appProtocol rescues a bad name', port: { name: 'web', appProtocol: 'http', port: 8080 }, expected: 'HTTP' },
  { why: 'an empty appProtocol is still an appProtocol', port: { name: 'http', appProtocol: '', port: 80 }, expected: 'Unsupported' },
  { why: 'appProtocol words ignore case', port: { appProtocol: 'HTTP2', port: 80 }, expected: 'HTTP2' },
  { why: 'appProtocol is cut at the first dash like a name', port: { appProtocol: 'http-foo', port: 80 }, expected: 'HTTP' },
  { why: 'appProtocol takes the grpc-web prefix like a name', port: { appProtocol: 'grpc-webx', port: 80 }, expected: 'GRPC-Web' },
  { why: 'kubernetes.io/h2c is HTTP2', port: { appProtocol: 'kubernetes.io/h2c', port: 80 }, expected: 'HTTP2' },
  { why: 'kubernetes.io/ws is HTTP', port: { appProtocol: 'kubernetes.io/ws', port: 80 }, expected: 'HTTP' },
  { why: 'kubernetes.io/wss is HTTPS', port: { appProtocol: 'kubernetes.io/wss', port: 443 }, expected: 'HTTPS' },
  { why: 'kubernetes.io/H2C is case-sensitive', port: { appProtocol: 'kubernetes.io/H2C', port: 80 }, expected: 'Unsupported' },
  { why: 'Kubernetes.io/ws is case-sensitive', port: { appProtocol: 'Kubernetes.io/ws', port: 80 }, expected: 'Unsupported' },
  { why: 'KUBERNETES.IO/WSS is case-sensitive', port: { appProtocol: 'KUBERNETES.IO/WSS', port: 443 }, expected: 'Unsupported' },
  { why: 'an unknown appProtocol on a server-first port is TCP', port: { appProtocol: 'foo', port: 3306 }, expected: 'TCP' },

  // 3. grpc-web prefix, no dash needed after it
  { why: 'grpc-web exactly', port: { name: 'grpc-web', port: 80 }, expected: 'GRPC-Web' },
  { why: 'grpc-webx: the prefix needs no dash after it', port: { name: 'grpc-webx', port: 80 }, expected: 'GRPC-Web' },
  { why: 'grpc-WEB-x: the prefix ignores case', port: { name: 'grpc-WEB-x', port: 80 }, expected: 'GRPC-Web' },
  { why: 'grpcweb-x lacks the dash inside the prefix', port: { name: 'grpcweb-x', port: 80 }, expected: 'Unsupported' },
  { why: 'grpc-we is cut to grpc', port: { name: 'grpc-we', port: 80 }, expected: 'GRPC' },

  // 4. cut at the first dash, parse the head ignoring case
  { why: 'http alone', port: { name: 'http', port: 8080 }, expected: 'HTTP' },
  { why: 'HTTP-x: the head ignores case', port: { name: 'HTTP-x', port: 8080 }, expected: 'HTTP' },
  { why: 'httpfoo is not a word', port: { name: 'httpfoo', port: 8080 }, expected: 'Unsupported' },
  { why: 'http-proxy is cut to http', port: { name: 'http-proxy', port: 8080 }, expected: 'HTTP' },
  { why: 'http_proxy is its own word', port: { name: 'http_proxy', port: 8080 }, expected: 'HTTP_PROXY' },
  { why: 'http2', port: { name: 'http2-x', port: 8080 }, expected: 'HTTP2' },
  { why: 'https', port: { name: 'https-x', port: 8443 }, expected: 'HTTPS' },
  { why: 'grpc', port: { name: 'grpc-api', port: 9000 }, expected: 'GRPC' },
  { why: 'tcp', port: { name: 'tcp', port: 9000 }, expected: 'TCP' },
  { why: 'tls', port: { name: 'tls-x', port: 9000 }, expected: 'TLS' },
  { why: 'mongo', port: { name: 'mongo', port: 9000 }, expected: 'Mongo' },
  { why: 'redis', port: { name: 'redis-cache', port: 9000 }, expected: 'Redis' },
  { why: 'MySQL ignores case', port: { name: 'MySQL-db', port: 9000 }, expected: 'MySQL' },
  { why: 'a TCP port named udp-x is UDP', port: { protocol: 'TCP', name: 'udp-x', port: 9000 }, expected: 'UDP' },
  { why: 'a recognised name wins over a server-first port', port: { name: 'redis-x', port: 27017 }, expected: 'Redis' },

  // 5. server-first ports are TCP when still unsupported
  { why: 'unnamed port 25 (SMTP)', port: { port: 25 }, expected: 'TCP' },
  { why: 'unnamed port 53 (DNS over TCP)', port: { port: 53 }, expected: 'TCP' },
  { why: 'unnamed port 3306 (MySQL)', port: { port: 3306 }, expected: 'TCP' },
  { why: 'unnamed port 27017 (MongoDB)', port: { port: 27017 }, expected: 'TCP' },
  { why: 'a bad name on 3306', port: { name: 'db', port: 3306 }, expected: 'TCP' },
  { why: 'unnamed port 8080', port: { port: 8080 }, expected: 'Unsupported' },
  { why: 'empty name on 8080', port: { name: '', port: 8080 }, expected: 'Unsupported' },
  { why: 'empty name on 3306', port: { name: '', port: 3306 }, expected: 'TCP' },
  { why: 'no port number at all', port: { name: 'web' }, expected: 'Unsupported' },
];

t.test('classifyPort follows every branch of Istio port classification', async (t) => {
  for (const { why, port, expected } of cases) {
    t.equal(classifyPort(port), expected, `${why}: ${JSON.stringify(port)}`);
  }
});

t.test('parseProtocolWord recognises exactly Istio\'s words, ignoring case', async (t) => {
  t.equal(parseProtocolWord('Grpc-Web'), 'GRPC-Web');
  t.equal(parseProtocolWord('HTTP_PROXY'), 'HTTP_PROXY');
  t.equal(parseProtocolWord('http-'), 'Unsupported');
  t.equal(parseProtocolWord(''), 'Unsupported');
  t.equal(parseProtocolWord('sctp'), 'Unsupported');
});

t.test('every advertised prefix names a protocol and round-trips through prefixFor', async (t) => {
  t.same([...ISTIO_PORT_PREFIXES], ['http', 'http2', 'https', 'grpc', 'grpc-web', 'tcp', 'tls', 'udp', 'mongo', 'mysql', 'redis']);
  for (const prefix of ISTIO_PORT_PREFIXES) {
    const protocol = parseProtocolWord(prefix);
    t.not(protocol, 'Unsupported', prefix);
    if (protocol !== 'Unsupported') t.equal(prefixFor(protocol), prefix, `prefixFor(${protocol})`);
    // The prefix followed by a suffix must classify the same: that is the naming convention.
    t.equal(classifyPort({ name: `${prefix}-x`, port: 8080 }), protocol, `${prefix}-x`);
  }
});
