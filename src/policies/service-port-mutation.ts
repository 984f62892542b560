/**
 * Service mutation: give ports that Istio would sniff a protocol-prefixed name,
 * when a hint makes the protocol clear. Every rename is reported, so a guess is never silent.
 *
 * Pure: works on a copy; the caller diffs it against the original to build the patch.
 */

import { classifyPort } from '../istio/protocol.ts';
import {
  portPath,
  proposePortNames,
  quote,
  readServicePorts,
  servicePortItems,
  suggestProtocol,
  transportKey,
  type ProtocolHints,
  type ProtocolSuggestion,
  type ServicePortEntry,
  TCP_PORT_PREFIXES,
} from './service-ports.ts';
import type { KubeObject, MutationNote, MutationResult } from './types.ts';
import { fitMessage } from './messages.ts';
import type { FittedMessage } from '../warnings.ts';

// The hint tables are shared with validation (for the examples in its messages); mutation is
// where callers configure them, so they are offered here too.
export { DEFAULT_NAME_HINTS, DEFAULT_PORT_HINTS, DEFAULT_PROTOCOL_HINTS } from './service-ports.ts';
export type { ProtocolHints } from './service-ports.ts';

/**
 * Renames each port Istio cannot classify to `<protocol>-<name>` (or `<protocol>-<port>`),
 * the protocol coming from `hints`. Ports without a hint are left for validation to report.
 *
 * With `oldObject` (UPDATE) the result is stable across redeploys: re-applying the manifest
 * that was admitted with renames must give back exactly the stored Service, or every second
 * `kubectl apply`, `helm upgrade` or GitOps sync would undo the fix (or be denied). So, for a
 * port whose stored counterpart (same port and protocol)
 * - has the same name: it is legacy and keeps it (something may refer to it by name);
 * - has the name this mutation gives such a port (`<protocol>-<name>`, `<protocol>-<port>`,
 *   `<protocol>-<port>-<n>`): it gets that name back, whatever the hints say today;
 * - has any other name: the user renamed it in the manifest, so it is treated as new.
 * The stored object is the only record needed: nothing is written on the Service, so no
 * client that replaces or applies the whole object can lose it.
 */
export function mutateServicePorts(
  service: KubeObject,
  hints: ProtocolHints,
  oldObject?: KubeObject,
): MutationResult<KubeObject> {
  const mutated = copyPathToPorts(service);
  // Kubernetes keeps (port, protocol) unique, but the mutating webhook sees objects before
  // validation: a key may stand for several stored ports. Only the first few are kept: every
  // port sharing the key looks through them, and thousands of stored ports on one key would
  // make that quadratic (seconds) for an oldObject the API server never holds.
  const storedNames = new Map<string, string[]>();
  for (const port of readServicePorts(oldObject)) {
    const key = transportKey(port);
    const names = storedNames.get(key);
    if (!names) storedNames.set(key, [port.name]);
    else if (names.length < MAX_STORED_NAMES_PER_PORT) names.push(port.name);
  }
  const portItems = servicePortItems(mutated);
  const namesInUse = portNamesByIndex(portItems);
  // How many ports hold each name: a Service may have thousands of ports, so "is this name
  // taken by another port" must not scan them all (that made 10,000 ports take seconds).
  const holders = new Map<string, number>();
  for (const name of namesInUse.values()) holders.set(name, (holders.get(name) ?? 0) + 1);
  const notes: MutationNote[] = [];

  const isFree = (name: string, ownName: string | undefined) => (holders.get(name) ?? 0) - (name === ownName ? 1 : 0) === 0;
  const rename = (port: ServicePortEntry, newName: string, note: FittedMessage) => {
    const ownName = namesInUse.get(port.index);
    // A fresh object rather than an edit: the items are the input's own (only the path to
    // them is copied), and YAML aliases (in `check --fix` input) can make two ports one object.
    portItems[port.index] = { ...port.item, name: newName };
    if (ownName !== undefined) holders.set(ownName, (holders.get(ownName) ?? 1) - 1);
    holders.set(newName, (holders.get(newName) ?? 0) + 1);
    namesInUse.set(port.index, newName);
    notes.push({ field: `${portPath(port)}.name`, ...note });
  };

  const renameable = readServicePorts(mutated).filter(mayRename);
  // Names given back first: they are what the stored Service already holds, so a new port's
  // rename must not take one of them.
  const fresh: ServicePortEntry[] = [];
  for (const port of renameable) {
    const stored = storedNames.get(transportKey(port)) ?? [];
    if (stored.includes(port.name)) continue;
    const given = stored.find((name) => wasRenamedTo(port, name) && isFree(name, namesInUse.get(port.index)));
    if (given !== undefined) rename(port, given, keptNote(port, given));
    else fresh.push(port);
  }
  for (const port of fresh) {
    const suggestion = suggestProtocol(port, hints);
    if (!suggestion) continue;
    const ownName = namesInUse.get(port.index);
    const newName = proposePortNames(suggestion.protocol, port).find((name) => isFree(name, ownName));
    if (newName !== undefined) rename(port, newName, renameNote(port, newName, suggestion));
  }
  return { mutated, notes };
}

/** Stored names looked at per (port, protocol); a stored Service has one. */
const MAX_STORED_NAMES_PER_PORT = 8;

/**
 * Whether `storedName` is a name this mutation gives `port`: `<protocol>-<name>`,
 * `<protocol>-<port>` or `<protocol>-<port>-<n>` for a protocol Istio then reads from it. Any
 * protocol counts, not only the one today's hints suggest: a rename admitted once stays,
 * even after the hint tables change.
 */
function wasRenamedTo(port: ServicePortEntry, storedName: string): boolean {
  if (classifyPort({ ...port, appProtocol: undefined, name: storedName }) === 'Unsupported') return false;
  const portNumber = String(port.port);
  // Every prefix, not just the text before the first '-': `grpc-web-…` is one prefix.
  return TCP_PORT_PREFIXES.some((protocol) => {
    if (!storedName.startsWith(`${protocol}-`)) return false;
    const suffix = storedName.slice(protocol.length + 1);
    return (
      (port.name !== '' && suffix === port.name.toLowerCase()) ||
      suffix === portNumber ||
      (suffix.startsWith(`${portNumber}-`) && /^\d+$/.test(suffix.slice(portNumber.length + 1)))
    );
  });
}

/**
 * A copy of the Service for renaming ports in: new objects along the path to `spec.ports` (the
 * Service, its spec, the ports array), everything else shared with the input. Only port items
 * are ever replaced, never edited, so neither object changes the other; and the diff skips
 * the shared subtrees (same reference) instead of walking them. A deep copy cloned and diffed
 * the whole object on every request, last-applied annotation and managedFields included.
 */
function copyPathToPorts(service: KubeObject): KubeObject {
  if (typeof service !== 'object' || service === null || Array.isArray(service)) return structuredClone(service);
  const spec = service.spec;
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) return { ...service };
  const ports = (spec as Record<string, unknown>)['ports'];
  return { ...service, spec: { ...spec, ...(Array.isArray(ports) ? { ports: [...ports] } : {}) } };
}

/**
 * Only TCP ports Istio would sniff, and not when an unrecognised appProtocol is the cause: it
 * overrides any name, so a rename would not help (validation explains that case). UDP ports
 * are never sniffed, and hints describe TCP protocols, so SCTP ports are left alone too.
 */
function mayRename(port: ServicePortEntry): boolean {
  return port.protocol === 'TCP' && port.appProtocol === undefined && classifyPort(port) === 'Unsupported';
}

/** Every port's non-empty name, including ports too malformed to rename: no new name may clash. */
function portNamesByIndex(portItems: readonly unknown[]): Map<number, string> {
  const names = new Map<number, string>();
  portItems.forEach((item, index) => {
    const name = (item as { name?: unknown } | null | undefined)?.name;
    if (typeof name === 'string' && name !== '') names.set(index, name);
  });
  return names;
}

function keptNote(port: ServicePortEntry, storedName: string): FittedMessage {
  const what = port.name === '' ? 'the unnamed port' : quote(port.name);
  const where = `${portPath(port)} (port ${port.port})`;
  return fitMessage(
    undefined,
    `${where}: kept "${storedName}" for ${what}, the name given when this port was first admitted; write "${storedName}" in the manifest to match.`,
    `${where}: kept "${storedName}", the name given when this port was first admitted.`,
  );
}

function renameNote(port: ServicePortEntry, newName: string, suggestion: ProtocolSuggestion): FittedMessage {
  const renamed = port.name === ''
    ? `named the unnamed port "${newName}"`
    : `renamed ${quote(port.name)} to "${newName}"`;
  const where = `${portPath(port)} (port ${port.port})`;
  const advice = 'if the guess is wrong, set the name yourself';
  const because = (matched: string) => {
    switch (suggestion.source) {
      case 'name':
        return `the name${matched} suggests ${suggestion.protocol}`;
      case 'port':
        return `port ${port.port} usually carries ${suggestion.protocol}`;
      case 'default':
        return `no hint matched, so the default protocol ${suggestion.protocol} applies`;
    }
  };
  return fitMessage(
    undefined,
    `${where}: ${renamed} so Istio need not sniff it: ${because(` ${quote(suggestion.matched)}`)}; ${advice}.`,
    `${where}: ${renamed} so Istio need not sniff it: ${because('')}; ${advice}.`,
  );
}
