/**
 * The webhook under attack inside a memory cgroup of the chart's limit, with the image's Node
 * flags: each case replays one hostile input or load and asserts that the process is alive
 * (never OOM-killed), that its peak memory stayed within the budget, that the attack got the
 * documented answer, and that a well-behaved client on its own connection kept getting correct
 * answers throughout. Every case is bounded in time and stops its clients by itself.
 *
 * Run with `npm run test:limits` (builds first); LIMITS_CLI=path/to/dist/cli.js runs another build.
 */
import t, { type Test } from 'tap';
import http2 from 'node:http2';
import { cgroupsRequired, cgroupUnavailable, CHART_MEMORY_LIMIT, CLI, probeGet, startLimitedServer, type LimitedServer } from './limited-server.ts';
import { DEFAULT_CONFIG } from '../../src/config.ts';
import { MAX_GATEWAY_SERVERS, MAX_VIRTUAL_SERVICE_GATEWAYS, MAX_VIRTUAL_SERVICE_HOSTS, MAX_VIRTUAL_SERVICE_ROUTES } from '../../src/policies/object-limits.ts';
import { connect, idleTlsConnection, post, sleep, stalledBody, wellBehavedClient, type Answer } from './clients.ts';

const MiB = 1024 * 1024;
/** Peak memory allowed: the limit less a margin, so a case that brushed the limit still fails. */
const BUDGET = Math.floor(CHART_MEMORY_LIMIT * 0.9);
/**
 * What one admission may cost: CPU time of the server while it is the only one in flight (the
 * well-behaved client's small reviews add a few ms), which other load on a shared machine does
 * not inflate; and, far more loosely, the event-loop block, which it does (the process waits
 * for a core), so that bound only catches admissions that hold the loop for whole seconds.
 */
// On a quiet machine one admission of 4-7 MiB takes 20-40 ms of event loop; these bounds are
// wider because CI shares its 2 cores, and still fail an admission that costs whole seconds.
const MAX_ADMISSION_CPU_MS = 400;
const MAX_BLOCK_MS = 1000;
const BODY_LIMIT = 7 * MiB;

const unavailable = cgroupUnavailable();
if (unavailable !== undefined && !cgroupsRequired()) {
  t.plan(0, `memory cgroups unavailable: ${unavailable}`);
} else {
  if (unavailable !== undefined) t.fail(`memory cgroups are required here (CI or root) but unavailable: ${unavailable}`);
  else t.comment(`server ${CLI}, cgroup limit ${CHART_MEMORY_LIMIT / MiB} MiB, budget ${BUDGET / MiB} MiB`);
}

type Case = (server: LimitedServer, t: Test) => Promise<void>;

/** Starts a server in its own cgroup, runs the case beside a well-behaved client, and checks the three promises. */
function limitsCase(name: string, run: Case, options: { args?: string[] } = {}) {
  if (unavailable !== undefined) return;
  t.test(name, { timeout: 90_000 }, async (t) => {
    const server = await startLimitedServer({ args: options.args ?? [] });
    t.teardown(() => server.stop());
    const baseline = server.peakBytes();
    await server.eventLoopLagMaxMs();
    const client = await wellBehavedClient(server.port, server.ca);
    await run(server, t);
    // The well-behaved client keeps asking for a moment after the attack, too.
    await sleep(1000);
    const report = await client.stop();
    const peak = server.peakBytes();
    t.ok(server.alive(), 'the server is alive and was never OOM-killed', { stderr: server.stderr().slice(-2000) });
    t.ok(peak <= BUDGET, `peak memory ${(peak / MiB).toFixed(1)} MiB (at start ${(baseline / MiB).toFixed(1)} MiB) within ${(BUDGET / MiB).toFixed(0)} MiB`);
    t.ok(report.sent >= 2 && report.correct === report.sent, `the well-behaved client got ${report.correct} of ${report.sent} answers right (slowest ${report.slowestMs.toFixed(0)} ms)`, { failures: report.failures.slice(0, 5) });
    const healthz = await probeGet(server.probePort, '/healthz').catch((error: Error) => ({ status: 0, body: error.message }));
    t.equal(healthz.status, 200, '/healthz answers afterwards');
    t.comment(`${name}: peak ${(peak / MiB).toFixed(1)} MiB`);
  });
}

function review(object: unknown, options: { operation?: string; kind?: string; group?: string; oldObject?: unknown } = {}): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'attack',
      kind: { group: options.group ?? '', version: 'v1', kind: options.kind ?? 'Service' },
      operation: options.operation ?? 'CREATE',
      namespace: 'default',
      object,
      ...(options.oldObject ? { oldObject: options.oldObject } : {}),
    },
  });
}

function serviceWithPorts(count: number, extra: Record<string, unknown> = {}, portName = (_: number) => 'web') {
  // Named `web` by default: every port is one the mutation renames (to http-web, then http-<port>…).
  const ports = Array.from({ length: count }, (_, i) => ({ name: portName(i), port: 1 + (i % 65535) }));
  return { apiVersion: 'v1', kind: 'Service', metadata: { name: 'huge', namespace: 'default', ...extra }, spec: { ports } };
}

function isAnswer(value: Answer | Error): value is Answer {
  return !(value instanceof Error);
}

interface AdmissionCost {
  /** The longest event-loop block while `action` ran (the webhook's own metric). */
  readonly blockMs: number;
  /** CPU time the server used meanwhile. */
  readonly cpuMs: number;
}

async function measure(server: LimitedServer, action: () => Promise<unknown>): Promise<AdmissionCost> {
  await server.eventLoopLagMaxMs();
  const cpuBefore = server.cpuMs();
  await action();
  const cpuMs = server.cpuMs() - cpuBefore;
  return { blockMs: await server.eventLoopLagMaxMs(), cpuMs };
}

/** Asserts both bounds of one admission's cost. */
function checkCost(t: Test, what: string, cost: AdmissionCost): void {
  t.ok(cost.cpuMs < MAX_ADMISSION_CPU_MS, `${what}CPU time ${cost.cpuMs.toFixed(0)} ms`);
  t.ok(cost.blockMs < MAX_BLOCK_MS, `${what}longest event-loop block ${cost.blockMs.toFixed(0)} ms`);
}

// The measured attack (8,000 + 8,000, refused by the host limit now), and the largest
// VirtualService judged: at the limit, every sniHost uncovered.
for (const [hostCount, sniHostCount, expected] of [
  [8000, 8000, /^VirtualService default\/vs was not admitted: it lists 16000 hosts and sniHosts/],
  [MAX_VIRTUAL_SERVICE_HOSTS / 2, MAX_VIRTUAL_SERVICE_HOSTS / 2, /^VirtualService default\/vs is not ready for the Istio mesh \(5000 problems\)/],
] as const) {
  limitsCase(`one VirtualService with ${hostCount} hosts and ${sniHostCount} sniHosts to /validate is answered without blocking`, async (server, t) => {
    const hosts = Array.from({ length: hostCount }, (_, i) => `h${i}.example.com`);
    const sniHosts = Array.from({ length: sniHostCount }, (_, i) => `s${i}.example.org`);
    const vs = { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'vs', namespace: 'default' }, spec: { hosts, tls: [{ match: [{ sniHosts, port: 443 }], route: [{ destination: { host: 'h0.example.com' } }] }] } };
    const session = await connect(server.port, server.ca);
    t.teardown(() => session.destroy());
    let answer: Answer | undefined;
    const cost = await measure(server, async () => {
      const result = await post(session, '/validate', review(vs, { kind: 'VirtualService', group: 'networking.istio.io' }), 10_000).catch((error: Error) => error);
      if (isAnswer(result)) answer = result;
      else t.fail(`no answer: ${result.message}`);
    }).catch(() => ({ blockMs: Number.NaN, cpuMs: Number.NaN }));
    t.equal(answer?.status, 200, `answered 200 in ${answer?.ms.toFixed(0)} ms`);
    const json = JSON.parse(answer?.body ?? '{}') as { response?: { allowed?: boolean; status?: { message?: string } } };
    t.equal(json.response?.allowed, false);
    t.match(json.response?.status?.message, expected);
    checkCost(t, '', cost);
  });
}

for (const webhook of ['mutate', 'validate'] as const) {
  limitsCase(`Services with 120,000 and 20,000 ports to /${webhook} are refused with a message, in bounded time and size`, async (server, t) => {
    const session = await connect(server.port, server.ca);
    t.teardown(() => session.destroy());
    for (const [ports, expected] of [
      // More JSON values than any real review: refused before it is parsed.
      [120_000, { status: 413, message: /^request body holds more than 200000 JSON values/ }],
      // Parsed, then denied by the port limit: no rule runs on it.
      [20_000, { status: 200, message: /^Service default\/huge was not admitted: it has 20000 ports; mesh-admission judges Services of at most 1000 ports/ }],
    ] as const) {
      const body = review(serviceWithPorts(ports));
      let answer: Answer | undefined;
      const cost = await measure(server, async () => {
        const result = await post(session, `/${webhook}`, body, 15_000).catch((error: Error) => error);
        if (isAnswer(result)) answer = result;
        else t.fail(`no answer: ${result.message}`);
      }).catch(() => ({ blockMs: Number.NaN, cpuMs: Number.NaN }));
      t.equal(answer?.status, expected.status, `${ports} ports: ${expected.status}`);
      const json = JSON.parse(answer?.body ?? '{}') as { message?: string; response?: { allowed?: boolean; status?: { message?: string } } };
      if (expected.status === 200) t.equal(json.response?.allowed, false, 'denied');
      t.match(json.response?.status?.message ?? json.message ?? '', expected.message, 'the message says why');
      const ratio = Buffer.byteLength(answer?.body ?? '') / Buffer.byteLength(body);
      t.ok(ratio < 0.01, `answer/request size ratio ${ratio.toFixed(5)}`);
      checkCost(t, '', cost);
      t.comment(`/${webhook} ${ports} ports: request ${(Buffer.byteLength(body) / MiB).toFixed(2)} MiB, answer ${Buffer.byteLength(answer?.body ?? '')} bytes, ratio ${ratio.toFixed(5)}, CPU ${cost.cpuMs.toFixed(0)} ms, block ${cost.blockMs.toFixed(0)} ms`);
    }
  });
}

limitsCase('7 MiB reviews at the object limits (Service of 1,000 renamed ports, Namespace of 5,000 labels, Gateway and VirtualService with every entry a finding): answered in bounded time and size', async (server, t) => {
  const filler = (bytes: number) => ({ 'example.com/filler': 'x'.repeat(bytes) });
  // The stored ports had other names: every incoming `web` port is new and renamed.
  const oldService = serviceWithPorts(1000, { annotations: filler(2 * MiB) }, (i) => `old-${i}`);
  const newService = serviceWithPorts(1000, { annotations: filler(2 * MiB), labels: { changed: 'yes' } });
  const labels = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`team.example.com/label-${i}`, `value-${i}`]));
  const bodies = {
    'Service UPDATE /mutate': { path: '/mutate', body: review(newService, { operation: 'UPDATE', oldObject: oldService }) },
    'Service UPDATE /validate': { path: '/validate', body: review(newService, { operation: 'UPDATE', oldObject: oldService }) },
    'Namespace CREATE /mutate': { path: '/mutate', body: review({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'big', labels, annotations: filler(6 * MiB) } }, { kind: 'Namespace' }) },
    'Gateway CREATE /validate': { path: '/validate', body: review(gatewayAtLimits(filler(6 * MiB)), { kind: 'Gateway', group: 'networking.istio.io' }) },
    'VirtualService CREATE /validate': { path: '/validate', body: review(virtualServiceAtLimits(filler(6 * MiB)), { kind: 'VirtualService', group: 'networking.istio.io' }) },
  };
  const session = await connect(server.port, server.ca);
  t.teardown(() => session.destroy());
  for (const [name, { path, body }] of Object.entries(bodies)) {
    t.ok(Buffer.byteLength(body) > 4 * MiB && Buffer.byteLength(body) <= BODY_LIMIT, `${name}: body of ${(Buffer.byteLength(body) / MiB).toFixed(2)} MiB`);
    let answer: Answer | Error = new Error('not sent');
    const cost = await measure(server, async () => (answer = await post(session, path, body, 10_000).catch((error: Error) => error)));
    t.ok(isAnswer(answer) && answer.status === 200, `${name}: answered 200`);
    const size = isAnswer(answer) ? Buffer.byteLength(answer.body) : Number.NaN;
    const ratio = size / Buffer.byteLength(body);
    t.ok(ratio < 0.1, `${name}: answer/request size ratio ${ratio.toFixed(4)}`);
    checkCost(t, `${name}: `, cost);
    t.comment(`${name}: request ${(Buffer.byteLength(body) / MiB).toFixed(2)} MiB, answer ${size} bytes, ratio ${ratio.toFixed(4)}, CPU ${cost.cpuMs.toFixed(0)} ms, block ${cost.blockMs.toFixed(0)} ms`);
  }
});

/** A Gateway at the server limit, every server repeating a name with no known protocol. */
function gatewayAtLimits(annotations: Record<string, string>) {
  return { apiVersion: 'networking.istio.io/v1', kind: 'Gateway', metadata: { name: 'gw', namespace: 'default', annotations }, spec: {
    selector: { istio: 'ingressgateway' },
    servers: Array.from({ length: MAX_GATEWAY_SERVERS }, (_, i) => ({ port: { number: 1 + i, name: 'a', protocol: 'x' }, hosts: [`h${i}.example.com`] })),
  } };
}

/** A VirtualService at its host, gateway and route limits: uncovered sniHosts, routes with no destination host. */
function virtualServiceAtLimits(annotations: Record<string, string>) {
  return { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'vs', namespace: 'default', annotations }, spec: {
    hosts: ['shop.example.com'],
    gateways: Array.from({ length: MAX_VIRTUAL_SERVICE_GATEWAYS }, (_, i) => `gone-${i}`),
    tls: [{ match: [{ sniHosts: Array.from({ length: MAX_VIRTUAL_SERVICE_HOSTS - 1 }, (_, i) => `s${i}.example.org`) }], route: [{ destination: { host: 'shop.example.com' } }] }],
    http: Array.from({ length: MAX_VIRTUAL_SERVICE_ROUTES - 1 }, () => ({ route: [{ weight: 0 }] })),
  } };
}

limitsCase('30 stalled 7 MiB bodies on one HTTP/2 connection: streams past the connection\'s cap refused, the budget refuses most of the rest at once, the others get 408', async (server, t) => {
  const session = await connect(server.port, server.ca);
  session.on('error', () => undefined);
  t.teardown(() => session.destroy());
  const stalled = Array.from({ length: 30 }, () => stalledBody(session, '/validate', BODY_LIMIT));
  const answers = await Promise.all(stalled.map((s) => s.answer));
  const statuses = answers.map((a) => (isAnswer(a) ? a.status : a.message));
  const streamRefused = answers.filter((a) => !isAnswer(a) && /NGHTTP2_REFUSED_STREAM/.test(a.message));
  const served = answers.length - streamRefused.length;
  const refused = answers.filter((a): a is Answer => isAnswer(a) && a.status === 503);
  const timedOut = answers.filter((a) => isAnswer(a) && a.status === 408);
  t.ok(served <= DEFAULT_CONFIG.maxStreamsPerConnection, `${streamRefused.length} streams past the cap of ${DEFAULT_CONFIG.maxStreamsPerConnection} per connection refused (REFUSED_STREAM)`, { statuses });
  // The budget holds four 7 MiB bodies; every other served stream is refused at once.
  t.ok(refused.length >= served - 4, `${refused.length} of ${served} refused with 503`, { statuses });
  t.ok(refused.every((a) => a.headers['retry-after'] !== undefined && a.ms < 2000), 'each at once, with Retry-After');
  t.equal(refused.length + timedOut.length, served, 'every other one answered 408 at the request deadline');
});

limitsCase('10 complete, valid 7 MiB reviews at once: each answered, or refused at once with 503 and Retry-After', async (server, t) => {
  // A Service under the port limit whose labels and annotation fill the body.
  const labels = Object.fromEntries(Array.from({ length: 4_000 }, (_, i) => [`team.example.com/label-${i}`, `value-${i}`]));
  const object = serviceWithPorts(200, { labels, annotations: { note: 'x'.repeat(6.5 * MiB) } });
  const body = review(object);
  t.ok(Buffer.byteLength(body) <= BODY_LIMIT && Buffer.byteLength(body) > 6 * MiB, `body of ${(Buffer.byteLength(body) / MiB).toFixed(2)} MiB`);
  const sessions = await Promise.all(Array.from({ length: 10 }, () => connect(server.port, server.ca)));
  t.teardown(() => sessions.forEach((s) => s.destroy()));
  const answers = await Promise.all(sessions.map((s) => post(s, '/validate', body, 20_000).catch((error: Error) => error)));
  const statuses = answers.map((a) => (isAnswer(a) ? a.status : a.message));
  t.ok(answers.every((a) => isAnswer(a) && (a.status === 200 || (a.status === 503 && a.headers['retry-after'] !== undefined))), 'each 200 or 503 with Retry-After', { statuses });
  t.ok(answers.some((a) => isAnswer(a) && a.status === 200), 'at least one answered 200');
});

limitsCase('7 MiB of tiny JSON values is refused 413 before parsing; 10 bodies at the value limit at once are answered', async (server, t) => {
  // 2.4 million empty objects: some 190 MB once parsed.
  const tiny = (count: number, padding = 0) =>
    review({ ...serviceWithPorts(1), x: '__X__', pad: 'p'.repeat(padding) }).replace('"__X__"', `[${Array(count).fill('{}').join(',')}]`);
  const session = await connect(server.port, server.ca);
  t.teardown(() => session.destroy());
  const huge = tiny(Math.floor((BODY_LIMIT - 1000) / 3));
  const refused = await post(session, '/mutate', huge, 15_000).catch((error: Error) => error);
  t.ok(isAnswer(refused) && refused.status === 413, `answered 413 (got ${isAnswer(refused) ? refused.status : refused.message})`);
  if (isAnswer(refused)) t.match(JSON.parse(refused.body), { statusCode: 413, error: 'Payload Too Large', message: /more than 200000 JSON values/ });
  // Just under the limit (an object and a comma count two each), padded to 7 MiB.
  const atLimit = tiny(99_900, 6_500_000);
  const sessions = await Promise.all(Array.from({ length: 10 }, () => connect(server.port, server.ca)));
  t.teardown(() => sessions.forEach((s) => s.destroy()));
  const answers = await Promise.all(sessions.map((s) => post(s, '/mutate', atLimit, 20_000).catch((error: Error) => error)));
  const statuses = answers.map((a) => (isAnswer(a) ? a.status : a.message));
  t.ok(answers.every((a) => isAnswer(a) && (a.status === 200 || (a.status === 503 && a.headers['retry-after'] !== undefined))), 'each 200 or 503 with Retry-After', { statuses });
  t.ok(answers.some((a) => isAnswer(a) && a.status === 200), 'at least one answered 200');
});

limitsCase('16 clients sending Gateways, VirtualServices and Services at the object limits at once, every entry a finding, are answered', async (server, t) => {
  // Every entry is a finding: the Gateway at the server limit, the Service at the port limit,
  // the VirtualService at the host limit (one host, the rest sniHosts): beyond them, objects
  // are refused unjudged (the next case).
  const gateway = { apiVersion: 'networking.istio.io/v1', kind: 'Gateway', metadata: { name: 'gw', namespace: 'default' }, spec: {
    selector: { istio: 'ingressgateway' },
    servers: Array.from({ length: MAX_GATEWAY_SERVERS }, (_, i) => ({ port: { number: 1 + (i % 65535), name: 'a', protocol: 'x' } })),
  } };
  const virtualService = { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'vs', namespace: 'default' }, spec: {
    hosts: ['shop.example.com'],
    tls: [{ match: [{ sniHosts: Array.from({ length: MAX_VIRTUAL_SERVICE_HOSTS - 1 }, (_, i) => `s${i}.example.org`) }], route: [{ destination: { host: 'shop.example.com' } }] }],
  } };
  const bodies = [
    { path: '/validate', body: review(gateway, { kind: 'Gateway', group: 'networking.istio.io' }) },
    { path: '/validate', body: review(virtualService, { kind: 'VirtualService', group: 'networking.istio.io' }) },
    { path: '/mutate', body: review(serviceWithPorts(1000)) },
  ];
  t.comment(`review sizes ${bodies.map((b) => `${(Buffer.byteLength(b.body) / MiB).toFixed(2)} MiB`).join(', ')}`);
  const sessions = await Promise.all(Array.from({ length: 16 }, () => connect(server.port, server.ca)));
  t.teardown(() => sessions.forEach((s) => s.destroy()));
  const answers = (await Promise.all(sessions.map(async (session, i) => {
    const mine: (Answer | Error)[] = [];
    for (let round = 0; round < 3; round++) {
      const { path, body } = bodies[(i + round) % bodies.length] as { path: string; body: string };
      mine.push(await post(session, path, body, 30_000).catch((error: Error) => error));
    }
    return mine;
  }))).flat();
  const statuses = answers.map((a) => (isAnswer(a) ? a.status : a.message));
  t.ok(answers.every((a) => isAnswer(a) && (a.status === 200 || (a.status === 503 && a.headers['retry-after'] !== undefined))), 'each 200 or 503 with Retry-After', { statuses });
  const answered = answers.filter((a): a is Answer => isAnswer(a) && a.status === 200);
  t.ok(answered.length > 0, `${answered.length} of ${answers.length} answered 200 (slowest ${Math.max(...answered.map((a) => a.ms)).toFixed(0)} ms)`);
  const largestAnswer = Math.max(...answered.map((a) => a.body.length));
  t.ok(largestAnswer < 64 * 1024, `largest answer ${(largestAnswer / 1024).toFixed(1)} KiB`);
});

limitsCase('16 clients sending VirtualServices of 180,000 sniHosts at once: each is refused by the host limit, none judged', async (server, t) => {
  // Judged, each sniHost would be a finding: 16 such objects at once ran the heap out.
  const virtualService = { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'vs', namespace: 'default' }, spec: {
    hosts: ['shop.example.com'],
    tls: [{ match: [{ sniHosts: Array.from({ length: 180_000 }, (_, i) => `s${i}.example.org`) }], route: [{ destination: { host: 'shop.example.com' } }] }],
  } };
  const body = review(virtualService, { kind: 'VirtualService', group: 'networking.istio.io' });
  t.comment(`review size ${(Buffer.byteLength(body) / MiB).toFixed(2)} MiB`);
  const sessions = await Promise.all(Array.from({ length: 16 }, () => connect(server.port, server.ca)));
  t.teardown(() => sessions.forEach((s) => s.destroy()));
  const answers = await Promise.all(sessions.map((session) => post(session, '/validate', body, 30_000).catch((error: Error) => error)));
  const statuses = answers.map((a) => (isAnswer(a) ? a.status : a.message));
  t.ok(answers.every((a) => isAnswer(a) && (a.status === 200 || (a.status === 503 && a.headers['retry-after'] !== undefined))), 'each 200 or 503 with Retry-After', { statuses });
  const answered = answers.filter((a): a is Answer => isAnswer(a) && a.status === 200);
  t.ok(answered.length > 0, `${answered.length} of ${answers.length} answered 200`);
  for (const answer of answered) {
    const json = JSON.parse(answer.body) as { response?: { allowed?: boolean; status?: { message?: string } } };
    t.equal(json.response?.allowed, false);
    t.equal(json.response?.status?.message, `VirtualService default/vs was not admitted: it lists 180001 hosts and sniHosts; mesh-admission judges VirtualServices of at most ${MAX_VIRTUAL_SERVICE_HOSTS}: split it into several VirtualServices`);
  }
});

// 60 connections as measured before; 480 (just under the connection cap) is the most one attacker can hold.
for (const connections of [60, 480]) {
limitsCase(`${connections} connections x 250 streams with a zero receive window`, async (server, t) => {
  const reviewBody = review(serviceWithPorts(3));
  const sessions = await Promise.all(Array.from({ length: connections }, () => connect(server.port, server.ca, { initialWindowSize: 0 }).catch((error: Error) => error)));
  const open = sessions.filter((s): s is http2.ClientHttp2Session => !(s instanceof Error));
  t.teardown(() => open.forEach((s) => s.destroy()));
  let streams = 0;
  for (const session of open) {
    session.on('error', () => undefined);
    for (let i = 0; i < 250; i++) {
      const stream = session.request({ ':method': 'POST', ':path': '/mutate', 'content-type': 'application/json' });
      stream.on('error', () => undefined);
      stream.end(reviewBody);
      streams += 1;
    }
    await sleep(20);
  }
  t.comment(`${open.length} connections, ${streams} streams opened`);
  // The answers cannot be delivered; hold them until past the request deadline.
  await sleep(12_000);
});
}

limitsCase('4,500 idle TLS connections: the connection cap closes the excess at once', async (server, t) => {
  const sockets: Awaited<ReturnType<typeof idleTlsConnection>>[] = [];
  t.teardown(() => sockets.forEach((s) => (s instanceof Error ? undefined : s.destroy())));
  for (let batch = 0; batch < 45; batch++) {
    sockets.push(...(await Promise.all(Array.from({ length: 100 }, () => idleTlsConnection(server.port, server.ca)))));
  }
  await sleep(500);
  const stillOpen = sockets.filter((s) => !(s instanceof Error) && !s.destroyed && s.readyState === 'open').length;
  t.comment(`${stillOpen} of 4,500 connections held open`);
  // The well-behaved client holds one of the default 500.
  t.ok(stillOpen < 500, 'the connections beyond the cap were closed');
  // A long headers deadline: on a slow machine the first connections would otherwise be cut
  // before the last are open, and the attack would not be replayed (an attacker reconnects).
}, { args: ['--headers-timeout-ms', '60000'] });

limitsCase(
  'an HTTP/2 body that stalls is answered 408 JSON at the request deadline, and the connection keeps serving',
  async (server, t) => {
    const session = await connect(server.port, server.ca);
    session.on('error', () => undefined);
    t.teardown(() => session.destroy());
    let goaway = false;
    session.on('goaway', () => (goaway = true));
    // Headers, then not a byte of the declared body: the connection falls silent.
    const { answer } = stalledBody(session, '/validate', 4096, 0);
    const result = await answer;
    t.ok(isAnswer(result) && result.status === 408, `answered 408 (got ${isAnswer(result) ? result.status : result.message})`);
    if (isAnswer(result)) {
      t.same(JSON.parse(result.body), { statusCode: 408, error: 'Request Timeout', message: 'the request was not received in full within 2000 ms' });
      t.ok(result.ms >= 1900 && result.ms < 4000, `after ${result.ms.toFixed(0)} ms`);
    }
    t.notOk(goaway, 'no GOAWAY');
    const next = await post(session, '/mutate', review(serviceWithPorts(1)), 5000).catch((error: Error) => error);
    t.ok(isAnswer(next) && next.status === 200, 'the same connection answers the next request');
  },
  { args: ['--request-timeout-ms', '2000', '--headers-timeout-ms', '2000'] },
);
