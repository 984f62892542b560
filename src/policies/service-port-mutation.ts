/**
 * Service mutation (DESIGN §1.3): give ports that Istio would sniff a protocol-prefixed name,
 * when a hint makes the protocol clear. Every rename is reported, so a guess is never silent.
 *
 * Pure: works on a deep copy; the caller diffs it against the original to build the patch.
 */

import { classifyPort } from '../istio/protocol.ts';
import {
  fitMessage,
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
  const mutated = structuredClone(service);
  const existingPorts = new Set(readServicePorts(oldObject).map(transportKey));
  const portItems = servicePortItems(mutated);
  const namesInUse = portNamesByIndex(portItems);
  const notes: MutationNote[] = [];

  for (const port of readServicePorts(mutated)) {
    if (!mayRename(port) || existingPorts.has(transportKey(port))) continue;
    const suggestion = suggestProtocol(port, hints);
    if (!suggestion) continue;
    const newName = proposePortNames(suggestion.protocol, port).find((name) => !isNameOfAnotherPort(namesInUse, name, port.index));
    if (newName === undefined) continue;

    // A fresh object rather than an edit: YAML aliases (in `check --fix` input) can make
    // two ports one object, and structuredClone keeps them one.
    portItems[port.index] = { ...port.item, name: newName };
    namesInUse.set(port.index, newName);
    notes.push({ field: `${portPath(port)}.name`, message: renameNote(port, newName, suggestion) });
  }
  return { mutated, notes };
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

function isNameOfAnotherPort(namesInUse: ReadonlyMap<number, string>, name: string, index: number): boolean {
  for (const [otherIndex, otherName] of namesInUse) {
    if (otherIndex !== index && otherName === name) return true;
  }
  return false;
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
  return fitMessage(
    `${where}: ${renamed} so Istio need not sniff it: ${because(` ${quote(suggestion.matched)}`)}; ${advice}.`,
    `${where}: ${renamed} so Istio need not sniff it: ${because('')}; ${advice}.`,
  );
}
