/**
 * Service mutation (DESIGN §1.3): give ports that Istio would sniff a protocol-prefixed name,
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
} from './service-ports.ts';
import type { KubeObject, MutationNote, MutationResult } from './types.ts';
import { fitWarning } from './messages.ts';

// The hint tables are shared with validation (for the examples in its messages); mutation is
// where callers configure them, so they are offered here too.
export { DEFAULT_NAME_HINTS, DEFAULT_PORT_HINTS, DEFAULT_PROTOCOL_HINTS } from './service-ports.ts';
export type { ProtocolHints } from './service-ports.ts';

/**
 * Renames each port Istio cannot classify to `<protocol>-<name>` (or `<protocol>-<port>`),
 * the protocol coming from `hints`. Ports without a hint are left for validation to report.
 * With `oldObject` (UPDATE), ports that already existed keep their names: something such as
 * an Ingress may refer to them by name.
 */
export function mutateServicePorts(
  service: KubeObject,
  hints: ProtocolHints,
  oldObject?: KubeObject,
): MutationResult<KubeObject> {
  const mutated = copyPathToPorts(service);
  const existingPorts = new Set(readServicePorts(oldObject).map(transportKey));
  const portItems = servicePortItems(mutated);
  const namesInUse = portNamesByIndex(portItems);
  // How many ports hold each name: a Service may have thousands of ports, so "is this name
  // taken by another port" must not scan them all (that made 10,000 ports take seconds).
  const holders = new Map<string, number>();
  for (const name of namesInUse.values()) holders.set(name, (holders.get(name) ?? 0) + 1);
  const notes: MutationNote[] = [];

  for (const port of readServicePorts(mutated)) {
    if (!mayRename(port) || existingPorts.has(transportKey(port))) continue;
    const suggestion = suggestProtocol(port, hints);
    if (!suggestion) continue;
    const ownName = namesInUse.get(port.index);
    const newName = proposePortNames(suggestion.protocol, port).find((name) => (holders.get(name) ?? 0) - (name === ownName ? 1 : 0) === 0);
    if (newName === undefined) continue;

    // A fresh object rather than an edit: the items are the input's own (only the path to
    // them is copied), and YAML aliases (in `check --fix` input) can make two ports one object.
    portItems[port.index] = { ...port.item, name: newName };
    if (ownName !== undefined) holders.set(ownName, (holders.get(ownName) ?? 1) - 1);
    holders.set(newName, (holders.get(newName) ?? 0) + 1);
    namesInUse.set(port.index, newName);
    notes.push({ field: `${portPath(port)}.name`, message: renameNote(port, newName, suggestion) });
  }
  return { mutated, notes };
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

function renameNote(port: ServicePortEntry, newName: string, suggestion: ProtocolSuggestion): string {
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
  return fitWarning(
    undefined,
    `${where}: ${renamed} so Istio need not sniff it: ${because(` ${quote(suggestion.matched)}`)}; ${advice}.`,
    `${where}: ${renamed} so Istio need not sniff it: ${because('')}; ${advice}.`,
  );
}
