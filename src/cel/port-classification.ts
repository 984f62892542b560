/**
 * Istio's classification of a Service port (src/istio/protocol.ts) as CEL expressions, for the
 * admission policies the API server evaluates itself. Built from the same tables as the
 * webhook's classification, so the two cannot drift apart; the e2e parity suite runs both on
 * the same Services against a real API server.
 *
 * CEL has no functions of its own, so each builder takes the CEL expression of a port (e.g. the
 * variable of a `filter`) and returns an expression over it.
 */
import { CAPITAL_I_WITH_DOT } from '../istio/go-lower-case.ts';
import { GRPC_WEB, KUBERNETES_APP_PROTOCOLS, PROTOCOL_WORDS, SERVER_FIRST_PORTS } from '../istio/protocol.ts';

/** A CEL string literal (JSON's escapes are CEL's for these characters). */
export function celString(value: string): string {
  return JSON.stringify(value);
}

export function celList(values: readonly (string | number)[]): string {
  return `[${values.map((value) => (typeof value === 'number' ? String(value) : celString(value))).join(', ')}]`;
}

/**
 * A map whose keys are the (possibly repeated) strings of `list`, for lookups in constant time:
 * the API server stops an expression past its cost limit, and a scan of every port for each
 * port made a Service of 1,000 ports exceed it. Sorted first, so repeats are neighbours and
 * dropped (a map literal must not repeat a key).
 */
export function setOf(list: string): string {
  return `[${list}.sort()].map(sorted, sorted.transformList(i, n, i == 0 || sorted[i - 1] != n, n))[0].transformMapEntry(i, n, {n: true})`;
}

/** A port's optional string field, `''` when absent. */
export function field(port: string, name: 'name' | 'appProtocol' | 'protocol'): string {
  return `(has(${port}.${name}) ? ${port}.${name} : '')`;
}

/** The Kubernetes transport protocol, TCP when absent (as the API server defaults it). */
export function transport(port: string): string {
  return `(has(${port}.protocol) ? ${port}.protocol : 'TCP')`;
}

/** What Istio reads the protocol from: appProtocol when set (it replaces the name), else the name. */
function label(port: string): string {
  return `(has(${port}.appProtocol) ? ${port}.appProtocol : ${field(port, 'name')})`;
}

/**
 * Whether a protocol word names a protocol. Istio lower-cases it as Go does; CEL lower-cases
 * ASCII only. The only code points Go lower-cases to ASCII that are not ASCII are `İ` (to `i`)
 * and the Kelvin sign (to `k`), and no protocol word holds a `k`: replacing `İ` is enough.
 */
function isProtocolWord(word: string): string {
  return `(${word}.replace(${celString(CAPITAL_I_WITH_DOT)}, 'i').lowerAscii() in ${celList([...PROTOCOL_WORDS.keys()])})`;
}

/** The label cut at its first `-` (Istio's `http-web` is the word `http`). */
export function firstWord(text: string): string {
  return `(${text}.indexOf('-') >= 0 ? ${text}.substring(0, ${text}.indexOf('-')) : ${text})`;
}

/** Whether the label names a protocol: a `grpc-web` prefix (any case), else its first word. */
export function labelNamesProtocol(text: string): string {
  const prefix = GRPC_WEB.length;
  return `((${text}.size() >= ${prefix} && ${text}.substring(0, ${prefix}).lowerAscii() == ${celString(GRPC_WEB)}) || ${isProtocolWord(firstWord(text))})`;
}

/**
 * Whether Istio classifies the port, i.e. does not fall back to sniffing: UDP; one of
 * Kubernetes' own appProtocol values (matched exactly); a label naming a protocol; or, failing
 * those, a server-first port number Istio treats as TCP.
 */
export function isClassified(port: string): string {
  return (
    `(${transport(port)} == 'UDP'` +
    ` || (has(${port}.appProtocol) && ${port}.appProtocol in ${celList([...KUBERNETES_APP_PROTOCOLS.keys()])})` +
    ` || ${labelNamesProtocol(label(port))}` +
    ` || ${port}.port in ${celList([...SERVER_FIRST_PORTS])})`
  );
}

/**
 * A port's identity as a finding's subject: port number, transport, name and appProtocol (what
 * the webhook grandfathers findings by on UPDATE), as one string to look up in a set.
 */
export function portIdentity(port: string): string {
  return `(string(${port}.port) + '/' + ${transport(port)} + '/' + ${field(port, 'name')} + '/' + ${field(port, 'appProtocol')})`;
}

/** `port 80 "web"` (or `port 80` when unnamed), as the policy messages name a port. */
export function describePort(port: string): string {
  return `('port ' + string(${port}.port) + (has(${port}.name) ? ' "' + ${port}.name + '"' : ''))`;
}
