/**
 * Istio DestinationRule checks and the DestinationRule view the VirtualService checks read
 * (the README's Istio traffic rules). Warnings: GitOps tools often apply a DestinationRule
 * before the Service it configures.
 *
 * Cluster-aware rule, run when a TrafficWorld is given:
 * - `destinationrule-host-not-found` (IST0174): `spec.host` matches no Service and no
 *   ServiceEntry, resolved as a VirtualService destination is (src/policies/destination-hosts.ts)
 *   but from the DestinationRule's namespace and `exportTo`: its traffic policy and subsets
 *   then apply to nothing. A wildcard host that reaches into the cluster's Service domain
 *   (`*.local`, `*.shop.svc.cluster.local`) is not reported: it configures Services, which no
 *   ServiceEntry host needs to declare.
 *
 * Which DestinationRule a route's subset is looked up in is keyed as Istio's analyzer keys it
 * (destinationRuleHostKey): `<name>.<namespace>.svc.cluster.local` names the Service
 * `<namespace>/<name>` wherever it is written; any other host is taken as written, in the
 * namespace of the object that writes it.
 *
 * Pure: no I/O; never throws on untrusted input.
 */
import { quote } from './service-ports.ts';
import { CLUSTER_DOMAIN, DestinationResolver, fullyQualifiedHost } from './destination-hosts.ts';
import { unavailableViolation, type TrafficWorld } from './traffic-world.ts';
import { isRecord, stringList, type KubeObject, type Violation } from './types.ts';
import { LazilyWorded } from './messages.ts';

/** A DestinationRule reduced to what the checks use. */
export interface TrafficDestinationRule {
  readonly namespace: string;
  /** `''` when the object has no name. */
  readonly name: string;
  /** `spec.host` as written; `''` when absent. */
  readonly host: string;
  /** `spec.exportTo`; empty means exported to every namespace. */
  readonly exportTo: readonly string[];
  /** `spec.subsets[].name`, in order. */
  readonly subsets: readonly string[];
  /** Where route subsets are looked up: destinationRuleHostKey of the host in the namespace. */
  readonly hostKey: string;
}

const SERVICE_HOST = new RegExp(`^(.+)\\.(.+)\\.svc\\.${CLUSTER_DOMAIN.replaceAll('.', '\\.')}$`);

/**
 * The key a host is looked up under, written in `namespace`: `<namespace>/<name>` of the
 * Service a `<name>.<namespace>.svc.cluster.local` host names (the first part takes every dot
 * but the last two, as Istio's analyzer splits it), else `<namespace>/<host>` for any other
 * host — a short name then names the Service of that namespace, and a host with a dot names
 * itself, found only by objects of the same namespace.
 */
export function destinationRuleHostKey(host: string, namespace: string): string {
  const match = SERVICE_HOST.exec(host);
  return match ? `${match[2]}/${match[1]}` : `${namespace}/${host}`;
}

function metadataString(object: KubeObject, field: 'name' | 'namespace'): string | undefined {
  const value = isRecord(object.metadata) ? object.metadata[field] : undefined;
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** The view, or undefined when the object has no spec. `fallbackNamespace` is used when it has no namespace. */
export function toTrafficDestinationRule(object: KubeObject, fallbackNamespace = 'default'): TrafficDestinationRule | undefined {
  const spec = isRecord(object.spec) ? object.spec : undefined;
  if (!spec) return undefined;
  const namespace = metadataString(object, 'namespace') ?? fallbackNamespace;
  const host = typeof spec.host === 'string' ? spec.host : '';
  const subsets = Array.isArray(spec.subsets)
    ? spec.subsets.flatMap((subset: unknown) => (isRecord(subset) && typeof subset.name === 'string' && subset.name !== '' ? [subset.name] : []))
    : [];
  return {
    namespace,
    name: metadataString(object, 'name') ?? '',
    host,
    exportTo: stringList(spec.exportTo),
    subsets,
    hostKey: destinationRuleHostKey(host, namespace),
  };
}

/**
 * DestinationRules by host key, kept up to date one object at a time (the informer cache
 * calls set and delete as objects arrive), so a lookup costs the same however many there are.
 */
export class DestinationRuleIndex {
  private readonly byObject = new Map<string, TrafficDestinationRule>();
  private readonly byHostKey = new Map<string, Map<string, TrafficDestinationRule>>();

  /** Records (or replaces) the object `objectKey`; an undefined view only removes it. */
  set(objectKey: string, rule: TrafficDestinationRule | undefined): void {
    this.delete(objectKey);
    if (rule === undefined) return;
    this.byObject.set(objectKey, rule);
    let rules = this.byHostKey.get(rule.hostKey);
    if (!rules) {
      rules = new Map();
      this.byHostKey.set(rule.hostKey, rules);
    }
    rules.set(objectKey, rule);
  }

  delete(objectKey: string): void {
    const rule = this.byObject.get(objectKey);
    if (!rule) return;
    this.byObject.delete(objectKey);
    const rules = this.byHostKey.get(rule.hostKey);
    rules?.delete(objectKey);
    if (rules?.size === 0) this.byHostKey.delete(rule.hostKey);
  }

  /** The DestinationRules whose host has this key, in no particular order. */
  forHostKey(hostKey: string): readonly TrafficDestinationRule[] {
    const rules = this.byHostKey.get(hostKey);
    return rules ? [...rules.values()] : [];
  }
}

const SERVICE_DOMAIN = `.svc.${CLUSTER_DOMAIN}`;

/**
 * Whether a wildcard host covers Service hosts: its rest is a suffix of `.svc.cluster.local`
 * (`*.local`, `*.cluster.local`, `*`) or lies inside it (`*.shop.svc.cluster.local`).
 */
function coversServices(host: string): boolean {
  if (!host.startsWith('*')) return false;
  const rest = host.slice(1);
  return SERVICE_DOMAIN.endsWith(rest) || rest.endsWith(SERVICE_DOMAIN);
}

/**
 * All DestinationRule rules. `namespace` is where the DestinationRule lives. Without `world`
 * nothing is checked (the rule is cluster-aware only); with an unavailable world the rule
 * becomes one warning.
 */
export function validateDestinationRule(object: KubeObject, namespace: string, world?: TrafficWorld): Violation[] {
  if (!world) return [];
  const rule = toTrafficDestinationRule(object, namespace);
  if (!rule) return [];
  if (!world.available) return [unavailableViolation('DestinationRule', world)];
  if (coversServices(rule.host)) return [];
  const resolver = new DestinationResolver(world, rule.namespace, rule.exportTo);
  if (resolver.resolve(rule.host)) return [];
  return [hostNotFound(rule)];
}

function hostNotFound(rule: TrafficDestinationRule): Violation {
  const id = 'destinationrule-host-not-found';
  const path = 'spec.host';
  return new LazilyWorded(id, 'warning', path, `${id}|${rule.host}`, () => {
    if (rule.host === '') {
      return [`${path}: the DestinationRule has no host, so it applies to nothing (IST0174); set it to the Service, e.g. <name>.<namespace>.svc.${CLUSTER_DOMAIN}.`];
    }
    const host = quote(rule.host);
    const fqdn = fullyQualifiedHost(rule.host, rule.namespace);
    const looked = fqdn === rule.host ? '' : ` (looked for ${quote(fqdn)})`;
    return [
      `${path}: ${host}${looked} matches no Service or ServiceEntry visible here, so this DestinationRule ` +
        `applies to nothing (IST0174); fix the host or create its Service or ServiceEntry.`,
      `${path}: ${host} matches no Service and no ServiceEntry (IST0174); fix the host or add a ServiceEntry.`,
      `${path}: the host matches no Service and no ServiceEntry (IST0174).`,
    ];
  });
}
