/**
 * Which Istio analyzer message each rule mirrors: the table the differential test
 * (test/e2e/istio-differential.e2e.ts) translates Istio's findings with. README.md shows the
 * same table; test/istio-differential.test.ts keeps the two equal.
 *
 * An Istio message is translated to the rule of the first row with its code and kind whose
 * `message` text it contains (an empty `message` matches every message). Istio messages that
 * no row matches are outside what the project mirrors (e.g. IST0102, namespace not injected)
 * and are not compared. Every `check` finding is compared: a rule without a row here has no
 * Istio counterpart, so each of its findings is a difference unless it is listed as deliberate.
 */

export interface RuleMapping {
  readonly code: string;
  readonly kind: string;
  /** Text the Istio message contains; empty for any message of this code and kind. */
  readonly message: string;
  readonly rule: string;
}

export const RULE_MAPPING: readonly RuleMapping[] = [
  { code: 'IST0118', kind: 'Service', message: '', rule: 'port-protocol' },
  { code: 'IST0150', kind: 'Service', message: '', rule: 'externalname-port' },
  { code: 'IST0123', kind: 'Namespace', message: '', rule: 'namespace-injection-conflict' },
  { code: 'IST0162', kind: 'Gateway', message: '', rule: 'gateway-port-not-exposed' },
  { code: 'IST0101', kind: 'Gateway', message: 'Referenced selector not found', rule: 'gateway-port-not-exposed' },
  { code: 'IST0106', kind: 'Gateway', message: 'port names in servers must be unique', rule: 'gateway-port-name-duplicate' },
  { code: 'IST0106', kind: 'Gateway', message: 'invalid protocol', rule: 'gateway-protocol' },
  { code: 'IST0106', kind: 'Gateway', message: 'server must have TLS settings', rule: 'gateway-tls-missing' },
  { code: 'IST0106', kind: 'Gateway', message: 'gateway must have at least one server', rule: 'gateway-servers-missing' },
  { code: 'IST0106', kind: 'Gateway', message: 'server config must contain at least one host', rule: 'gateway-hosts-missing' },
  { code: 'IST0106', kind: 'Gateway', message: 'port is required', rule: 'gateway-port-missing' },
  { code: 'IST0106', kind: 'Gateway', message: 'port name must be set', rule: 'gateway-port-name-missing' },
  { code: 'IST0106', kind: 'Gateway', message: 'must be in the range 1..65535', rule: 'gateway-port-number' },
  { code: 'IST0106', kind: 'Gateway', message: 'TLS requires a', rule: 'gateway-tls-credentials' },
  { code: 'IST0106', kind: 'Gateway', message: 'server cannot have TLS settings', rule: 'gateway-tls-on-plain-port' },
  { code: 'IST0101', kind: 'VirtualService', message: 'Referenced host not found', rule: 'virtualservice-destination-not-found' },
  { code: 'IST0101', kind: 'VirtualService', message: 'Referenced mirror host not found', rule: 'virtualservice-destination-not-found' },
  { code: 'IST0101', kind: 'VirtualService', message: 'Referenced host:port not found', rule: 'virtualservice-port-not-found' },
  { code: 'IST0112', kind: 'VirtualService', message: '', rule: 'virtualservice-port-required' },
  { code: 'IST0101', kind: 'VirtualService', message: 'Referenced gateway not found', rule: 'virtualservice-gateway-not-found' },
  { code: 'IST0165', kind: 'VirtualService', message: '', rule: 'virtualservice-gateway-not-found' },
  { code: 'IST0106', kind: 'VirtualService', message: 'http, tcp or tls must be provided', rule: 'virtualservice-routes-missing' },
  { code: 'IST0106', kind: 'VirtualService', message: 'HTTP route, redirect or direct_response is required', rule: 'virtualservice-route-action-missing' },
  { code: 'IST0106', kind: 'VirtualService', message: 'TCP route is required', rule: 'virtualservice-route-action-missing' },
  { code: 'IST0106', kind: 'VirtualService', message: 'TLS route is required', rule: 'virtualservice-route-action-missing' },
  { code: 'IST0106', kind: 'VirtualService', message: 'destination is required', rule: 'virtualservice-destination-missing' },
  { code: 'IST0106', kind: 'VirtualService', message: 'total destination weight = 0', rule: 'virtualservice-weights-zero' },
  { code: 'IST0106', kind: 'VirtualService', message: 'is not a compatible subset', rule: 'virtualservice-sni-hosts' },
  { code: 'IST0133', kind: 'VirtualService', message: 'goes against SNI spec', rule: 'virtualservice-sni-host-address' },
  { code: 'IST0145', kind: 'Gateway', message: '', rule: 'gateway-conflict' },
  { code: 'IST0132', kind: 'VirtualService', message: '', rule: 'virtualservice-host-not-in-gateway' },
  { code: 'IST0101', kind: 'VirtualService', message: 'Referenced host+subset in destinationrule not found', rule: 'virtualservice-subset-not-found' },
  { code: 'IST0101', kind: 'VirtualService', message: 'Referenced mirror+subset in destinationrule not found', rule: 'virtualservice-subset-not-found' },
  { code: 'IST0109', kind: 'VirtualService', message: '', rule: 'virtualservice-mesh-host-conflict' },
  { code: 'IST0174', kind: 'DestinationRule', message: '', rule: 'destinationrule-host-not-found' },
];

/** One finding of Istio's analyzers, as istio-oracle prints it. */
export interface IstioFinding {
  readonly code: string;
  readonly level: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly message: string;
}

/** The rule an Istio finding corresponds to, or undefined when the project mirrors no such message. */
export function ruleForIstioFinding(finding: IstioFinding, mapping: readonly RuleMapping[] = RULE_MAPPING): string | undefined {
  return mapping.find((row) => row.code === finding.code && row.kind === finding.kind && finding.message.includes(row.message))?.rule;
}
