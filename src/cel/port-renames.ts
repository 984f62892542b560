/**
 * The Service port renames as a MutatingAdmissionPolicy the API server applies itself
 * (admissionregistration.k8s.io/v1, Kubernetes 1.36 or newer): each TCP port Istio would sniff
 * gets `<protocol>-<name>`, `<protocol>-<port>` or `<protocol>-<port>-<index>`, the protocol
 * from the configured hints, as the mutating webhook renames it (src/policies/service-port-mutation.ts).
 *
 * Stable across redeploys like the webhook: on UPDATE a port whose stored counterpart (same
 * port and protocol) has its name keeps it, and one whose stored counterpart has a name this
 * rename gives such a port gets that name back; otherwise the second `kubectl apply` of a
 * renamed Service would rename again or be denied.
 *
 * One difference: two new names are not checked against each other. They can only collide when
 * a port's name reads like another port's number (`80`, or `80-2` for the second port's
 * fallback); the webhook then moves the later port to its next candidate, while here both get
 * the name and the API server refuses the duplicate. Checking each new name against every
 * other port's made a Service of 1,000 ports exceed the API server's CEL cost limit.
 * The policy cannot return warnings either: a rename is silent, where the webhook explains it.
 */
import type { Config } from '../config.ts';
import { DNS1123_LABEL_MAX_LENGTH, DNS1123_LABEL_PATTERN } from '../kubernetes-names.ts';
import { GRPC_WEB } from '../istio/protocol.ts';
import { ALWAYS_SKIPPED_NAMESPACES, normalisedHints, TCP_PORT_PREFIXES } from '../policies/service-ports.ts';
import { exemptNamespaces } from '../policies/webhook-scope.ts';
import { mutatingPolicy, namespacesOtherThan } from './policy-objects.ts';
import { celList, celString, field, firstWord, isClassified, labelNamesProtocol, setOf, transport } from './port-classification.ts';
import { MATCH_CONDITIONS } from './validating-policies.ts';

type PolicyConfig = Pick<Config, 'exemptNamespaces' | 'namespace' | 'serviceName' | 'mutation'>;

/** The policy and its binding. */
export function portRenamePolicies(config: PolicyConfig): Record<string, unknown>[] {
  const name = `${config.serviceName}-service-port-names`;
  const skippedNamespaces = [...new Set([...ALWAYS_SKIPPED_NAMESPACES, ...exemptNamespaces(config)])];
  return mutatingPolicy(name, {
    resource: 'services',
    operations: ['CREATE', 'UPDATE'],
    matchConditions: MATCH_CONDITIONS,
    variables: variables(config.mutation),
    mutations: [
      {
        patchType: 'JSONPatch',
        // `add` sets the name whether or not the port has one.
        jsonPatch: {
          expression: "variables.candidates.transformList(k, i, variables.newNames[k] != '', JSONPatch{op: 'add', path: '/spec/ports/' + string(i) + '/name', value: variables.newNames[k]})",
        },
      },
    ],
    namespaceSelector: namespacesOtherThan(skippedNamespaces),
  });
}

/** A CEL map literal: JSON's object syntax is CEL's, keys sorted as the chart's `toJson` sorts them. */
function celMap(entries: ReadonlyMap<string, string>): string {
  // Written out, not JSON.stringify(object): an object puts number-like keys ("80") first.
  const sorted = [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${sorted.map(([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value)}`).join(',')}}`;
}

/** The hint tables as `suggestProtocol` reads them; variables of their own, which the chart replaces from its values. */
export function hintVariables(hints: Config['mutation']): { name: string; expression: string }[] {
  const { names, ports, fallback } = normalisedHints(hints);
  return [
    { name: 'nameHints', expression: celMap(names) },
    { name: 'portHints', expression: celMap(ports) },
    { name: 'defaultProtocol', expression: celString(fallback ?? '') },
  ];
}

/** Prefixes whose `<prefix>-<suffix>` Istio can read as grpc-web instead (`grpc-web…`). */
const PREFIXES_READ_AS_GRPC_WEB = TCP_PORT_PREFIXES.filter((prefix) => prefix !== GRPC_WEB && GRPC_WEB.startsWith(`${prefix}-`));

function variables(hints: Config['mutation']): { name: string; expression: string }[] {
  const name = (port: string) => field(port, 'name');
  const lowerName = (port: string) => `${name(port)}.lowerAscii()`;
  const portText = (port: string) => `string(${port}.port)`;

  // The protocol the hints suggest, '' for none: the whole name, its first word, the number, the default.
  const suggestion = (port: string) =>
    `(${name(port)} != '' && ${lowerName(port)} in variables.nameHints ? variables.nameHints[${lowerName(port)}]` +
    ` : ${name(port)} != '' && ${firstWord(lowerName(port))} in variables.nameHints ? variables.nameHints[${firstWord(lowerName(port))}]` +
    ` : ${portText(port)} in variables.portHints ? variables.portHints[${portText(port)}]` +
    ' : variables.defaultProtocol)';

  // The names to give the port for `protocol` ('' gives none), best first: valid port names Istio reads as it.
  const proposals = (index: string, port: string, protocol: string) =>
    `[${name(port)} != '' ? ${protocol} + '-' + ${name(port)} : '', ${protocol} + '-' + ${portText(port)}, ${protocol} + '-' + ${portText(port)} + '-' + string(${index})]` +
    `.map(c, c.lowerAscii())` +
    `.filter(c, ${protocol} != '' && c != '' && c.size() <= ${DNS1123_LABEL_MAX_LENGTH} && c.matches(${celString(DNS1123_LABEL_PATTERN)}) && !(${protocol} in ${celList(PREFIXES_READ_AS_GRPC_WEB)} && c.startsWith(${celString(GRPC_WEB)})))`;

  // A stored name this rename gives `port`: `<prefix>-<name>`, `<prefix>-<port>` or `<prefix>-<port>-<n>` that Istio reads.
  const suffix = (stored: string) => `${stored}.substring(size(prefix) + 1)`;
  const wasRenamedTo = (port: string, stored: string) =>
    `(${labelNamesProtocol(stored)} && ${celList(TCP_PORT_PREFIXES)}.exists(prefix, ${stored}.startsWith(prefix + '-') && (` +
    `(${name(port)} != '' && ${suffix(stored)} == ${lowerName(port)}) || ${suffix(stored)} == ${portText(port)}` +
    ` || (${suffix(stored)}.startsWith(${portText(port)} + '-') && ${suffix(stored)}.substring(size(${portText(port)}) + 1).matches('^[0-9]+$')))))`;

  const port = 'variables.ports[i]';
  // Lookups go through maps, not scans of every port per port: the API server stops an
  // expression past its cost limit, and a scan per port made a Service of 1,000 ports exceed it.
  // A candidate name is classified and the port's own name is not, so "held by another port"
  // is "held by any port".
  const free = (candidate: string) => `!(${candidate} in variables.heldNames) && !(${candidate} in variables.givenNames)`;
  const storedName = `variables.storedNames[${port}.port]`;
  // Each list below is aligned with `candidates`: entry k is about port candidates[k].
  const perCandidate = (expression: string) => `variables.candidates.transformList(k, i, ${expression})`;

  return [
    ...hintVariables(hints),
    { name: 'ports', expression: 'has(object.spec.ports) ? object.spec.ports : []' },
    // Stored TCP ports by number (unique in a stored Service).
    { name: 'storedNames', expression: `(oldObject != null && has(oldObject.spec.ports) ? oldObject.spec.ports : []).filter(s, ${transport('s')} == 'TCP').transformMapEntry(j, s, {s.port: ${name('s')}})` },
    { name: 'heldNames', expression: setOf(`variables.ports.map(p, ${name('p')}).filter(n, n != '')`) },
    // Ports Istio would sniff and a rename can help: TCP, no appProtocol (which overrides any name).
    { name: 'candidates', expression: `variables.ports.transformList(i, p, ${transport('p')} == 'TCP' && !has(p.appProtocol) && !${isClassified('p')}, i)` },
    // The stored port has this very name: a legacy name something may refer to, kept.
    { name: 'kept', expression: perCandidate(`${port}.port in variables.storedNames && ${storedName} == ${name(port)}`) },
    // The stored port has a name this rename gives it: given back, whatever the hints say today.
    {
      name: 'given',
      expression: perCandidate(`!variables.kept[k] && ${port}.port in variables.storedNames && ${wasRenamedTo(port, storedName)} && !(${storedName} in variables.heldNames) ? ${storedName} : ''`),
    },
    { name: 'givenNames', expression: setOf("variables.given.filter(n, n != '')") },
    { name: 'proposed', expression: perCandidate(`variables.kept[k] || variables.given[k] != '' ? [] : [${suggestion(port)}].map(protocol, ${proposals('i', port, 'protocol')})[0]`) },
    { name: 'newNames', expression: perCandidate(`variables.given[k] != '' ? variables.given[k] : variables.proposed[k].filter(n, ${free('n')})[?0].orValue('')`) },
  ];
}
