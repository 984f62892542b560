/**
 * The longest single judgement of one large Istio object: handleValidate + handleMutate
 * (src/admission/handlers.ts) on one parsed AdmissionRequest, as the webhook runs them on the
 * event loop — nothing else is served meanwhile, so this is how long one such request blocks.
 *
 *   npm run bench:judge       (node bench/judge-time.ts; also part of `npm run bench`)
 *
 * Cases: a VirtualService at the host limit, half hosts and half sniHosts none of them covers,
 * and a 7 MiB VirtualService and Gateway (hosts, sniHosts, routes, mirrors, gateway
 * references, servers), each with traffic checks off (the default) and on (a world of
 * Services, ServiceEntries and Gateways). Each case runs JUDGE_RUNS times (default 3) after
 * one warm-up; the table shows the longest and the median, and how big both answers are
 * against the review. Also the inputs an adversary would pick: 7 MiB of distinct missing
 * destinations and gateways, 7 MiB of servers each breaking three Gateway rules, the largest
 * Gateway and VirtualService the webhook judges (object-limits.ts) with every entry a finding,
 * and the largest Service judged with every port a duplicate. Objects beyond the limits are
 * refused before any rule runs: their rows show what that costs. A judgement includes counting
 * the findings per rule, as the server does for its metrics. The judgements run in a child
 * process with the server's Node flags (the image's; BENCH_SERVER_NODE_ARGS overrides them).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { buildConfig } from '../src/config.ts';
import { handleMutate, handleValidate } from '../src/admission/handlers.ts';
import { tallyRules } from '../src/admission/decision.ts';
import {
  exceededLimit, MAX_GATEWAY_HOSTS, MAX_GATEWAY_SERVERS, MAX_SERVICE_PORTS, MAX_VIRTUAL_SERVICE_DESTINATIONS, MAX_VIRTUAL_SERVICE_GATEWAYS,
  MAX_VIRTUAL_SERVICE_HOSTS, MAX_VIRTUAL_SERVICE_ROUTES,
} from '../src/policies/object-limits.ts';
import { validateServicePorts } from '../src/policies/service-ports.ts';
import type { AdmissionRequest } from '../src/admission/review.ts';
import type { PolicyContext } from '../src/policies/catalog.ts';
import { worldFromObjects } from '../src/policies/traffic-world.ts';
import { validateGateway } from '../src/policies/gateway.ts';
import { validateVirtualService } from '../src/policies/virtual-service.ts';
import type { KubeObject } from '../src/policies/types.ts';
import { SERVER_NODE_ARGS } from './processes.ts';

const RUNS = Number(process.env['JUDGE_RUNS'] ?? 3);
const MiB = 1024 * 1024;

export interface JudgeResult {
  readonly object: string;
  readonly bodyBytes: number;
  /** Bytes of both answers (validate and mutate responses, as JSON). */
  readonly answerBytes: number;
  readonly traffic: boolean;
  readonly runs: number;
  /** Wall-clock milliseconds of the longest run, and its CPU time (the machine may be shared). */
  readonly maxMs: number;
  readonly maxCpuMs: number;
  readonly medianMs: number;
  /** The longest run of the rules alone (validateVirtualService / validateGateway), without judging; not run when refused. */
  readonly rulesMaxMs?: number;
  /** Beyond the limits of object-limits.ts: refused before any rule runs. */
  readonly refused: boolean;
  readonly violations: number;
  readonly warnings: number;
  readonly decision: string;
}

type Spec = Record<string, unknown>;

type Kind = 'VirtualService' | 'Gateway' | 'Service';

function review(kind: Kind, spec: Spec): { request: AdmissionRequest } {
  const group = kind === 'Service' ? '' : 'networking.istio.io';
  const object = { apiVersion: group === '' ? 'v1' : `${group}/v1`, kind, metadata: { name: `big-${kind.toLowerCase()}`, namespace: 'shop' }, spec };
  const resource = { group, version: 'v1', resource: `${kind.toLowerCase()}s` };
  const groupKind = { group, version: 'v1', kind };
  return {
    request: {
      uid: 'judge', kind: groupKind, resource, requestKind: groupKind, requestResource: resource,
      name: object.metadata.name, namespace: 'shop', operation: 'CREATE',
      userInfo: { username: 'alice@example.com' }, object, oldObject: null, dryRun: false,
    } as unknown as AdmissionRequest,
  };
}

/** Hosts and sniHosts at the host limit, no SNI host covered: every one is a miss. */
function hostsAndSniHosts(): Spec {
  const count = MAX_VIRTUAL_SERVICE_HOSTS / 2;
  return {
    hosts: Array.from({ length: count }, (_, i) => `h${i}`),
    tls: [{ match: [{ sniHosts: Array.from({ length: count }, (_, i) => `s${i}`) }], route: [{ destination: { host: 'h0' } }] }],
  };
}

/** Repeats `make(i)` until the JSON of the list reaches `bytes`. */
function fill<T>(bytes: number, make: (i: number) => T): T[] {
  const items: T[] = [];
  let size = 0;
  while (size < bytes) {
    const item = make(items.length);
    items.push(item);
    size += JSON.stringify(item).length + 1;
  }
  return items;
}

/** About 7 MiB of everything the VirtualService rules read. */
function largeVirtualService(): Spec {
  const part = (7 * MiB) / 3.2;
  return {
    hosts: fill(part, (i) => (i % 3 === 0 ? `*.zone-${i}.example.com` : `app-${i}.example.com`)),
    gateways: fill(part / 8, (i) => (i % 2 === 0 ? `istio-system/gw-${i % 50}` : `gw-${i}`)),
    tls: fill(part, (i) => ({
      match: [{ sniHosts: [`a.zone-${i * 3}.example.com`, `b-${i}.other.org`, `10.0.${i % 250}.1`] }],
      route: [{ destination: { host: `tls-${i % 500}.shop.svc.cluster.local`, port: { number: 443 } } }],
    })),
    http: fill(part * 0.875, (i) => ({
      route: [{ destination: { host: i % 2 === 0 ? `svc-${i % 1000}` : `api-${i % 700}.example.com`, port: { number: 8000 + (i % 40) } } }],
      mirror: { host: `shadow-${i % 300}` },
      mirrors: [{ destination: { host: `svc-${i % 1000}.shop` } }],
    })),
  };
}

/** About 7 MiB of Gateway servers: names, numbers, protocols, TLS. */
function largeGateway(): Spec {
  return {
    selector: { istio: 'ingressgateway' },
    servers: fill(7 * MiB, (i) => ({
      port: { number: 1000 + (i % 60000), name: `srv-${i % 5000}`, protocol: ['HTTP', 'HTTPS', 'TCP', 'UDP', 'bogus'][i % 5] },
      hosts: [`h-${i}.example.com`],
      ...(i % 5 === 1 ? { tls: { mode: 'SIMPLE', credentialName: 'cert' } } : {}),
    })),
  };
}

/**
 * What an adversary would send to the VirtualService rules: 7 MiB of routes whose
 * destinations are all distinct hosts that match nothing (no finding is merged with another),
 * with distinct missing gateways beside them.
 */
function distinctMissingDestinations(): Spec {
  return {
    hosts: ['shop.example.com'],
    gateways: fill(MiB, (i) => `gone-${i}`),
    http: fill(6 * MiB, (i) => ({ route: [{ destination: { host: `m${i}`, port: { number: 80 } } }] })),
  };
}

/** The most findings per byte for the Gateway rules: every server repeats a name, has no known protocol and an unexposed port. */
function badServers(): Spec {
  return {
    selector: { istio: 'ingressgateway' },
    servers: fill(7 * MiB, (i) => ({ port: { number: 2000 + (i % 60000), name: 'a', protocol: 'x' } })),
  };
}

/**
 * The largest Gateway judged (object-limits.ts), the worst it can be: every server repeats a
 * name, has no known protocol, and lists hosts that other Gateways of the world serve on the
 * same pods and port.
 */
function gatewayAtLimits(): Spec {
  const hostsPerServer = MAX_GATEWAY_HOSTS / MAX_GATEWAY_SERVERS;
  return {
    selector: { istio: 'ingressgateway' },
    servers: Array.from({ length: MAX_GATEWAY_SERVERS }, (_, i) => ({
      port: { number: 1000 + (i % 20), name: 'a', protocol: 'x' },
      hosts: Array.from({ length: hostsPerServer }, (_, j) => `h${i}-${j}.example.com`),
    })),
  };
}

/**
 * The largest VirtualService judged, every list at its limit and every entry a finding of its
 * own: uncovered sniHosts, missing gateways, routes without an action beside routes to distinct
 * missing hosts.
 */
function virtualServiceAtLimits(): Spec {
  const routes = MAX_VIRTUAL_SERVICE_DESTINATIONS / 2;
  return {
    hosts: Array.from({ length: MAX_VIRTUAL_SERVICE_HOSTS / 2 }, (_, i) => `h${i}.example.com`),
    gateways: Array.from({ length: MAX_VIRTUAL_SERVICE_GATEWAYS }, (_, i) => `gone-${i}`),
    tls: [{ match: [{ sniHosts: Array.from({ length: MAX_VIRTUAL_SERVICE_HOSTS / 2 }, (_, i) => `s${i}.example.org`) }], route: [{ destination: { host: 'm0' } }] }],
    http: Array.from({ length: Math.min(routes, MAX_VIRTUAL_SERVICE_ROUTES) - 1 }, (_, i) => ({
      route: [{ destination: { host: `m${2 * i}`, port: { number: 80 } } }, { destination: { host: `m${2 * i + 1}` } }],
    })),
  };
}

/** The largest Service judged (MAX_SERVICE_PORTS ports), every port with the same name and number. */
function duplicatePorts(): Spec {
  return { selector: { app: 'web' }, ports: Array.from({ length: MAX_SERVICE_PORTS }, () => ({ name: 'http', port: 80 })) };
}

/** The cluster the traffic checks see: Services, ServiceEntries and Gateways of a mid-size mesh. */
function world(): PolicyContext {
  const objects = [
    ...Array.from({ length: 1000 }, (_, i) => ({
      apiVersion: 'v1', kind: 'Service', metadata: { name: `svc-${i}`, namespace: 'shop' },
      spec: { selector: { app: `svc-${i}` }, ports: [{ name: 'http', port: 8000 + (i % 20) }, { name: 'grpc', port: 9000 }] },
    })),
    {
      apiVersion: 'v1', kind: 'Service', metadata: { name: 'istio-ingressgateway', namespace: 'istio-system' },
      spec: { selector: { istio: 'ingressgateway' }, ports: Array.from({ length: 20 }, (_, i) => ({ name: `tcp-${i}`, port: 1000 + i })) },
    },
    ...Array.from({ length: 200 }, (_, i) => ({
      apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: `se-${i}`, namespace: 'ext' },
      spec: { hosts: [i % 2 === 0 ? `api-${i}.example.com` : `*.zone-${i}.example.com`], ports: [{ number: 443, name: 'tls', protocol: 'TLS' }] },
    })),
    // Gateways on the ingress pods, each serving 100 hosts on one of its ports.
    ...Array.from({ length: 50 }, (_, i) => ({
      apiVersion: 'networking.istio.io/v1', kind: 'Gateway', metadata: { name: `gw-${i}`, namespace: 'istio-system' },
      spec: { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: 1000 + (i % 20), name: 'http', protocol: 'HTTP' }, hosts: Array.from({ length: 100 }, (_, k) => `h${i * 100 + k}-0.example.com`) }] },
    })),
  ];
  return { traffic: worldFromObjects(objects, { complete: true }) };
}

export function runJudgeTime(runs = RUNS): JudgeResult[] {
  const config = buildConfig({ flags: { 'log-level': 'silent' }, env: {} });
  const cases = [
    { object: `VirtualService, ${MAX_VIRTUAL_SERVICE_HOSTS / 2} hosts + ${MAX_VIRTUAL_SERVICE_HOSTS / 2} uncovered sniHosts`, kind: 'VirtualService' as const, spec: hostsAndSniHosts },
    { object: 'VirtualService, 7 MiB', kind: 'VirtualService' as const, spec: largeVirtualService },
    { object: 'Gateway, 7 MiB', kind: 'Gateway' as const, spec: largeGateway },
    { object: 'VirtualService, 7 MiB of distinct missing destinations and gateways', kind: 'VirtualService' as const, spec: distinctMissingDestinations },
    { object: 'Gateway, 7 MiB of servers with a repeated name, no protocol, unexposed port', kind: 'Gateway' as const, spec: badServers },
    { object: `Gateway at the limits: ${MAX_GATEWAY_SERVERS} servers breaking three rules, ${MAX_GATEWAY_HOSTS} hosts served elsewhere`, kind: 'Gateway' as const, spec: gatewayAtLimits },
    { object: 'VirtualService at the limits: uncovered sniHosts, missing gateways and destinations', kind: 'VirtualService' as const, spec: virtualServiceAtLimits },
    { object: `Service, ${MAX_SERVICE_PORTS} ports of one name and number`, kind: 'Service' as const, spec: duplicatePorts },
  ];
  const traffic = world();
  const results: JudgeResult[] = [];
  for (const { object, kind, spec } of cases) {
    // Built when its turn comes: the server holds one such object at a time, not all of them.
    const body = JSON.stringify(review(kind, spec()));
    process.stderr.write(`[judge] ${object}\n`);
    for (const context of [{}, traffic]) {
      // What the handler gets: a freshly parsed request, as Fastify hands it over.
      const request = (JSON.parse(body) as { request: AdmissionRequest }).request;
      const judge = () => {
        const outcome = handleValidate(request, config, context);
        tallyRules(outcome.judged);
        const mutation = handleMutate(request, config);
        return { outcome, answerBytes: JSON.stringify(outcome.response).length + JSON.stringify(mutation.response).length };
      };
      const rules = () => {
        const object = request.object as KubeObject;
        if (kind === 'Service') return validateServicePorts(object, config.mutation);
        return kind === 'Gateway' ? validateGateway(object, context.traffic) : validateVirtualService(object, 'shop', context.traffic);
      };
      const { outcome, answerBytes } = judge();
      // Beyond the limits the server runs no rule: nor does the bench (they would only measure
      // what the limits spare the server, and run it out of its heap).
      const refused = exceededLimit(kind, request.object as KubeObject) !== undefined;
      const wall: number[] = [];
      const cpu: number[] = [];
      const ruleTimes: number[] = [];
      for (let run = 0; run < runs; run++) {
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        judge();
        wall.push(performance.now() - t0);
        cpu.push(process.cpuUsage(cpu0).user / 1000);
        if (refused) continue;
        const t1 = performance.now();
        rules();
        ruleTimes.push(performance.now() - t1);
      }
      const longest = wall.indexOf(Math.max(...wall));
      results.push({
        object,
        bodyBytes: Buffer.byteLength(body),
        answerBytes,
        traffic: context === traffic,
        runs,
        maxMs: wall[longest] ?? 0,
        maxCpuMs: cpu[longest] ?? 0,
        medianMs: [...wall].sort((a, b) => a - b)[Math.floor(runs / 2)] ?? 0,
        ...(refused ? {} : { rulesMaxMs: Math.max(...ruleTimes) }),
        refused,
        violations: outcome.judged.length,
        warnings: outcome.response.warnings?.length ?? 0,
        decision: outcome.decision,
      });
    }
  }
  return results;
}

export function judgeTable(results: readonly JudgeResult[]): string {
  return [
    '| object | review size | traffic checks | longest judgement (its CPU) | median | rules alone, longest | findings | warnings sent | answers / review | decision | runs |',
    '|---|---:|---|---:|---:|---:|---:|---:|---:|---|---:|',
    ...results.map((r) =>
      `| ${r.object} | ${(r.bodyBytes / 1024).toFixed(0)} KiB | ${r.traffic ? 'on' : 'off'} | ${r.maxMs.toFixed(1)} ms (${r.maxCpuMs.toFixed(0)} ms) | ` +
      `${r.medianMs.toFixed(1)} ms | ${r.rulesMaxMs === undefined ? '—' : `${r.rulesMaxMs.toFixed(1)} ms`} | ${r.refused ? 'refused unjudged' : r.violations} | ${r.warnings} | ${(r.answerBytes / r.bodyBytes).toFixed(4)} | ${r.decision} | ${r.runs} |`),
  ].join('\n');
}

/**
 * runJudgeTime in a child process with the server's Node flags (SERVER_NODE_ARGS: the image's
 * unless BENCH_SERVER_NODE_ARGS says otherwise), so the garbage collector works within the
 * heap the webhook has in its pod.
 */
export function runJudgeTimeAsServer(runs = RUNS): JudgeResult[] {
  const child = spawnSync(process.execPath, [...SERVER_NODE_ARGS, fileURLToPath(import.meta.url), '--json'], {
    env: { ...process.env, JUDGE_RUNS: String(runs) },
    encoding: 'utf8',
    maxBuffer: 16 * MiB,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (child.status !== 0) throw new Error(`bench/judge-time.ts exited ${child.status ?? child.signal}`);
  return JSON.parse(child.stdout) as JudgeResult[];
}

if (import.meta.main) {
  if (process.argv.includes('--json')) process.stdout.write(JSON.stringify(runJudgeTime()));
  else process.stdout.write(`Node flags: ${SERVER_NODE_ARGS.join(' ') || 'none'}\n\n${judgeTable(runJudgeTimeAsServer())}\n`);
}
