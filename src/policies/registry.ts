/**
 * The single record of what the webhook judges: every kind a policy applies to, every rule it
 * can report, and what it reads from the cluster. Dispatch (catalog.ts), the webhook
 * configurations, the informer and audit kinds, the `rules` command and the tests of the chart
 * and the README are all derived from this list, so adding a rule is one policy file, its test
 * and one line in the rule table of its module below.
 *
 * Pure data plus the policy functions; nothing here does I/O.
 */
import type { Config } from '../config.ts';
import { ISTIO_NETWORKING_API_VERSIONS, ISTIO_NETWORKING_GROUP } from '../istio/api-versions.ts';
import type { KubeObject, MutationResult, Violation } from './types.ts';
import { isServiceSkipped, validateServicePorts } from './service-ports.ts';
import { mutateServicePorts } from './service-port-mutation.ts';
import { mutateNamespace, validateNamespace, validateNamespaceInjected, type InjectionOptions } from './namespace-injection.ts';
import { mutatePodProxyConfig } from './pod-proxy-config.ts';
import { validateGateway } from './gateway.ts';
import { validateGatewayConflicts } from './gateway-conflicts.ts';
import { validateVirtualService } from './virtual-service.ts';
import { validateVirtualServiceGatewayHosts } from './virtual-service-gateway-hosts.ts';
import { validateDestinationRule } from './destination-rule.ts';
import { exceededLimit } from './object-limits.ts';
import { DEFAULT_NAMESPACE, type TrafficWorld } from './traffic-world.ts';

// ---------------------------------------------------------------------------------------------
// Kinds
// ---------------------------------------------------------------------------------------------

export type Operation = 'CREATE' | 'UPDATE';

/** A Kubernetes kind as the API server serves it. */
export interface KindSpec {
  /** API group; `''` for the core API. */
  readonly group: string;
  /** Served versions, newest first; the policies read every one the same way. */
  readonly versions: readonly string[];
  readonly kind: string;
  /** The plural resource name of REST paths, webhook rules and RBAC. */
  readonly resource: string;
  readonly scope: 'Namespaced' | 'Cluster';
}

const core = (kind: string, resource: string, scope: KindSpec['scope']): KindSpec => ({ group: '', versions: ['v1'], kind, resource, scope });
const istio = (kind: string, resource: string): KindSpec => ({ group: ISTIO_NETWORKING_GROUP, versions: ISTIO_NETWORKING_API_VERSIONS, kind, resource, scope: 'Namespaced' });

export const SERVICE = core('Service', 'services', 'Namespaced');
export const NAMESPACE = core('Namespace', 'namespaces', 'Cluster');
export const POD = core('Pod', 'pods', 'Namespaced');
export const GATEWAY = istio('Gateway', 'gateways');
export const VIRTUAL_SERVICE = istio('VirtualService', 'virtualservices');
export const SERVICE_ENTRY = istio('ServiceEntry', 'serviceentries');
export const DESTINATION_RULE = istio('DestinationRule', 'destinationrules');

/** `group/Kind`, with the empty group for the core API (`/Service`). */
export type KindKey = string;

export function kindKey(group: string | undefined, kind: string): KindKey {
  return `${group ?? ''}/${kind}`;
}

// ---------------------------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------------------------

export type Severity = 'error' | 'warning';

export interface RuleSpec {
  /** Part of the interface: CLI JSON, metrics, logs and reports use it verbatim. */
  readonly id: string;
  readonly severity: Severity;
  /** The Istio analyzer or validation message codes the rule mirrors; empty for none. */
  readonly istioCodes: readonly string[];
  /** One line: what the rule finds. */
  readonly summary: string;
  /**
   * Judges objects already stored in the cluster only (`audit`): at admission the webhook's
   * own mutation settles what the rule would find.
   */
  readonly storedOnly?: boolean;
}

const SERVICE_RULES = [
  { id: 'port-protocol', severity: 'error', istioCodes: ['IST0118'], summary: 'a port has no protocol Istio can read from its name or appProtocol' },
  { id: 'port-name-duplicate', severity: 'error', istioCodes: [], summary: 'two ports share a name' },
  { id: 'port-duplicate', severity: 'error', istioCodes: [], summary: 'two ports share port number and protocol' },
  { id: 'externalname-port', severity: 'error', istioCodes: ['IST0150'], summary: 'an ExternalName Service port is unclassified or named exactly tcp' },
] as const satisfies readonly RuleSpec[];

const NAMESPACE_RULES = [
  { id: 'namespace-injection-conflict', severity: 'warning', istioCodes: ['IST0123'], summary: 'a Namespace carries injection labels that contradict each other' },
  {
    id: 'namespace-not-injected',
    severity: 'warning',
    istioCodes: ['IST0102'],
    summary: 'a Namespace lacks the injection label the webhook gives new namespaces',
    storedOnly: true,
  },
] as const satisfies readonly RuleSpec[];

/** Reported by every traffic kind when the cluster state it needs cannot be read. */
const TRAFFIC_RULES = [
  { id: 'traffic-checks-unavailable', severity: 'warning', istioCodes: [], summary: 'the cluster state could not be read, so the cluster-aware rules were skipped' },
] as const satisfies readonly RuleSpec[];

const GATEWAY_RULES = [
  { id: 'gateway-port-name-duplicate', severity: 'error', istioCodes: ['IST0106'], summary: 'two servers of a Gateway share a port name' },
  { id: 'gateway-protocol', severity: 'error', istioCodes: ['IST0106'], summary: 'a server protocol is not one Istio parses' },
  { id: 'gateway-tls-missing', severity: 'error', istioCodes: ['IST0106'], summary: 'an HTTPS or TLS server has no tls settings' },
  { id: 'gateway-servers-missing', severity: 'error', istioCodes: ['IST0106'], summary: 'a Gateway has no servers' },
  { id: 'gateway-hosts-missing', severity: 'error', istioCodes: ['IST0106'], summary: 'a server has no hosts' },
  { id: 'gateway-port-missing', severity: 'error', istioCodes: ['IST0106'], summary: 'a server has no port' },
  { id: 'gateway-port-name-missing', severity: 'error', istioCodes: ['IST0106'], summary: 'a server port has no name' },
  { id: 'gateway-port-number', severity: 'error', istioCodes: ['IST0106'], summary: 'a server port number is missing or outside 1..65535' },
  { id: 'gateway-tls-credentials', severity: 'error', istioCodes: ['IST0106'], summary: 'a SIMPLE or MUTUAL server has no credentialName and lacks a certificate, key or CA bundle' },
  { id: 'gateway-tls-on-plain-port', severity: 'error', istioCodes: ['IST0106'], summary: 'a server of a protocol without TLS has tls settings Istio refuses' },
  { id: 'gateway-port-not-exposed', severity: 'warning', istioCodes: ['IST0162', 'IST0101'], summary: "no Service of the gateway's pods exposes a server port" },
  { id: 'gateway-conflict', severity: 'warning', istioCodes: ['IST0145'], summary: 'another Gateway on the same workloads serves the same port and host' },
  ...TRAFFIC_RULES,
] as const satisfies readonly RuleSpec[];

const VIRTUAL_SERVICE_RULES = [
  { id: 'virtualservice-destination-not-found', severity: 'warning', istioCodes: ['IST0101'], summary: 'a destination or mirror host matches no Service or ServiceEntry' },
  { id: 'virtualservice-port-not-found', severity: 'warning', istioCodes: ['IST0101'], summary: 'the destination has no such port' },
  { id: 'virtualservice-port-required', severity: 'warning', istioCodes: ['IST0112'], summary: 'the destination has several ports and the route names none' },
  { id: 'virtualservice-gateway-not-found', severity: 'warning', istioCodes: ['IST0101', 'IST0165'], summary: 'a referenced Gateway does not exist' },
  { id: 'virtualservice-routes-missing', severity: 'error', istioCodes: ['IST0106'], summary: 'a VirtualService has no http, tcp or tls routes' },
  { id: 'virtualservice-route-action-missing', severity: 'error', istioCodes: ['IST0106'], summary: 'a route has nothing to do: no route entries (for http, nor a redirect, directResponse or delegate)' },
  { id: 'virtualservice-destination-missing', severity: 'error', istioCodes: ['IST0106'], summary: 'a route entry has no destination' },
  { id: 'virtualservice-weights-zero', severity: 'error', istioCodes: ['IST0106'], summary: 'the weights of several destinations add up to 0' },
  { id: 'virtualservice-host-not-in-gateway', severity: 'warning', istioCodes: ['IST0132'], summary: 'a referenced Gateway serves none of the hosts' },
  { id: 'virtualservice-sni-hosts', severity: 'error', istioCodes: ['IST0106'], summary: "a TLS route's sniHosts entry is outside the hosts" },
  { id: 'virtualservice-sni-host-address', severity: 'warning', istioCodes: ['IST0133'], summary: "a TLS route's sniHosts entry is an IP address" },
  { id: 'virtualservice-subset-not-found', severity: 'warning', istioCodes: ['IST0101'], summary: 'no DestinationRule for the destination host defines the subset' },
  { id: 'virtualservice-mesh-host-conflict', severity: 'warning', istioCodes: ['IST0109'], summary: 'another VirtualService bound to the mesh defines the same host for the same namespaces' },
  ...TRAFFIC_RULES,
] as const satisfies readonly RuleSpec[];

const DESTINATION_RULE_RULES = [
  { id: 'destinationrule-host-not-found', severity: 'warning', istioCodes: ['IST0174'], summary: 'the host matches no Service or ServiceEntry' },
  ...TRAFFIC_RULES,
] as const satisfies readonly RuleSpec[];

/** Every rule id; the type every Violation's `rule` has. */
export type RuleId = (typeof SERVICE_RULES | typeof NAMESPACE_RULES | typeof GATEWAY_RULES | typeof VIRTUAL_SERVICE_RULES | typeof DESTINATION_RULE_RULES)[number]['id'];

// ---------------------------------------------------------------------------------------------
// Policy modules
// ---------------------------------------------------------------------------------------------

export type PolicyConfig = Pick<Config, 'exemptNamespaces' | 'mutation' | 'injection' | 'namespace'> &
  Partial<Pick<Config, 'holdApplicationUntilProxyStarts'>>;

/**
 * What some policies need beyond the object and the configuration. Opaque to the HTTP layer,
 * which only passes it through.
 */
export interface PolicyContext {
  /**
   * The cluster as the Gateway and VirtualService checks see it. Without it only their
   * structural rules run (the webhook with traffic checks off).
   */
  readonly traffic?: TrafficWorld | undefined;
}

/** Everything a policy function is given: the one signature of validate and mutate. */
export interface PolicyInput {
  readonly object: KubeObject;
  /** Namespace the object lives in (namespaced kinds), when known. */
  readonly namespace: string | undefined;
  readonly config: PolicyConfig;
  readonly context: PolicyContext;
  readonly operation: Operation;
  /** The stored object an UPDATE replaces. */
  readonly oldObject?: KubeObject | undefined;
}

/** A webhook option without which the API server never sends the kind. */
export type Feature = 'trafficChecks' | 'holdApplicationUntilProxyStarts';

export interface PolicyModule {
  readonly kind: KindSpec;
  /** Operations the validating webhook is sent; none: the kind is not validated. */
  readonly validates: readonly Operation[];
  /** Operations the mutating webhook is sent; none: the kind is not mutated. */
  readonly mutates: readonly Operation[];
  /** The option that registers the kind with the webhook; undefined: always registered. */
  readonly enabledBy?: Feature;
  readonly rules: readonly RuleSpec[];
  /** Kinds the policy looks up in the cluster (informers, `check --cluster`, `audit`). */
  readonly reads: readonly KindSpec[];
  /** Objects of the kind the policy leaves alone beyond the exempt namespaces. */
  readonly skips?: (input: PolicyInput) => boolean;
  /** Why the object is too big to judge; undefined when it is not. */
  readonly overLimit?: (input: PolicyInput) => string | undefined;
  readonly validate?: (input: PolicyInput) => Violation[];
  /** The `storedOnly` rules: run on objects read back from the cluster, never at admission. */
  readonly validateStored?: (input: PolicyInput) => Violation[];
  readonly mutate?: (input: PolicyInput) => MutationResult<KubeObject> | undefined;
}

/** The injection options the namespace mutation decides with: the webhook never labels its own or exempt namespaces. */
export function injectionOptions(config: PolicyConfig): InjectionOptions {
  return { ...config.injection, excludedNamespaces: [...config.injection.excludedNamespaces, ...config.exemptNamespaces, config.namespace] };
}

const skipService = ({ object, namespace, config }: PolicyInput) => isServiceSkipped(object, namespace, config.exemptNamespaces);

export const POLICY_MODULES: readonly PolicyModule[] = [
  {
    kind: SERVICE,
    validates: ['CREATE', 'UPDATE'],
    mutates: ['CREATE', 'UPDATE'],
    rules: SERVICE_RULES,
    reads: [],
    skips: skipService,
    overLimit: ({ object }) => exceededLimit('Service', object),
    validate: ({ object, config }) => validateServicePorts(object, config.mutation),
    mutate: ({ object, config, operation, oldObject }) => mutateServicePorts(object, config.mutation, operation === 'UPDATE' ? oldObject : undefined),
  },
  {
    kind: NAMESPACE,
    validates: ['CREATE', 'UPDATE'],
    // Injection labels are a decision made when a namespace is created; later edits are the owner's.
    mutates: ['CREATE'],
    rules: NAMESPACE_RULES,
    reads: [],
    overLimit: ({ object }) => exceededLimit('Namespace', object),
    validate: ({ object }) => validateNamespace(object),
    validateStored: ({ object, config }) => validateNamespaceInjected(object, injectionOptions(config)),
    mutate: ({ object, config, operation }) => (operation === 'CREATE' ? mutateNamespace(object, injectionOptions(config)) : undefined),
  },
  {
    kind: GATEWAY,
    validates: ['CREATE', 'UPDATE'],
    mutates: [],
    enabledBy: 'trafficChecks',
    rules: GATEWAY_RULES,
    reads: [SERVICE, GATEWAY],
    overLimit: ({ object }) => exceededLimit('Gateway', object),
    validate: ({ object, namespace, context }) =>
      validateGateway(object, context.traffic).concat(validateGatewayConflicts(object, namespace ?? DEFAULT_NAMESPACE, context.traffic)),
  },
  {
    kind: VIRTUAL_SERVICE,
    validates: ['CREATE', 'UPDATE'],
    mutates: [],
    enabledBy: 'trafficChecks',
    rules: VIRTUAL_SERVICE_RULES,
    reads: [SERVICE, GATEWAY, SERVICE_ENTRY, DESTINATION_RULE, VIRTUAL_SERVICE],
    overLimit: ({ object }) => exceededLimit('VirtualService', object),
    // An object without a namespace lands where kubectl puts it by default.
    validate: ({ object, namespace, context }) =>
      validateVirtualService(object, namespace ?? DEFAULT_NAMESPACE, context.traffic).concat(
        validateVirtualServiceGatewayHosts(object, namespace ?? DEFAULT_NAMESPACE, context.traffic),
      ),
  },
  {
    kind: DESTINATION_RULE,
    validates: ['CREATE', 'UPDATE'],
    mutates: [],
    enabledBy: 'trafficChecks',
    rules: DESTINATION_RULE_RULES,
    reads: [SERVICE, SERVICE_ENTRY],
    validate: ({ object, namespace, context }) => validateDestinationRule(object, namespace ?? DEFAULT_NAMESPACE, context.traffic),
  },
  {
    kind: POD,
    validates: [],
    // Istio reads the annotation when it injects the sidecar, which happens on CREATE. Only
    // Pods of injected namespaces get here: the webhook configuration's namespaceSelector
    // decides that, so nothing here looks the namespace up.
    mutates: ['CREATE'],
    enabledBy: 'holdApplicationUntilProxyStarts',
    rules: [],
    reads: [],
    mutate: ({ object, config, operation }) => (operation === 'CREATE' && config.holdApplicationUntilProxyStarts === true ? mutatePodProxyConfig(object) : undefined),
  },
];

const MODULES_BY_KEY: ReadonlyMap<KindKey, PolicyModule> = new Map(POLICY_MODULES.map((module) => [kindKey(module.kind.group, module.kind.kind), module]));

/** The module judging objects of `key`, if any. */
export function policyModuleFor(key: KindKey): PolicyModule | undefined {
  return MODULES_BY_KEY.get(key);
}

// ---------------------------------------------------------------------------------------------
// Derived views
// ---------------------------------------------------------------------------------------------

/** A rule with the kinds it judges. */
export interface RegisteredRule extends RuleSpec {
  readonly kinds: readonly string[];
}

/** Every rule once, in module order, with the kinds of every module that reports it. */
export const REGISTERED_RULES: readonly RegisteredRule[] = (() => {
  const byId = new Map<string, RegisteredRule>();
  for (const module of POLICY_MODULES) {
    for (const rule of module.rules) {
      const known = byId.get(rule.id);
      byId.set(rule.id, { ...rule, kinds: [...(known?.kinds ?? []), module.kind.kind] });
    }
  }
  return [...byId.values()];
})();

/** Every kind any option of the webhook configurations can send to the webhook. */
export const REGISTERED_KINDS: readonly string[] = POLICY_MODULES.map((module) => module.kind.kind);

/** Kinds that have validation rules: what `audit` lists and judges. */
export const VALIDATED_MODULES: readonly PolicyModule[] = POLICY_MODULES.filter((module) => module.validate !== undefined);

/** Every kind some policy reads from the cluster, once each. */
export const CLUSTER_READS: readonly KindSpec[] = [...new Set(POLICY_MODULES.flatMap((module) => module.reads))];
