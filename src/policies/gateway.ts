/**
 * Istio Gateway checks (the README's Istio traffic rules).
 *
 * Structural rules, always run (Istio's own validation rejects these):
 * - `gateway-port-name-duplicate`: two servers share a port name;
 * - `gateway-protocol`: a server's protocol is not one Istio parses;
 * - `gateway-tls-missing`: an HTTPS or TLS server without `tls` settings;
 * - the rest of Istio's validation of a Gateway on its own: gateway-validation.ts.
 * Cluster-aware rule, run when a TrafficWorld is given (warning, Istio IST0162):
 * - `gateway-port-not-exposed`: no Service serving the gateway's pods has the server's port,
 *   so traffic to it never reaches the gateway — the seed's port 21000 on istio-ingressgateway.
 *
 * Pure: no I/O; never throws on untrusted input.
 */
import { parseProtocolWord, type IstioProtocol } from '../istio/protocol.ts';
import { isValidServicePortName } from '../kubernetes-names.ts';
import { quote } from './service-ports.ts';
import { gatewayValidationViolations } from './gateway-validation.ts';
import {
  stringMap,
  unavailableViolation,
  type TrafficService,
  type TrafficWorld,
} from './traffic-world.ts';
import { isRecord, type KubeObject, type Violation } from './types.ts';
import { LazilyWorded, fitMessage } from './messages.ts';

/** Gateway server protocols, as Istio's validation lists them. */
const GATEWAY_PROTOCOLS = 'HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, TCP, TLS, MONGO, REDIS, MYSQL';

/** One entry of `spec.servers`, read defensively. */
interface GatewayServer {
  readonly index: number;
  /** Whether `port` is an object at all; without it nothing about the port can be said. */
  readonly hasPort: boolean;
  readonly name: string | undefined;
  readonly number: number | undefined;
  readonly protocol: string | undefined;
  readonly hasTls: boolean;
}

function readGatewayServers(gateway: KubeObject): GatewayServer[] {
  const spec = isRecord(gateway) && isRecord(gateway.spec) ? gateway.spec : undefined;
  const servers = spec && Array.isArray(spec.servers) ? spec.servers : [];
  return servers.flatMap((server: unknown, index): GatewayServer[] => {
    if (!isRecord(server)) return [];
    const port = isRecord(server.port) ? server.port : undefined;
    const number = port?.number;
    return [{
      index,
      hasPort: port !== undefined,
      name: typeof port?.name === 'string' && port.name !== '' ? port.name : undefined,
      number: typeof number === 'number' && Number.isInteger(number) ? number : undefined,
      protocol: typeof port?.protocol === 'string' ? port.protocol : undefined,
      hasTls: server.tls !== undefined && server.tls !== null,
    }];
  });
}

/**
 * All Gateway rules. Without `world` only the structural rules run (the webhook with traffic
 * checks off); with an unavailable world the cluster-aware rule becomes one warning.
 */
export function validateGateway(gateway: KubeObject, world?: TrafficWorld): Violation[] {
  const servers = readGatewayServers(gateway);
  const violations: Violation[] = [];
  const firstWithName = new Map<string, GatewayServer>();

  for (const server of servers) {
    if (server.name !== undefined) {
      const first = firstWithName.get(server.name);
      if (first) violations.push(duplicateName(server, first));
      else firstWithName.set(server.name, server);
    }
    if (!server.hasPort) continue;
    const protocol = server.protocol === undefined ? 'Unsupported' : parseProtocolWord(server.protocol);
    if (protocol === 'Unsupported') violations.push(unknownProtocol(server));
    else if ((protocol === 'HTTPS' || protocol === 'TLS') && !server.hasTls) violations.push(tlsMissing(server, protocol));
  }

  // Not push(...): spreading 100,000 findings as arguments overflows the stack.
  const structural = violations.concat(gatewayValidationViolations(gateway));
  return world ? structural.concat(portExposure(gateway, servers, world)) : structural;
}

function describeServer(server: GatewayServer): string {
  const details = [
    ...(server.number !== undefined ? [String(server.number)] : []),
    ...(server.name !== undefined ? [quote(server.name)] : []),
  ];
  return `spec.servers[${server.index}].port${details.length > 0 ? ` (${details.join(', ')})` : ''}`;
}

function duplicateName(server: GatewayServer, first: GatewayServer): Violation {
  const name = server.name ?? '';
  const rule = 'gateway-port-name-duplicate';
  const field = `spec.servers[${server.index}].port.name`;
  return new LazilyWorded(rule, 'error', field, `${rule}|${name}|${server.number ?? ''}`, () => {
    const example = server.number !== undefined ? `${name}-${server.number}` : `${name}-${server.index}`;
    const reason = `the name is already used by spec.servers[${first.index}]; Istio needs unique server port names ` +
      `and rejects this Gateway. Rename one, e.g. to ${quote(example)}.`;
    return [`${describeServer(server)}: ${reason}`, `${field}: ${reason}`];
  });
}

function unknownProtocol(server: GatewayServer): Violation {
  const rule = 'gateway-protocol';
  const field = `spec.servers[${server.index}].port.protocol`;
  const identity = `${rule}|${server.protocol ?? ''}|${server.number ?? ''}|${server.name ?? ''}`;
  return new LazilyWorded(rule, 'error', field, identity, () => {
    const problem = server.protocol === undefined || server.protocol === ''
      ? 'has no protocol'
      : `has protocol ${quote(server.protocol)}, which Istio does not recognise`;
    const fix = `Istio rejects this Gateway; set port.protocol to one of ${GATEWAY_PROTOCOLS}.`;
    return [`${describeServer(server)} ${problem}; ${fix}`, `${field} is not an Istio protocol; ${fix}`];
  });
}

function tlsMissing(server: GatewayServer, protocol: IstioProtocol): Violation {
  const rule = 'gateway-tls-missing';
  const fix = `add tls, e.g. {mode: SIMPLE, credentialName: <secret>} to terminate TLS or {mode: PASSTHROUGH} to pass it through`;
  return new LazilyWorded(rule, 'error', `spec.servers[${server.index}].tls`, `${rule}|${server.number ?? ''}|${server.name ?? ''}`, () => [
    `${describeServer(server)}: an ${protocol} server needs tls settings and Istio rejects it without; ${fix}.`,
    `spec.servers[${server.index}]: an ${protocol} server needs tls settings; ${fix}.`,
  ]);
}

// ---------------------------------------------------------------------------------------------
// gateway-port-not-exposed (IST0162)
// ---------------------------------------------------------------------------------------------

function portExposure(gateway: KubeObject, servers: readonly GatewayServer[], world: TrafficWorld): Violation[] {
  const withPorts = servers.filter((server) => server.number !== undefined);
  if (withPorts.length === 0) return [];
  const spec = isRecord(gateway.spec) ? gateway.spec : {};
  if (!world.available) return [unavailableViolation('Gateway', world)];
  // An empty selector would select every pod; nothing sensible to check against.
  const selector = stringMap(spec.selector);
  if (selector === undefined) return [];

  const serving = world.servicesServingGateway(selector);
  if (serving.length === 0) {
    // `check` over files rarely includes the ingress gateway's Service: only a world that
    // knows every Service can tell that none serves this gateway.
    return world.complete ? [noServingService(selector)] : [];
  }
  // Computed once, so each server costs a lookup however many servers and ports there are.
  const exposed = exposedPorts(serving);
  const taken = new Set((serving[0] as TrafficService).ports.map((port) => port.name));
  const violations: Violation[] = [];
  for (const server of withPorts) {
    const number = server.number as number;
    if (exposed.has(number)) continue;
    violations.push(notExposed(server, number, serving, taken));
  }
  return violations;
}

/**
 * The server ports for which some serving Service lets traffic reach the gateway pods. Istio's
 * analyzer compares the server port with the Service's target port (what the pod listens on);
 * istiod also maps a Service port to its target port for gateways, so either one counts.
 * Only TCP ports carry gateway traffic.
 */
function exposedPorts(services: readonly TrafficService[]): Set<unknown> {
  const exposed = new Set<unknown>();
  for (const service of services) {
    for (const port of service.ports) {
      if (port.protocol !== 'TCP') continue;
      exposed.add(port.port);
      exposed.add(port.targetPort);
    }
  }
  return exposed;
}

function selectorText(selector: Readonly<Record<string, string>>): string {
  return Object.entries(selector).map(([k, v]) => `${k}=${v}`).join(',');
}

function noServingService(selector: Readonly<Record<string, string>>): Violation {
  const rule = 'gateway-port-not-exposed';
  const labels = selectorText(selector);
  const text = `no Service selects the gateway pods (spec.selector ${labels}), so no server of this Gateway gets ` +
    `traffic (IST0101); fix spec.selector to match your ingress gateway, e.g. istio=ingressgateway.`;
  return {
    rule,
    severity: 'warning',
    field: 'spec.selector',
    identity: `${rule}|no-service|${labels}`,
    ...fitMessage(rule, text, `no Service selects the gateway pods (spec.selector ${labels.slice(0, 60)}); fix spec.selector (IST0101).`),
  };
}

function notExposed(server: GatewayServer, number: number, serving: readonly TrafficService[], taken: ReadonlySet<string>): Violation {
  const rule = 'gateway-port-not-exposed';
  const path = `spec.servers[${server.index}].port`;
  return new LazilyWorded(rule, 'warning', `${path}.number`, `${rule}|${number}`, () => {
    const target = serving[0] as TrafficService;
    const others = serving.length > 1 ? ` (or one of the ${serving.length - 1} other Services serving it)` : '';
    const portName = servicePortName(server, number, taken);
    const protocol = server.protocol !== undefined && parseProtocolWord(server.protocol) === 'UDP' ? 'UDP' : 'TCP';
    const patch = (full: boolean) => {
      const value = full
        ? `{"name":"${portName}","port":${number},"targetPort":${number},"protocol":"${protocol}"}`
        : `{"name":"${portName}","port":${number}${protocol === 'UDP' ? ',"protocol":"UDP"' : ''}}`;
      return `kubectl -n ${target.namespace} patch svc ${target.name} --type=json ` +
        `-p '[{"op":"add","path":"/spec/ports/-","value":${value}}]'`;
    };
    const service = `${target.namespace}/${target.name}`;
    // The whole message must fit in one admission warning with the command intact. The
    // explicit patch (targetPort, protocol) only fits very short names; Kubernetes' defaults
    // (targetPort = port, protocol TCP) make the shorter one equivalent — except for UDP,
    // which the shorter one must still name.
    return [
      `${path}: Service ${service} does not expose port ${number}${others}, so this server gets no traffic ` +
        `(IST0162). Add it (Helm values: service.ports): ${patch(true)}`,
      `Service ${service} lacks port ${number} (IST0162); add it (Helm: service.ports): ${patch(false)}`,
      `Service lacks port ${number} (IST0162); add it (Helm: service.ports): ${patch(false)}`,
      `Expose port ${number} (IST0162): ${patch(false)}`,
      `port ${number} is not exposed by Service ${service} (IST0162); add it to its spec.ports (Helm values: service.ports).`,
    ];
  });
}

/**
 * The name for the new Service port: the server's own when it is a valid, unused Service port
 * name (the seed's `grpc-21000`), else `<protocol>-<number>`, e.g. `tcp-21000`.
 */
function servicePortName(server: GatewayServer, number: number, taken: ReadonlySet<string>): string {
  const own = server.name?.toLowerCase();
  if (own !== undefined && isValidServicePortName(own) && !taken.has(own)) return own;
  const parsed = server.protocol === undefined ? 'Unsupported' : parseProtocolWord(server.protocol);
  const prefix = parsed === 'Unsupported' ? 'tcp' : parsed.toLowerCase();
  const candidate = `${prefix}-${number}`;
  return taken.has(candidate) ? `${prefix}-gw-${number}` : candidate;
}
