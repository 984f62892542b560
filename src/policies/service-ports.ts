/**
 * Service ports as Istio sees them: which Services to leave alone, how to read ports from
 * untrusted input, which protocol a port probably speaks, and the Service port validation rules.
 *
 * Pure: no I/O, no configuration lookups; callers pass everything in.
 */

import { classifyPort, ISTIO_PORT_PREFIXES, parseProtocolWord, prefixFor } from '../istio/protocol.ts';
import { isValidServicePortName } from '../kubernetes-names.ts';
import { ANALYZER_SKIPPED_NAMESPACES } from './system-namespaces.ts';
import { isRecord, type KubeObject, type Violation } from './types.ts';
import { fitMessage, LazilyWorded, type MessageForm } from './messages.ts';

// ---------------------------------------------------------------------------------------------
// Which Services are skipped
// ---------------------------------------------------------------------------------------------

/** Namespaces Istio's analyzers never check; their Services are not meant to be in the mesh. */
export const ALWAYS_SKIPPED_NAMESPACES: readonly string[] = ANALYZER_SKIPPED_NAMESPACES;

/**
 * The label istiod puts on the Services it creates and manages itself (ambient waypoints,
 * Gateway API gateways, east-west gateways), with the values that name its controllers. Their
 * ports carry an appProtocol istiod chose (e.g. `hbone`), and istiod rewrites them on every
 * reconcile, so Istio's analyzer leaves them alone and so must the webhook: denying one would
 * break Istio's own ambient mode.
 */
export const GATEWAY_MANAGED_LABEL = 'gateway.istio.io/managed';
export const ISTIO_GATEWAY_CONTROLLERS: ReadonlySet<string> = new Set([
  'istio.io-gateway-controller',
  'istio.io-mesh-controller',
  'istio.io-eastwest-controller',
]);

/**
 * Whether the Service is left alone, as Istio's analyzer leaves it: system namespaces,
 * configured exemptions, Istio's own control plane (labelled `istio` or `release: istio`) and
 * the Services istiod's gateway controllers manage. `namespace` is the admission request's
 * namespace; without it, the object's own is used.
 */
export function isServiceSkipped(
  service: KubeObject,
  namespace: string | undefined,
  exemptNamespaces: readonly string[],
): boolean {
  const metadata = isRecord(service) && isRecord(service.metadata) ? service.metadata : {};
  const effectiveNamespace = namespace ?? (typeof metadata.namespace === 'string' ? metadata.namespace : undefined);
  if (
    effectiveNamespace !== undefined &&
    (ALWAYS_SKIPPED_NAMESPACES.includes(effectiveNamespace) || exemptNamespaces.includes(effectiveNamespace))
  ) {
    return true;
  }
  const labels = isRecord(metadata.labels) ? metadata.labels : {};
  return Object.hasOwn(labels, 'istio') || labels.release === 'istio' ||
    (Object.hasOwn(labels, GATEWAY_MANAGED_LABEL) && ISTIO_GATEWAY_CONTROLLERS.has(labels[GATEWAY_MANAGED_LABEL] as string));
}

// ---------------------------------------------------------------------------------------------
// Reading ports from untrusted input
// ---------------------------------------------------------------------------------------------

/** One Service port that could be read; ports of the wrong shape are never turned into one. */
export interface ServicePortEntry {
  /** Position in `spec.ports`, for field paths and messages. */
  readonly index: number;
  readonly port: number;
  /** Kubernetes transport protocol; `TCP` when absent, as Kubernetes defaults it. */
  readonly protocol: string;
  /** `''` when the port has no name. */
  readonly name: string;
  readonly appProtocol: string | undefined;
  /** The port object itself, as found in `spec.ports`. */
  readonly item: Record<string, unknown>;
}

/**
 * `spec.ports` itself (not a copy) if it is an array, else nothing: the API server rejects
 * other shapes itself.
 */
export function servicePortItems(service: unknown): unknown[] {
  if (!isRecord(service) || !isRecord(service.spec)) return [];
  const ports = service.spec.ports;
  return Array.isArray(ports) ? ports : [];
}

/**
 * The ports that have a readable shape. A port whose fields have the wrong types (a numeric
 * name, a string port number...) is left out rather than guessed at: the API server refuses to
 * decode such an object anyway, and a guess would produce misleading messages. `null` counts
 * as absent, as in Kubernetes' JSON decoding.
 */
export function readServicePorts(service: unknown): ServicePortEntry[] {
  const entries: ServicePortEntry[] = [];
  servicePortItems(service).forEach((item, index) => {
    const entry = readServicePort(item, index);
    if (entry) entries.push(entry);
  });
  return entries;
}

function readServicePort(item: unknown, index: number): ServicePortEntry | undefined {
  if (!isRecord(item)) return undefined;
  const port = item.port;
  const protocol = item.protocol ?? 'TCP';
  const name = item.name ?? '';
  const appProtocol = item.appProtocol ?? undefined;
  if (typeof port !== 'number' || !Number.isInteger(port)) return undefined;
  if (typeof protocol !== 'string' || typeof name !== 'string') return undefined;
  if (appProtocol !== undefined && typeof appProtocol !== 'string') return undefined;
  return { index, port, protocol, name, appProtocol, item };
}

/** Kubernetes' uniqueness key for a Service port: its number and transport protocol. */
export function transportKey(port: ServicePortEntry): string {
  return `${port.protocol}/${port.port}`;
}

// ---------------------------------------------------------------------------------------------
// Which protocol a port probably speaks
// ---------------------------------------------------------------------------------------------

/** Where to look for a port's likely protocol. Values are lower-case Istio prefixes. */
export interface ProtocolHints {
  /** Port name (whole, or its head before the first '-'; any case) → protocol. */
  readonly nameHints: Readonly<Record<string, string>>;
  /** Port number as a decimal string → protocol. */
  readonly portHints: Readonly<Record<string, string>>;
  /** Used when no hint matches; unset means a port without a hint is left as it is. */
  readonly defaultProtocol?: string | undefined;
}

/**
 * Only names whose protocol is near certain: a wrong `http` guess breaks a non-HTTP port,
 * while `tcp` is always safe for a TCP port (it only forgoes HTTP features).
 */
export const DEFAULT_NAME_HINTS: Readonly<Record<string, string>> = Object.freeze({
  web: 'http',
  www: 'http',
  metrics: 'http',
  ui: 'http',
  api: 'http',
  admin: 'http',
  rest: 'http',
  graphql: 'http',
  h2c: 'http2',
  postgres: 'tcp',
  postgresql: 'tcp',
  amqp: 'tcp',
  kafka: 'tcp',
  zookeeper: 'tcp',
  nats: 'tcp',
  mqtt: 'tcp',
  memcached: 'tcp',
  ssh: 'tcp',
  ldap: 'tcp',
  cassandra: 'tcp',
  cql: 'tcp',
  mariadb: 'mysql',
  mongodb: 'mongo',
});

/**
 * Only ports whose protocol is near certain. 8080 and the like are deliberately absent:
 * they carry anything. 25, 53, 3306 and 27017 need no entry: Istio already treats them as TCP.
 */
export const DEFAULT_PORT_HINTS: Readonly<Record<string, string>> = Object.freeze({
  '22': 'tcp',
  '80': 'http',
  '443': 'https',
  '1883': 'tcp',
  '2181': 'tcp',
  '4222': 'tcp',
  '5432': 'tcp',
  '5672': 'tcp',
  '6379': 'redis',
  '9092': 'tcp',
  '11211': 'tcp',
  '50051': 'grpc',
});

export const DEFAULT_PROTOCOL_HINTS: ProtocolHints = Object.freeze({
  nameHints: DEFAULT_NAME_HINTS,
  portHints: DEFAULT_PORT_HINTS,
});

/**
 * Prefixes that may be suggested for a TCP port. `udp` is not one: Istio would treat a TCP
 * port named `udp-…` as UDP and stop proxying its traffic.
 */
export const TCP_PORT_PREFIXES: readonly string[] = ISTIO_PORT_PREFIXES.filter((prefix) => prefix !== 'udp');

export interface ProtocolSuggestion {
  /** Lower-case Istio prefix, e.g. `http`. */
  readonly protocol: string;
  /** Which hint decided: the port's name, its number, or the configured default. */
  readonly source: 'name' | 'port' | 'default';
  /** The name, name head or port number that matched (empty for the default). */
  readonly matched: string;
}

/**
 * The protocol the hints suggest for a port, or undefined. Hint values that are not a TCP
 * Istio prefix are ignored, so a bad configuration can never produce a name Istio misreads.
 */
export function suggestProtocol(
  port: { readonly name: string; readonly port: number },
  hints: ProtocolHints,
): ProtocolSuggestion | undefined {
  const nameCandidates = port.name === '' ? [] : [port.name, port.name.split('-', 1)[0] ?? ''];
  for (const candidate of nameCandidates) {
    const protocol = hintIndex(hints.nameHints, NAME_HINT_INDEXES, lowerCase).get(candidate.toLowerCase());
    if (protocol) return { protocol, source: 'name', matched: candidate };
  }
  const portText = String(port.port);
  const byPort = hintIndex(hints.portHints, PORT_HINT_INDEXES, asIs).get(portText);
  if (byPort) return { protocol: byPort, source: 'port', matched: portText };
  const byDefault = usableProtocol(hints.defaultProtocol);
  return byDefault ? { protocol: byDefault, source: 'default', matched: '' } : undefined;
}

/**
 * The hints as `suggestProtocol` reads them: name keys lower-cased, each key's first usable
 * protocol, the default only when usable. What the admission policies' CEL looks hints up in.
 */
export function normalisedHints(hints: ProtocolHints): { names: ReadonlyMap<string, string>; ports: ReadonlyMap<string, string>; fallback: string | undefined } {
  return {
    names: hintIndex(hints.nameHints, NAME_HINT_INDEXES, lowerCase),
    ports: hintIndex(hints.portHints, PORT_HINT_INDEXES, asIs),
    fallback: usableProtocol(hints.defaultProtocol),
  };
}

/**
 * A hint table as a map from normalised key to protocol: for each key, the first entry (in
 * table order) with a usable protocol. Own entries only: a port named `constructor` must not
 * find Object.prototype's. Frozen tables (the defaults, and every table in the frozen config)
 * are indexed once; walking the table for every port of every request was a hot spot.
 */
function hintIndex(
  table: Readonly<Record<string, string>>,
  cache: WeakMap<object, ReadonlyMap<string, string>>,
  normalise: (key: string) => string,
): ReadonlyMap<string, string> {
  const cached = cache.get(table);
  if (cached) return cached;
  const index = new Map<string, string>();
  for (const [key, value] of Object.entries(table)) {
    const normalised = normalise(key);
    if (index.has(normalised)) continue;
    const protocol = usableProtocol(value);
    if (protocol) index.set(normalised, protocol);
  }
  if (Object.isFrozen(table)) cache.set(table, index);
  return index;
}

const NAME_HINT_INDEXES = new WeakMap<object, ReadonlyMap<string, string>>();
const PORT_HINT_INDEXES = new WeakMap<object, ReadonlyMap<string, string>>();
const lowerCase = (key: string) => key.toLowerCase();
const asIs = (key: string) => key;

function usableProtocol(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const protocol = value.toLowerCase();
  return TCP_PORT_PREFIXES.includes(protocol) ? protocol : undefined;
}

/**
 * Names that would make Istio classify the port as `protocol`, best first:
 * `<protocol>-<name>`, `<protocol>-<port>`, `<protocol>-<port>-<index>`. Each is a valid
 * Kubernetes port name (lower-cased, at most 63 characters) and really classifies as
 * `protocol` (`grpc` + `web…` would read as grpc-web). Collisions are the caller's concern.
 */
export function proposePortNames(protocol: string, port: ServicePortEntry): string[] {
  const names: string[] = [];
  // Plain loops, no copies of the port: this runs for every unclassified port, in both
  // webhooks (validation's examples, mutation's rename), and copying the port entry for each
  // candidate showed up in the profile of a Service with ports to rename.
  for (const suffix of nameSuffixes(port, false)) {
    const name = portNameFor(protocol, suffix, port);
    if (name !== undefined && !names.includes(name)) names.push(name);
  }
  return names;
}

/** What follows `<protocol>-` in a proposed name, best first; `byNumber` leaves the name out. */
function nameSuffixes(port: ServicePortEntry, byNumber: boolean): string[] {
  const byPort = [String(port.port), `${port.port}-${port.index}`];
  return byNumber || port.name === '' ? byPort : [port.name, ...byPort];
}

/** `<protocol>-<suffix>`, lower-cased, if it is a valid port name that Istio reads as `protocol`. */
function portNameFor(protocol: string, suffix: string, port: ServicePortEntry): string | undefined {
  const name = `${protocol}-${suffix}`.toLowerCase();
  if (!isValidServicePortName(name)) return undefined;
  return classifyPort({ protocol: port.protocol, port: port.port, name }) === parseProtocolWord(protocol) ? name : undefined;
}

// ---------------------------------------------------------------------------------------------
// Validation (the README's Service rules)
// ---------------------------------------------------------------------------------------------

/**
 * The Service port rules, in port order. Never throws: what cannot be read yields nothing.
 * `hints` only shape the examples in messages.
 */
export function validateServicePorts(service: KubeObject, hints: ProtocolHints = DEFAULT_PROTOCOL_HINTS): Violation[] {
  const isExternalName = isRecord(service) && isRecord(service.spec) && service.spec.type === 'ExternalName';
  const firstWithName = new Map<string, ServicePortEntry>();
  const firstWithTransport = new Map<string, ServicePortEntry>();
  const violations: Violation[] = [];

  for (const port of readServicePorts(service)) {
    const unsupported = classifyPort(port) === 'Unsupported';
    if (unsupported) violations.push(unsupportedProtocol(port, hints));
    if (isExternalName && (unsupported || port.name === 'tcp')) violations.push(externalNamePort(port, unsupported, hints));

    const sameName = port.name === '' ? undefined : firstWithName.get(port.name);
    if (sameName) violations.push(duplicateName(port, sameName));
    else if (port.name !== '') firstWithName.set(port.name, port);

    const sameTransport = firstWithTransport.get(transportKey(port));
    if (sameTransport) violations.push(duplicatePort(port, sameTransport));
    else firstWithTransport.set(transportKey(port), port);
  }
  return violations;
}

function unsupportedProtocol(port: ServicePortEntry, hints: ProtocolHints): Violation {
  const identity = `port-protocol|${transportKey(port)}|${port.name}|${port.appProtocol ?? ''}`;
  const { appProtocol } = port;
  if (appProtocol !== undefined) {
    return new LazilyWorded('port-protocol', 'error', `${portPath(port)}.appProtocol`, identity, () => unknownAppProtocolForms(port, appProtocol, hints));
  }
  return new LazilyWorded('port-protocol', 'error', `${portPath(port)}.name`, identity, () => unclassifiedNameForms(port, hints));
}

/**
 * Whether the name is the one `kubectl create service … --tcp=8080:8080` gives a port
 * (`<port>-<targetPort>`). That command cannot name a port, so "rename it" alone leaves its
 * users stuck: their message says how to get there.
 */
function isKubectlGeneratedName(port: ServicePortEntry): boolean {
  return port.name.startsWith(`${port.port}-`) && /^\d+$/.test(port.name.slice(String(port.port).length + 1));
}

// ---------------------------------------------------------------------------------------------
// Protocol advice: an example only from a hint, otherwise the choice stated
// ---------------------------------------------------------------------------------------------
//
// A port nothing hints at may speak anything; suggesting `http-` for it would have the user
// mark a binary protocol (epmd, smtp, a database) as HTTP, which Istio then breaks. So only a
// hint (the name or appProtocol, the port number, the configured default: what the mutation
// would rename by) yields an example; without one the message states the choice between the
// HTTP family and `tcp-`, which is always safe for a TCP port. Every message keeps one structure
// at every length: to fit, the user's values are cut or left out and examples are built from
// the port number, never a part of the advice dropped.

/**
 * How much of the user's values a form of a message shows: `full` quotes them whole, `cut`
 * shortens them, `bare` leaves the port name out and builds examples from the port number.
 */
type Detail = 'full' | 'cut' | 'bare';

/** A user-supplied value in a shortened message: at most this many characters of it. */
const CUT_VALUE_LENGTH = 20;

function shown(value: string, detail: Detail): string {
  return detail === 'full' || value.length <= CUT_VALUE_LENGTH ? quote(value) : quote(`${value.slice(0, CUT_VALUE_LENGTH - 1)}…`);
}

/** The protocols named when nothing hints: HTTP and gRPC (which rides on HTTP/2), else TCP. */
const UNHINTED_CHOICE = ['http', 'grpc', 'tcp'] as const;

/**
 * A name for each of `protocols`, all with the same suffix (the port's name, else its number;
 * `byNumber`: its number), as proposePortNames would give them.
 */
function examplesFor(protocols: readonly string[], port: ServicePortEntry, byNumber: boolean): string[] {
  for (const suffix of nameSuffixes(port, byNumber)) {
    const names = protocols.map((protocol) => portNameFor(protocol, suffix, port));
    if (names.every((name) => name !== undefined)) return names as string[];
  }
  return protocols.map((protocol) => proposePortNames(protocol, port)[0] ?? `${protocol}-${port.port}`);
}

/** Why a hint suggests its protocol, e.g. `the name "web" suggests http`. */
function hintReason(suggestion: ProtocolSuggestion, what: string, port: ServicePortEntry, detail: Detail): string {
  switch (suggestion.source) {
    case 'name':
      return `${what}${detail === 'full' ? ` ${quote(suggestion.matched)}` : ''} suggests ${suggestion.protocol}`;
    case 'port':
      return `port ${port.port} usually carries ${suggestion.protocol}`;
    case 'default':
      return `${suggestion.protocol} is the configured default`;
  }
}

/**
 * Which name to give a port: the hinted example with its reason (and `tcp-` should the hint be
 * wrong), or, without a hint, the HTTP family if it serves HTTP and `tcp-` otherwise.
 */
function nameChoice(port: ServicePortEntry, suggestion: ProtocolSuggestion | undefined, detail: Detail): string {
  const byNumber = detail === 'bare' || port.name === '';
  if (suggestion === undefined) {
    const [http, grpc, tcp] = examplesFor(UNHINTED_CHOICE, port, byNumber);
    return `"${http}" if it serves HTTP ("${grpc}" for gRPC), else "${tcp}"`;
  }
  const [example, tcp] = examplesFor([suggestion.protocol, 'tcp'], port, byNumber);
  const reason = hintReason(suggestion, 'the name', port, detail);
  return suggestion.protocol === 'tcp' ? `"${example}" (${reason})` : `"${example}" (${reason}; if it is not, "${tcp}")`;
}

/** A hint for an appProtocol value, and what it was read from (`its value`, `the port name`). */
interface AppProtocolHint {
  readonly suggestion: ProtocolSuggestion;
  readonly what: string;
}

/** The hint for an unrecognised appProtocol: its own value read as a name, then the port's hints. */
function appProtocolHint(port: ServicePortEntry, appProtocol: string, hints: ProtocolHints): AppProtocolHint | undefined {
  const byValue = suggestProtocol({ name: appProtocol, port: port.port }, { nameHints: hints.nameHints, portHints: {} });
  if (byValue) return { suggestion: byValue, what: 'its value' };
  const byPort = suggestProtocol(port, hints);
  return byPort && { suggestion: byPort, what: 'the port name' };
}

/** Which appProtocol value to set: as nameChoice, with values instead of names. */
function appProtocolChoice(hint: AppProtocolHint | undefined, port: ServicePortEntry, detail: Detail): string {
  if (hint === undefined) return '"http" if it serves HTTP ("grpc" for gRPC), else "tcp"';
  const { protocol } = hint.suggestion;
  const reason = hintReason(hint.suggestion, hint.what, port, detail);
  return protocol === 'tcp' ? `"tcp" (${reason})` : `"${protocol}" (${reason}; if it is not, "tcp")`;
}

/** The same text at each level of detail, most detailed first; the shorter ones are worded when read. */
function atEveryLength(text: (detail: Detail) => string): readonly MessageForm[] {
  return [text('full'), () => text('cut'), () => text('bare')];
}

function unclassifiedNameForms(port: ServicePortEntry, hints: ProtocolHints): readonly MessageForm[] {
  const suggestion = suggestProtocol(port, hints);
  if (suggestion === undefined && isKubectlGeneratedName(port)) return generatedPortForms(port);
  return atEveryLength((detail) => port.name === ''
    ? `${describePort(port, detail)} has no name, so Istio cannot tell its protocol and will sniff it; ` +
      `name it ${nameChoice(port, suggestion, detail)}, or set appProtocol.`
    : `${describePort(port, detail)}: Istio cannot tell its protocol and will sniff it; ` +
      `rename it ${nameChoice(port, suggestion, detail)}, or set appProtocol.`);
}

function generatedPortForms(port: ServicePortEntry): readonly MessageForm[] {
  // The port number makes the examples: kubectl's name (8080-8080) says nothing more.
  return atEveryLength((detail) =>
    `${describePort(port, detail)}: Istio would sniff it, and kubectl create/expose cannot name ports: ` +
      `use --dry-run=client -o yaml, name it ${nameChoice(port, undefined, 'bare')}, then apply.`);
}

function unknownAppProtocolForms(port: ServicePortEntry, appProtocol: string, hints: ProtocolHints): readonly MessageForm[] {
  const byName = classifyPort({ ...port, appProtocol: undefined });
  const byLowerCase = classifyPort({ ...port, appProtocol: appProtocol.toLowerCase() });
  const fix = (detail: Detail): string => {
    // Only Kubernetes' own values (kubernetes.io/h2c, ws, wss) are case-sensitive.
    if (byLowerCase !== 'Unsupported') return `appProtocol values are case-sensitive: use ${shown(appProtocol.toLowerCase(), detail)}`;
    if (byName !== 'Unsupported') return `remove it so the name ${shown(port.name, detail)} decides (${prefixFor(byName)})`;
    return `set it to ${appProtocolChoice(appProtocolHint(port, appProtocol, hints), port, detail)}`;
  };
  return atEveryLength((detail) =>
    `${describePort(port, detail)}: appProtocol ${shown(appProtocol, detail === 'full' ? 'full' : 'cut')} is not a ` +
      `protocol Istio recognises, and it overrides the port name, so Istio will sniff this port; ${fix(detail)}.`);
}

/**
 * IST0150. The rule accepts every port Istio classifies except one named exactly "tcp", so the
 * advice is the port-protocol advice (a `tcp-…` name passes), and a bare "tcp" needs a suffix.
 */
function externalNamePort(port: ServicePortEntry, unsupported: boolean, hints: ProtocolHints): Violation {
  const byAppProtocol = unsupported && port.appProtocol !== undefined;
  const problem = !unsupported
    ? 'named just "tcp"'
    : byAppProtocol ? 'with an unknown appProtocol' : 'without an Istio protocol';
  const fix = (detail: Detail): string => {
    if (!unsupported) return `add a suffix, e.g. "${examplesFor(['tcp'], port, true)[0]}"`;
    if (port.appProtocol !== undefined) {
      return `set appProtocol to ${appProtocolChoice(appProtocolHint(port, port.appProtocol, hints), port, detail)}`;
    }
    return `name it ${nameChoice(port, suggestProtocol(port, hints), detail)}`;
  };
  return new LazilyWorded(
    'externalname-port',
    'error',
    `${portPath(port)}.${byAppProtocol ? 'appProtocol' : 'name'}`,
    `externalname-port|${transportKey(port)}|${port.name}|${port.appProtocol ?? ''}`,
    () => atEveryLength((detail) =>
      `${describePort(port, detail)}: Istio may not forward traffic to an ExternalName Service's port ${problem} ` +
        `(IST0150); ${fix(detail)}.`),
  );
}

function duplicateName(port: ServicePortEntry, first: ServicePortEntry): Violation {
  const example = `${port.name}-${port.port}`.toLowerCase();
  const fix = isValidServicePortName(example) ? `rename one of them, e.g. to "${example}"` : 'rename one of them';
  const reason = `is already used by ${portPath(first)} (port ${first.port}); Kubernetes and Istio need unique ` +
    `port names, so ${fix}.`;
  return {
    rule: 'port-name-duplicate',
    severity: 'error',
    field: `${portPath(port)}.name`,
    identity: `port-name-duplicate|${port.name}|${transportKey(port)}`,
    ...fitMessage(
      'port-name-duplicate',
      `${describePort(port)}: the name ${reason}`,
      `${portPath(port)} (port ${port.port}): its name ${reason}`,
    ),
  };
}

function duplicatePort(port: ServicePortEntry, first: ServicePortEntry): Violation {
  const reason = `port ${port.port}/${port.protocol} is already declared by ${portPath(first)}; Kubernetes rejects ` +
    `a repeated port and protocol, so remove this entry or change its port number.`;
  return {
    rule: 'port-duplicate',
    severity: 'error',
    field: portPath(port),
    identity: `port-duplicate|${transportKey(port)}|${port.name}`,
    ...fitMessage('port-duplicate', `${describePort(port)}: ${reason}`, `${portPath(port)}: ${reason}`),
  };
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

export function portPath(port: { readonly index: number }): string {
  return `spec.ports[${port.index}]`;
}

/**
 * `spec.ports[0] (port 8080, name "web")`; without the name part for an unnamed port or when
 * `detail` is `bare`, with the name cut when it is `cut`.
 */
function describePort(port: ServicePortEntry, detail: Detail = 'full'): string {
  return port.name === '' || detail === 'bare'
    ? `${portPath(port)} (port ${port.port})`
    : `${portPath(port)} (port ${port.port}, name ${shown(port.name, detail)})`;
}

/**
 * A user-supplied value in double quotes, escaped as JSON: a name that has not passed API
 * validation yet may hold quotes or line breaks, and a warning must stay one clean line.
 */
export function quote(value: string): string {
  return JSON.stringify(value);
}
