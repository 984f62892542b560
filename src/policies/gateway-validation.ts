/**
 * The Gateway checks of Istio's own validation that need nothing but the object: Istio refuses
 * such a Gateway when it is applied (IST0106), so each is an error.
 *
 * - `gateway-servers-missing`: no servers at all;
 * - `gateway-hosts-missing`: a server with no hosts;
 * - `gateway-port-missing`: a server without a port;
 * - `gateway-port-name-missing`: a server port without a name;
 * - `gateway-port-number`: a server port number outside 1..65535 (or none), unless the server
 *   listens on a Unix domain socket (`bind: unix://...`), whose port number is 0;
 * - `gateway-tls-credentials`: a SIMPLE, MUTUAL or OPTIONAL_MUTUAL server that names no
 *   credential (credentialName or credentialNames) and lacks a server certificate or private key
 *   (in tls, or in an entry of tlsCertificates), or, mutual, a client CA bundle;
 * - `gateway-tls-on-plain-port`: tls settings on a server of a protocol without TLS. An HTTP
 *   server may carry them only to redirect to HTTPS: mode PASSTHROUGH (the default) or
 *   AUTO_PASSTHROUGH, with no certificate, key or CA bundle; any other server (TCP, MONGO, ...)
 *   may not carry them at all.
 *
 * One finding per problem, naming every server with it (problem-places.ts). Pure: no I/O;
 * never throws on untrusted input.
 */
import { parseProtocolWord, type IstioProtocol } from '../istio/protocol.ts';
import { quote } from './service-ports.ts';
import { oneFindingPerProblem, type Problem } from './problem-places.ts';
import { isRecord, type KubeObject, type Violation } from './types.ts';

/** Protocols whose servers terminate or pass through TLS, and so need tls settings. */
const TLS_PROTOCOLS: ReadonlySet<IstioProtocol> = new Set(['HTTPS', 'TLS']);
/** Protocols Istio counts as HTTP: their servers may carry tls settings only to redirect to HTTPS. */
const HTTP_PROTOCOLS: ReadonlySet<IstioProtocol> = new Set(['HTTP', 'HTTP2', 'HTTP_PROXY', 'GRPC', 'GRPC-Web']);

/**
 * The TLS modes as Istio's API numbers them: a manifest may write the number instead of the
 * name, and no mode at all is mode 0, PASSTHROUGH.
 */
const TLS_MODES = ['PASSTHROUGH', 'SIMPLE', 'MUTUAL', 'AUTO_PASSTHROUGH', 'ISTIO_MUTUAL', 'OPTIONAL_MUTUAL'] as const;
type TlsMode = (typeof TLS_MODES)[number];

function tlsMode(value: unknown): TlsMode | undefined {
  if (value === undefined || value === null) return 'PASSTHROUGH';
  if (typeof value === 'number') return TLS_MODES[value];
  return TLS_MODES.find((mode) => mode === value);
}

const filled = (value: unknown): boolean => typeof value === 'string' && value !== '';
const nonEmptyList = (value: unknown): value is unknown[] => Array.isArray(value) && value.length > 0;

export function gatewayValidationViolations(gateway: KubeObject): Violation[] {
  const spec = isRecord(gateway.spec) ? gateway.spec : {};
  if (!nonEmptyList(spec.servers)) return oneFindingPerProblem([serversMissing()]);
  const problems: Problem[] = [];
  spec.servers.forEach((server: unknown, index) => {
    if (!isRecord(server)) return;
    const path = `spec.servers[${index}]`;
    if (!nonEmptyList(server.hosts)) problems.push(hostsMissing(path));
    if (isRecord(server.port)) {
      if (!filled(server.port.name)) problems.push(portNameMissing(path, server.port));
      const number = portNumber(server.port.number, server.bind);
      if (number !== undefined) problems.push(portNumberInvalid(path, number));
    } else {
      problems.push(portMissing(path));
    }
    if (!isRecord(server.tls)) return;
    problems.push(...credentialProblems(`${path}.tls`, server.tls));
    const protocol = isRecord(server.port) && typeof server.port.protocol === 'string' ? parseProtocolWord(server.port.protocol) : 'Unsupported';
    // An unknown protocol is gateway-protocol's finding; what tls it may have cannot be told.
    if (protocol !== 'Unsupported' && !TLS_PROTOCOLS.has(protocol) && !redirectOnly(protocol, server.tls)) {
      problems.push(tlsOnPlainPort(`${path}.tls`, protocol));
    }
  });
  return oneFindingPerProblem(problems);
}

/** Whether the tls settings of an HTTP server only ask to redirect clients to HTTPS. */
function redirectOnly(protocol: IstioProtocol, tls: Record<string, unknown>): boolean {
  if (!HTTP_PROTOCOLS.has(protocol)) return false;
  const mode = tlsMode(tls.mode);
  return (mode === 'PASSTHROUGH' || mode === 'AUTO_PASSTHROUGH') &&
    !filled(tls.caCertificates) && !filled(tls.privateKey) && !filled(tls.serverCertificate);
}

/** A UNIX domain socket address in a server's `bind`: such a server listens on no port. */
const UNIX_SOCKET_PREFIX = 'unix://';

/** The port number as written when it is not a valid one for the server, else undefined. */
function portNumber(value: unknown, bind: unknown): number | undefined {
  // The API server's schema refuses a number that is no integer; nothing to say about it here.
  const number = value === undefined || value === null ? 0 : value;
  if (typeof number !== 'number' || !Number.isInteger(number)) return undefined;
  if (number === 0 && typeof bind === 'string' && bind.startsWith(UNIX_SOCKET_PREFIX)) return undefined;
  return number >= 1 && number <= 65535 ? undefined : number;
}

function serversMissing(): Problem {
  return {
    rule: 'gateway-servers-missing',
    key: 'servers',
    field: 'spec.servers',
    words: () => [
      'spec.servers is empty: Istio rejects a Gateway without servers; add one, e.g. {port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}.',
      'spec.servers is empty: Istio rejects a Gateway without servers; add one.',
    ],
  };
}

function hostsMissing(path: string): Problem {
  return {
    rule: 'gateway-hosts-missing',
    key: 'hosts',
    field: `${path}.hosts`,
    words: (where) => [
      `${where}: a server needs at least one host and Istio rejects it without; list the hosts it serves, e.g. hosts: ["shop.example.com"] (or "*" for any).`,
      `${where}: a server needs at least one host; Istio rejects it without.`,
    ],
  };
}

function portMissing(path: string): Problem {
  return {
    rule: 'gateway-port-missing',
    key: 'port',
    field: `${path}.port`,
    words: (where) => [
      `${where}: a server needs a port and Istio rejects it without; add one, e.g. port: {number: 80, name: http, protocol: HTTP}.`,
      `${where}: a server needs a port; Istio rejects it without.`,
    ],
  };
}

function portNameMissing(path: string, port: Record<string, unknown>): Problem {
  const number = typeof port.number === 'number' && Number.isInteger(port.number) ? port.number : undefined;
  const protocol = typeof port.protocol === 'string' && parseProtocolWord(port.protocol) !== 'Unsupported' ? port.protocol.toLowerCase() : 'http';
  const example = number === undefined ? protocol : `${protocol}-${number}`;
  return {
    rule: 'gateway-port-name-missing',
    // Istio's message shows the port, so servers with different ports are different problems.
    key: `${number ?? ''}|${typeof port.protocol === 'string' ? port.protocol : ''}`,
    field: `${path}.port.name`,
    words: (where) => [
      `${where}: the server port has no name and Istio rejects it without one; name it, e.g. ${quote(example)}.`,
      `${where}: the server port needs a name; Istio rejects it without one.`,
    ],
  };
}

function portNumberInvalid(path: string, number: number): Problem {
  return {
    rule: 'gateway-port-number',
    // Istio's message shows the number, so each number is a problem of its own.
    key: String(number),
    field: `${path}.port.number`,
    words: (where) =>
      number === 0
        ? [
            `${where}: the server port has no number and Istio rejects it without; set the port the gateway listens on, e.g. 80 or 443.`,
            `${where}: the server port needs a number; Istio rejects it without.`,
          ]
        : [
            `${where}: port ${number} is outside 1..65535 and Istio rejects it; set the port the gateway listens on, e.g. 80 or 443.`,
            `${where}: port ${number} is outside 1..65535; Istio rejects it.`,
          ],
  };
}

/**
 * The certificate fields a terminating server lacks when no credential names a Secret: Istio
 * then reads the certificate and key from files, so both must be given, for every entry of
 * tlsCertificates when there are any; a mutual server needs the client CA bundle too.
 */
function credentialProblems(path: string, tls: Record<string, unknown>): Problem[] {
  const mode = tlsMode(tls.mode);
  if (mode !== 'SIMPLE' && mode !== 'MUTUAL' && mode !== 'OPTIONAL_MUTUAL') return [];
  if (filled(tls.credentialName) || nonEmptyList(tls.credentialNames)) return [];
  const mutual = mode !== 'SIMPLE';
  const problems: Problem[] = [];
  if (mutual && !filled(tls.caCertificates)) problems.push(credentialMissing(`${path}.caCertificates`, mode, 'a client CA bundle'));
  const certificates = nonEmptyList(tls.tlsCertificates)
    ? tls.tlsCertificates.map((entry, index) => ({ path: `${path}.tlsCertificates[${index}]`, entry: isRecord(entry) ? entry : {} }))
    : [{ path, entry: tls }];
  for (const { path: at, entry } of certificates) {
    if (!filled(entry.serverCertificate)) problems.push(credentialMissing(`${at}.serverCertificate`, mode, 'a server certificate'));
    if (!filled(entry.privateKey)) problems.push(credentialMissing(`${at}.privateKey`, mode, 'a private key'));
  }
  return problems;
}

function credentialMissing(field: string, mode: TlsMode, what: string): Problem {
  // Istio words MUTUAL and OPTIONAL_MUTUAL alike, so they are one problem.
  const kind = mode === 'SIMPLE' ? 'SIMPLE' : 'MUTUAL';
  return {
    rule: 'gateway-tls-credentials',
    key: `${kind}|${what}`,
    field,
    words: (where) => [
      `${where}: tls mode ${mode} without credentialName needs ${what}; Istio rejects the Gateway without. ` +
        'Set tls.credentialName to a Secret with the certificate, or give the file.',
      `${where}: tls mode ${mode} needs ${what} or a credentialName; Istio rejects the Gateway without.`,
    ],
  };
}

function tlsOnPlainPort(path: string, protocol: IstioProtocol): Problem {
  // Istio gives one message for every HTTP protocol and one for every other: the words name none.
  const http = HTTP_PROTOCOLS.has(protocol);
  return {
    rule: 'gateway-tls-on-plain-port',
    key: http ? 'http' : 'other',
    field: path,
    words: (where) =>
      http
        ? [
            `${where}: a plain-text HTTP server may have tls settings only to redirect to HTTPS, and Istio rejects others; ` +
              'set the protocol to HTTPS to terminate TLS, or keep only tls: {httpsRedirect: true}.',
            `${where}: a plain-text HTTP server may only have tls: {httpsRedirect: true}; Istio rejects other tls settings.`,
          ]
        : [
            `${where}: Istio rejects tls settings on a server whose protocol is neither HTTPS nor TLS; set the protocol ` +
              'to TLS to terminate or pass TLS through, or remove tls.',
            `${where}: Istio rejects tls settings unless the protocol is HTTPS or TLS; change it or remove tls.`,
          ],
  };
}
