/**
 * The longest single judgement of one large Istio object: handleValidate + handleMutate
 * (src/admission/handlers.ts) on one parsed AdmissionRequest, as the webhook runs them on the
 * event loop — nothing else is served meanwhile, so this is how long one such request blocks.
 *
 *   npm run bench:judge       (node bench/judge-time.ts; also part of `npm run bench`)
 *
 * Cases: a VirtualService with 8,000 hosts and 8,000 sniHosts none of them covers (64 KB),
 * and a 7 MiB VirtualService and Gateway (hosts, sniHosts, routes, mirrors, gateway
 * references, servers), each with traffic checks off (the default) and on (a world of
 * Services, ServiceEntries and Gateways). Each case runs JUDGE_RUNS times (default 3) after
 * one warm-up; the table shows the longest and the median, and how big both answers are
 * against the review. Also the inputs an adversary would pick: 7 MiB of distinct missing
 * destinations and gateways, 7 MiB of servers each breaking three Gateway rules, and the
 * largest Service judged with every port a duplicate. A judgement includes counting the
 * findings per rule, as the server does for its metrics.
 */
import { buildConfig } from '../src/config.ts';
import { handleMutate, handleValidate } from '../src/admission/handlers.ts';
import { tallyRules } from '../src/admission/decision.ts';
import { MAX_SERVICE_PORTS } from '../src/policies/object-limits.ts';
import { validateServicePorts } from '../src/policies/service-ports.ts';
import type { AdmissionRequest } from '../src/admission/review.ts';
import type { PolicyContext } from '../src/policies/catalog.ts';
import { worldFromObjects } from '../src/policies/traffic-world.ts';
import { validateGateway } from '../src/policies/gateway.ts';
import { validateVirtualService } from '../src/policies/virtual-service.ts';
import type { KubeObject } from '../src/policies/types.ts';

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
  /** The longest run of the rules alone (validateVirtualService / validateGateway), without judging. */
  readonly rulesMaxMs: number;
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

/** 8,000 hosts and 8,000 sniHosts, no SNI host covered: every one is a miss. */
function hostsAndSniHosts(): Spec {
  const count = 8000;
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
    ...Array.from({ length: 50 }, (_, i) => ({ apiVersion: 'networking.istio.io/v1', kind: 'Gateway', metadata: { name: `gw-${i}`, namespace: 'istio-system' }, spec: {} })),
  ];
  return { traffic: worldFromObjects(objects, { complete: true }) };
}

export function runJudgeTime(runs = RUNS): JudgeResult[] {
  const config = buildConfig({ flags: { 'log-level': 'silent' }, env: {} });
  const cases = [
    { object: 'VirtualService, 8,000 hosts + 8,000 uncovered sniHosts', kind: 'VirtualService' as const, spec: hostsAndSniHosts() },
    { object: 'VirtualService, 7 MiB', kind: 'VirtualService' as const, spec: largeVirtualService() },
    { object: 'Gateway, 7 MiB', kind: 'Gateway' as const, spec: largeGateway() },
    { object: 'VirtualService, 7 MiB of distinct missing destinations and gateways', kind: 'VirtualService' as const, spec: distinctMissingDestinations() },
    { object: 'Gateway, 7 MiB of servers with a repeated name, no protocol, unexposed port', kind: 'Gateway' as const, spec: badServers() },
    { object: `Service, ${MAX_SERVICE_PORTS} ports of one name and number`, kind: 'Service' as const, spec: duplicatePorts() },
  ];
  const traffic = world();
  const results: JudgeResult[] = [];
  for (const { object, kind, spec } of cases) {
    const body = JSON.stringify(review(kind, spec));
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
      const violations = rules().length;
      const wall: number[] = [];
      const cpu: number[] = [];
      const ruleTimes: number[] = [];
      for (let run = 0; run < runs; run++) {
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        judge();
        wall.push(performance.now() - t0);
        cpu.push(process.cpuUsage(cpu0).user / 1000);
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
        rulesMaxMs: Math.max(...ruleTimes),
        violations,
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
      `${r.medianMs.toFixed(1)} ms | ${r.rulesMaxMs.toFixed(1)} ms | ${r.violations} | ${r.warnings} | ${(r.answerBytes / r.bodyBytes).toFixed(4)} | ${r.decision} | ${r.runs} |`),
  ].join('\n');
}

if (import.meta.main) process.stdout.write(`${judgeTable(runJudgeTime())}\n`);
