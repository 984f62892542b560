/**
 * Gateways and VirtualServices through the webhook (buildApp + app.inject) with a fake world,
 * the webhook configuration for them, and /readyz gating on the caches' first sync.
 */
import t from 'tap';
import { pino } from 'pino';
import { buildApp } from '../src/app.ts';
import { createMetrics } from '../src/observability/metrics.ts';
import { unavailableWorld, worldFromObjects, type TrafficWorld } from '../src/policies/traffic-world.ts';
import { webhookConfigurations } from '../src/webhook-config.ts';
import { startServer } from '../src/server.ts';
import type { TrafficCaches } from '../src/kube/informers.ts';
import { review, testConfig } from './helpers/reviews.ts';
import { byName, gateway, httpTo, ingressService, seed, virtualService } from './helpers/traffic.ts';
import { tempDir } from './helpers/temp-dir.ts';

function makeApp(traffic: TrafficWorld | undefined, flags: Record<string, string> = {}) {
  const metrics = createMetrics({ collectProcessMetrics: false });
  const app = buildApp(testConfig(flags), { metrics, ...(traffic ? { policyContext: { traffic } } : {}) });
  t.teardown(() => app.close());
  return { app, metrics };
}

const istio = (kind: 'Gateway' | 'VirtualService', object: unknown, extra: Parameters<typeof review>[0] = {}) =>
  review({ kind, group: 'networking.istio.io', version: 'v1', object, ...extra });

async function validate(app: ReturnType<typeof makeApp>['app'], body: unknown) {
  const res = await app.inject({ method: 'POST', url: '/validate', headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) });
  t.equal(res.statusCode, 200);
  return res.json().response;
}

const world = worldFromObjects([ingressService(), ...seed.services, ...seed.gateways], { complete: true });

t.test("the seed's 21000 Gateway is allowed with a warning carrying the kubectl fix", async (t) => {
  const { app, metrics } = makeApp(world);
  const response = await validate(app, istio('Gateway', byName(seed.gateways, 'Gateway', 'data-center-grpc-gateway')));
  t.equal(response.allowed, true);
  t.equal(response.warnings.length, 1);
  t.match(response.warnings[0], /^Gateway default\/data-center-grpc-gateway: \[gateway-port-not-exposed\] Expose port 21000 \(IST0162\): kubectl -n istio-system patch svc istio-ingressgateway --type=json -p '\[.*\]'$/);
  t.ok(response.warnings[0].length <= 256, 'not truncated');
  t.match(await metrics.registry.getSingleMetricAsString('mesh_admission_violations_total'), /rule="gateway-port-not-exposed",enforced="false"\} 1/);
});

t.test("the seed's other Gateways and all three VirtualServices are allowed without warnings", async (t) => {
  const { app } = makeApp(world);
  for (const gw of seed.gateways.filter((g) => g.metadata?.name !== 'data-center-grpc-gateway')) {
    t.same(await validate(app, istio('Gateway', gw, { uid: 'gw' })), { uid: 'gw', allowed: true }, String(gw.metadata?.name));
  }
  for (const vs of seed.virtualServices) {
    const response = await validate(app, istio('VirtualService', vs, { uid: 'vs' }));
    t.same(response, { uid: 'vs', allowed: true }, String(vs.metadata?.name));
  }
});

t.test('structural Gateway errors are denied (enforcement deny) with the field as cause', async (t) => {
  const { app } = makeApp(world);
  const bad = gateway('gw', [{ number: 443, name: 'https', protocol: 'HTTPS' }, { number: 9443, name: 'https', protocol: 'HTTPS', tls: { mode: 'SIMPLE', credentialName: 'c' } }]);
  const response = await validate(app, istio('Gateway', bad));
  t.equal(response.allowed, false);
  t.equal(response.status.code, 403);
  t.same(response.status.details.causes.map((c: { reason: string; field: string }) => [c.reason, c.field]), [
    ['gateway-tls-missing', 'spec.servers[0].tls'],
    ['gateway-port-name-duplicate', 'spec.servers[1].port.name'],
  ]);
  t.match(response.status.message, /^Gateway default\/gw is not ready for the Istio mesh \(2 problems\)/);
  t.match(response.warnings, [/gateway-port-not-exposed.*9443/], '9443 is not exposed either: a warning');

  const { app: lenient } = makeApp(world, { enforcement: 'warn' });
  t.equal((await validate(lenient, istio('Gateway', bad))).allowed, true, 'enforcement warn');
});

t.test('VirtualService problems are warnings; UPDATE marks old ones as already present', async (t) => {
  const { app } = makeApp(world);
  const vs = virtualService('vs', { hosts: ['x.example.com'], gateways: ['istio-system/nope'], http: [httpTo('reviews', 9080)] });
  const created = await validate(app, istio('VirtualService', vs));
  t.equal(created.allowed, true);
  t.match(created.warnings, [/^VirtualService default\/vs: \[virtualservice-destination-not-found\] /, /^VirtualService default\/vs: \[virtualservice-gateway-not-found\] spec\.gateways\[0\]: Gateway istio-system\/nope/]);

  const edited = { ...vs, spec: { ...vs.spec as object, http: [httpTo('reviews', 9080), httpTo('test-kratos-service', 81)] } };
  const updated = await validate(app, istio('VirtualService', edited, { operation: 'UPDATE', oldObject: vs }));
  t.equal(updated.allowed, true);
  t.equal(updated.warnings.length, 3);
  t.match(updated.warnings[1], /^VirtualService default\/vs: \[virtualservice-port-not-found\] spec\.http\[1\]/);
  t.notOk(updated.warnings.some((w: string) => /already existed/.test(w)), 'warnings never block, so no grandfathering note');
});

t.test('unavailable world: answered at once with one warning; structural errors still deny', async (t) => {
  const { app } = makeApp(unavailableWorld('the Kubernetes API could not be read (Services: connect ECONNREFUSED)'));
  const started = performance.now();
  const response = await validate(app, istio('VirtualService', byName(seed.virtualServices, 'VirtualService', 'es-vservice')));
  t.ok(performance.now() - started < 1000, 'no waiting on the cluster');
  t.equal(response.allowed, true);
  t.same(response.warnings.length, 1);
  t.match(response.warnings[0], /^VirtualService [^:]+: \[traffic-checks-unavailable\] could not check its destinations, gateways and hosts because the Kubernetes API could not be read/);
  const denied = await validate(app, istio('Gateway', gateway('gw', [{ number: 1, name: 'x', protocol: 'NOPE' }])));
  t.equal(denied.allowed, false);
  t.match(denied.warnings, [/traffic-checks-unavailable/]);
});

t.test('without traffic checks only the structural rules run', async (t) => {
  const { app } = makeApp(undefined);
  t.same(await validate(app, istio('VirtualService', virtualService('vs', { hosts: ['x'], http: [httpTo('nowhere')] }), { uid: 'u1' })), { uid: 'u1', allowed: true });
  t.equal((await validate(app, istio('Gateway', gateway('gw', [{ number: 1, name: 'x', protocol: 'NOPE' }])))).allowed, false);
});

t.test('Gateway API Gateways (another group) are not judged', async (t) => {
  const { app } = makeApp(world);
  const response = await validate(app, review({ kind: 'Gateway', group: 'gateway.networking.k8s.io', object: { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'g' }, spec: { listeners: [] } }, uid: 'g1' }));
  t.same(response, { uid: 'g1', allowed: true });
});

t.test('webhook-config: --traffic-checks adds the Istio rule to the validating webhook only', async (t) => {
  const options = { url: 'https://127.0.0.1:8443', caPem: 'x', name: 'mesh-admission', failurePolicy: 'Fail' as const, timeoutSeconds: 5, excludedNamespaces: [] };
  const [validating, mutating] = webhookConfigurations({ ...options, trafficChecks: true }) as [any, any];
  t.same(validating.webhooks[0].rules.at(-1), {
    apiGroups: ['networking.istio.io'],
    apiVersions: ['v1', 'v1beta1', 'v1alpha3'],
    resources: ['gateways', 'virtualservices', 'destinationrules'],
    operations: ['CREATE', 'UPDATE'],
    scope: '*',
  });
  t.notOk(JSON.stringify(mutating).includes('networking.istio.io'));
  const [plain] = webhookConfigurations(options) as [any, any];
  t.notOk(JSON.stringify(plain).includes('networking.istio.io'), 'off by default');
});

t.test('/readyz waits for the traffic caches, then reports ready', async (t) => {
  let reason: string | undefined = 'waiting for the Service, Gateway and ServiceEntry caches to sync';
  let stopped = false;
  const caches: TrafficCaches = {
    world: unavailableWorld('not synced'),
    notReadyReason: () => reason,
    waitForSync: async () => reason === undefined,
    stop: async () => { stopped = true; },
  };
  const certDir = await tempDir(t, 'traffic-serve-');
  const config = testConfig({ port: '0', 'probe-port': '0', host: '127.0.0.1', 'probe-host': '127.0.0.1', 'cert-dir': certDir, 'traffic-checks': 'true' });
  const server = await startServer(config, pino({ level: 'silent' }), { traffic: caches });
  const readyz = async () => {
    const res = await fetch(`http://127.0.0.1:${server.probePort}/readyz`);
    return { status: res.status, body: await res.json() };
  };
  t.same(await readyz(), { status: 503, body: { status: 'not ready', reason: 'waiting for the Service, Gateway and ServiceEntry caches to sync' } });
  reason = undefined;
  t.same(await readyz(), { status: 200, body: { status: 'ready' } });
  await server.close();
  t.ok(stopped, 'close() stops the caches');
});
