/**
 * `virtualservice-subset-not-found` (IST0101 host+subset): a route or mirror destination names
 * a subset that no DestinationRule for its host defines. Istio builds no cluster for it, so
 * the requests routed there fail.
 *
 * The DestinationRules for a host are found by destinationRuleHostKey, as Istio's analyzer
 * finds them: a destination `reviews` of a VirtualService in `shop`, or
 * `reviews.shop.svc.cluster.local` from anywhere, reaches a DestinationRule of host `reviews`
 * in `shop` or of host `reviews.shop.svc.cluster.local` in any namespace; a host with a dot of
 * another form (`api.example.com`) reaches DestinationRules of that host in the
 * VirtualService's own namespace only.
 *
 * Pure: no I/O; never throws on untrusted input.
 */
import { quote } from './service-ports.ts';
import { destinationRuleHostKey, type TrafficDestinationRule } from './destination-rule.ts';
import type { TrafficWorld } from './traffic-world.ts';
import type { RouteDestination } from './virtual-service.ts';
import type { Violation } from './types.ts';
import { LazilyWorded } from './messages.ts';

/** A message lists at most this many subsets of the DestinationRules found. */
const LISTED_SUBSETS = 8;

/** One warning per host and subset that no DestinationRule defines, at its first destination. */
export function subsetViolations(destinations: readonly RouteDestination[], namespace: string, world: TrafficWorld): Violation[] {
  const violations: Violation[] = [];
  const checked = new Set<string>();
  for (const destination of destinations) {
    const subset = destination.subset;
    if (subset === undefined) continue;
    const pair = `${subset}/${destination.host}`;
    if (checked.has(pair)) continue;
    checked.add(pair);
    const rules = world.destinationRulesFor(destinationRuleHostKey(destination.host, namespace));
    if (rules.some((rule) => rule.subsets.includes(subset))) continue;
    violations.push(subsetNotFound(destination, subset, rules));
  }
  return violations;
}

function subsetNotFound(destination: RouteDestination, subset: string, rules: readonly TrafficDestinationRule[]): Violation {
  const rule = 'virtualservice-subset-not-found';
  const path = `${destination.path}.subset`;
  return new LazilyWorded(rule, 'warning', path, `${rule}|${destination.host}|${subset}`, () => {
    const host = quote(destination.host);
    const wanted = quote(subset);
    if (rules.length === 0) {
      return [
        `${path}: no DestinationRule for ${host} defines subsets, so subset ${wanted} does not exist and requests ` +
          `routed there fail (IST0101); create one with it or drop the subset.`,
        `${path}: no DestinationRule for ${host} defines subset ${wanted} (IST0101); create one or drop the subset.`,
        `${path}: no DestinationRule defines this subset (IST0101); create one or drop the subset.`,
      ];
    }
    const sorted = [...rules].sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
    const first = sorted[0] as TrafficDestinationRule;
    const owner = `DestinationRule ${first.namespace}/${first.name}${sorted.length > 1 ? ` (and ${sorted.length - 1} more)` : ''}`;
    const defined = [...new Set(sorted.flatMap((found) => found.subsets))];
    const listed = defined.length === 0
      ? 'defines no subsets'
      : `defines ${defined.slice(0, LISTED_SUBSETS).map(quote).join(', ')}${defined.length > LISTED_SUBSETS ? ', ...' : ''}`;
    return [
      `${path}: ${owner} for ${host} ${listed}, not ${wanted}; requests routed there fail (IST0101). ` +
        `Add the subset or fix the name.`,
      `${path}: ${owner} has no subset ${wanted} (IST0101); add it or fix the name.`,
      `${path}: the DestinationRule for the host has no such subset (IST0101); add it or fix the name.`,
    ];
  });
}
