/**
 * The VirtualService checks of Istio's own validation that need nothing but the object: Istio
 * refuses such a VirtualService when it is applied (IST0106), so each is an error.
 *
 * - `virtualservice-routes-missing`: no http, tcp or tls route at all;
 * - `virtualservice-route-action-missing`: an http route that neither routes, redirects,
 *   responds directly nor delegates, or a tcp or tls route with no `route` entries;
 * - `virtualservice-destination-missing`: a `route` entry without a destination;
 * - `virtualservice-weights-zero`: a route splitting traffic over several destinations whose
 *   weights add up to 0 (one destination alone may leave its weight out).
 *
 * One finding per problem, naming every route with it (problem-places.ts). Pure: no I/O;
 * never throws on untrusted input.
 */
import { oneFindingPerProblem, type Problem } from './problem-places.ts';
import { isRecord, type KubeObject, type Violation } from './types.ts';

const SECTIONS = ['http', 'tcp', 'tls'] as const;
type Section = (typeof SECTIONS)[number];

const present = (value: unknown): boolean => value !== undefined && value !== null;

export function virtualServiceValidationViolations(virtualService: KubeObject): Violation[] {
  const spec = isRecord(virtualService.spec) ? virtualService.spec : {};
  const routesOf = (section: Section): unknown[] => (Array.isArray(spec[section]) ? spec[section] : []);
  if (SECTIONS.every((section) => routesOf(section).length === 0)) return oneFindingPerProblem([routesMissing()]);
  const problems: Problem[] = [];
  for (const section of SECTIONS) {
    routesOf(section).forEach((route: unknown, index) => {
      if (!isRecord(route)) return;
      const path = `spec.${section}[${index}]`;
      const entries = Array.isArray(route.route) ? route.route : [];
      if (entries.length === 0 && !otherAction(section, route)) problems.push(actionMissing(path, section));
      let total = 0;
      entries.forEach((entry: unknown, j) => {
        if (!isRecord(entry)) return;
        if (!present(entry.destination)) problems.push(destinationMissing(`${path}.route[${j}]`));
        if (typeof entry.weight === 'number') total += entry.weight;
      });
      if (entries.length > 1 && total === 0) problems.push(weightsZero(`${path}.route`));
    });
  }
  return oneFindingPerProblem(problems);
}

/**
 * Whether an http route does something other than route: redirect, respond, or hand its
 * traffic to a delegate VirtualService. A tcp or tls route can only route.
 */
function otherAction(section: Section, route: Record<string, unknown>): boolean {
  return section === 'http' && (present(route.redirect) || present(route.directResponse) || present(route.delegate));
}

function routesMissing(): Problem {
  return {
    rule: 'virtualservice-routes-missing',
    key: 'routes',
    field: 'spec',
    words: () => [
      'spec has no http, tcp or tls routes, and Istio rejects a VirtualService without; add one, e.g. ' +
        'http: [{route: [{destination: {host: <service>}}]}].',
      'spec has no http, tcp or tls routes; Istio rejects the VirtualService without.',
    ],
  };
}

function actionMissing(path: string, section: Section): Problem {
  const http = section === 'http';
  return {
    rule: 'virtualservice-route-action-missing',
    // Istio words the three sections differently, so each is a problem of its own.
    key: section,
    field: `${path}.route`,
    words: (where) =>
      http
        ? [
            `${where}: the http route has no route, redirect, directResponse or delegate, so Istio rejects it; ` +
              'add route: [{destination: {host: <service>}}], or remove the entry.',
            `${where}: the http route needs route, redirect, directResponse or delegate; Istio rejects it without.`,
          ]
        : [
            `${where}: the ${section} route has no route entries, so Istio rejects it; add route: [{destination: ` +
              '{host: <service>}}], or remove the entry.',
            `${where}: the ${section} route needs route entries; Istio rejects it without.`,
          ],
  };
}

function destinationMissing(path: string): Problem {
  return {
    rule: 'virtualservice-destination-missing',
    key: 'destination',
    field: `${path}.destination`,
    words: (where) => [
      `${where}: the route entry has no destination, and Istio rejects it; add destination: {host: <service>}, or remove the entry.`,
      `${where}: the route entry needs a destination; Istio rejects it without.`,
    ],
  };
}

function weightsZero(path: string): Problem {
  return {
    rule: 'virtualservice-weights-zero',
    key: 'weights',
    field: path,
    words: (where) => [
      `${where}: the destination weights add up to 0, so Istio rejects the route; weigh the ones that should get traffic, e.g. 90 and 10.`,
      `${where}: the destination weights add up to 0; Istio rejects the route.`,
    ],
  };
}
