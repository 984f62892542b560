// Gateway and VirtualService checks against a real kube-apiserver + etcd: minimal Istio CRDs,
// the real `mesh-admission serve --traffic-checks true` (informer caches through the
// kubeconfig), registered with `webhook-config --traffic-checks`, driven with real kubectl.
// Ends with an API outage: the control plane is stopped and the webhook must still answer
// at once, with the "could not check" warning.
// Run: PATH=$PWD/node_modules/.bin:$PATH tap --timeout 600 test/e2e/traffic.e2e.ts
// Skips when the binaries are unavailable, unless E2E_REQUIRED=1.
import t from 'tap';
import https from 'node:https';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { binariesOrSkip, startControlPlane, type ControlPlane } from './control-plane.ts';
import { ISTIO_CRD_NAMES, istioCrdsManifest } from './istio-crds.ts';
import { registerWebhook, runCliWithStatus, startWebhook, type WebhookServer } from './webhook-server.ts';

const EXAMPLES = new URL('../../examples/istio/', import.meta.url);
const example = (name: string) => readFile(new URL(name, EXAMPLES), 'utf8');

/** The seed's ingress gateway Service: istio-system/istio-ingressgateway with 80 and 443 only. */
const INGRESS_80_443 = [
  'apiVersion: v1', 'kind: Service', 'metadata:', '  name: istio-ingressgateway', '  namespace: istio-system',
  '  labels: {app: istio-ingressgateway, istio: ingressgateway}', 'spec:',
  '  selector: {app: istio-ingressgateway, istio: ingressgateway}', '  ports:',
  '  - {name: status-port, port: 15021, targetPort: 15021}',
  '  - {name: http2, port: 80, targetPort: 8080}',
  '  - {name: https, port: 443, targetPort: 8443}', '',
].join('\n');

function documents(yaml: string): string[] {
  return yaml.split(/^---$/m).map((d) => d.trim()).filter((d) => /^kind:/m.test(d));
}

function named(yaml: string, name: string): string {
  const doc = documents(yaml).find((d) => new RegExp(`^  name: ${name}$`, 'm').test(d));
  if (!doc) throw new Error(`no document named ${name}`);
  return `${doc}\n`;
}

/** Splits a printed command line the way a shell would for single-quoted arguments. */
function shellWords(line: string): string[] {
  return (line.match(/'[^']*'|\S+/g) ?? []).map((w) => (w.startsWith("'") ? w.slice(1, -1) : w));
}

function post(server: WebhookServer, ca: string, body: unknown): Promise<{ ms: number; json: any }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = https.request(
      { host: '127.0.0.1', port: server.port, path: '/validate', method: 'POST', ca, servername: 'localhost', agent: false, timeout: 10_000, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ ms: performance.now() - started, json: JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

async function readyz(server: WebhookServer): Promise<number> {
  try {
    return (await fetch(`http://127.0.0.1:${server.probePort}/readyz`)).status;
  } catch {
    return 0;
  }
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** A dry-run CREATE (always sent to the webhook, stores nothing); resolves with kubectl's stderr. */
async function dryCreate(cp: ControlPlane, yaml: string): Promise<string> {
  return (await cp.kubectl(['create', '--dry-run=server', '-f', '-'], { input: yaml })).stderr;
}

const binDir = await binariesOrSkip(t);
if (binDir) {
  const cp = await startControlPlane({ binDir, log: (line) => t.comment(line) });
  t.teardown(() => cp.stop());
  t.comment(`kube-apiserver ${cp.version}`);

  await cp.kubectl(['apply', '-f', '-'], { input: istioCrdsManifest() });
  await cp.kubectl(['wait', '--for=condition=Established', '--timeout=60s', ...ISTIO_CRD_NAMES]);
  await cp.kubectl(['create', 'namespace', 'istio-system']);
  await cp.kubectl(['apply', '-f', '-'], { input: INGRESS_80_443 });
  await cp.kubectl(['apply', '-f', '-'], { input: await example('services.yaml') });

  const webhook = await startWebhook(['--traffic-checks', 'true'], { env: { KUBECONFIG: cp.kubeconfigPath } });
  t.teardown(() => webhook.stop());
  const ca = await readFile(path.join(webhook.certDir, 'ca.crt'), 'utf8');
  const syncMs = await until('/readyz after the caches synced', async () => ((await readyz(webhook)) === 200 ? Date.now() : undefined));
  t.comment(`ready; caches synced: ${JSON.stringify(webhook.logs.find((l) => l['msg'] === 'traffic caches synced'))} at ${syncMs}`);
  await registerWebhook(cp, webhook, ['--traffic-checks']);

  const gateways = await example('gateways.yaml');
  const virtualServices = await example('virtualservices.yaml');

  t.test("the seed's HTTP and HTTPS Gateways apply without warnings", async (t) => {
    const r = await cp.kubectl(['apply', '-f', '-'], { input: named(gateways, 'test-kratos-gateway') + '---\n' + named(gateways, 'es-gateway') });
    t.match(r.stdout, /gateway\.networking\.istio\.io\/test-kratos-gateway created/);
    t.match(r.stdout, /gateway\.networking\.istio\.io\/es-gateway created/);
    t.notMatch(r.stderr, /Warning/);
  });

  t.test("the seed's 21000 Gateway warns with a kubectl fix that works as printed", async (t) => {
    const r = await cp.kubectl(['apply', '-f', '-'], { input: named(gateways, 'data-center-grpc-gateway') });
    t.comment(`kubectl stderr:\n${r.stderr}`);
    t.match(r.stdout, /gateway\.networking\.istio\.io\/data-center-grpc-gateway created/, 'a warning does not block');
    const line = /^Warning: Gateway \S+: \[gateway-port-not-exposed\] [^:]*?: (kubectl .*)$/m.exec(r.stderr);
    t.ok(line, 'the warning reaches kubectl whole');
    const [command, ...args] = shellWords(line?.[1] ?? '');
    t.equal(command, 'kubectl');
    t.same(args.slice(0, 4), ['-n', 'istio-system', 'patch', 'svc']);
    const patched = await cp.kubectl(args);
    t.match(patched.stdout, /service\/istio-ingressgateway patched/);
    const ports = JSON.parse((await cp.kubectl(['-n', 'istio-system', 'get', 'svc', 'istio-ingressgateway', '-o', 'json'])).stdout).spec.ports;
    t.match(ports.at(-1), { name: 'grpc-21000', port: 21000, targetPort: 21000, protocol: 'TCP' });
    // The watch brings the new port into the cache: the same Gateway, applied again, now passes
    // (and is not taken to conflict with its own stored copy).
    const same = named(gateways, 'data-center-grpc-gateway');
    const quiet = await until('the patched Service in the cache', async () => {
      const stderr = (await cp.kubectl(['apply', '--dry-run=server', '-f', '-'], { input: same })).stderr;
      return /gateway-port-not-exposed/.test(stderr) ? undefined : stderr;
    });
    t.notMatch(quiet, /Warning/);
  });

  t.test('a second Gateway on the same pods, port and host warns of the conflict with the stored one', async (t) => {
    const copy = named(gateways, 'data-center-grpc-gateway').replace('name: data-center-grpc-gateway', 'name: probe-21000');
    const stderr = await dryCreate(cp, copy);
    t.match(stderr, /^Warning: Gateway \S+\/probe-21000: \[gateway-conflict\] spec\.servers\[0\]\.hosts: Gateway \S+\/data-center-grpc-gateway also serves port 21000 for host "\*"/m);
    t.notMatch(stderr, /gateway-port-not-exposed/);
  });

  t.test("the seed's VirtualServices apply without warnings once their Services and Gateways exist", async (t) => {
    const r = await cp.kubectl(['apply', '-f', '-'], { input: virtualServices });
    t.equal(r.stdout.trim().split('\n').length, 3, r.stdout);
    t.notMatch(r.stderr, /Warning/);
  });

  t.test('VirtualService warnings follow the cluster: missing Service, port, gateway; cross-namespace hosts', async (t) => {
    await cp.kubectl(['create', 'namespace', 'shop']);
    const vs = [
      'apiVersion: networking.istio.io/v1', 'kind: VirtualService', 'metadata: {name: reviews, namespace: web}', 'spec:',
      '  hosts: [reviews.example.com]', '  gateways: [istio-system/public]', '  http:',
      '  - route:', '    - destination: {host: reviews.shop.svc.cluster.local, port: {number: 9080}}', '',
    ].join('\n');
    await cp.kubectl(['create', 'namespace', 'web']);
    const before = await dryCreate(cp, vs);
    t.match(before, /Warning: VirtualService web\/reviews: \[virtualservice-destination-not-found\] spec\.http\[0\]\.route\[0\]\.destination\.host: no Service shop\/reviews/);
    t.match(before, /Warning: VirtualService web\/reviews: \[virtualservice-gateway-not-found\] spec\.gateways\[0\]: Gateway istio-system\/public does not exist/);

    await cp.kubectl(['apply', '-f', '-'], { input: 'apiVersion: v1\nkind: Service\nmetadata: {name: reviews, namespace: shop}\nspec:\n  selector: {app: reviews}\n  ports: [{name: http, port: 9080}, {name: grpc, port: 9090}]\n' });
    await cp.kubectl(['apply', '-f', '-'], { input: 'apiVersion: networking.istio.io/v1beta1\nkind: Gateway\nmetadata: {name: public, namespace: istio-system}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ["*"]\n' });
    const after = await until('Service and Gateway in the caches', async () => {
      const stderr = await dryCreate(cp, vs);
      return /Warning/.test(stderr) ? undefined : stderr;
    });
    t.equal(after, '');
    const wrongPort = await dryCreate(cp, vs.replace('number: 9080', 'number: 9081'));
    t.match(wrongPort, /Warning: VirtualService web\/reviews: \[virtualservice-port-not-found\] .*Service shop\/reviews has no port 9081/);
    const noPort = await dryCreate(cp, vs.replace(', port: {number: 9080}', ''));
    t.match(noPort, /Warning: VirtualService web\/reviews: \[virtualservice-port-required\] .*several ports/);
  });

  t.test('an external host is fine once a ServiceEntry declares it', async (t) => {
    const vs = 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ext, namespace: web}\nspec:\n  hosts: [api.example.com]\n  http:\n  - route:\n    - destination: {host: api.example.com, port: {number: 443}}\n';
    t.match(await dryCreate(cp, vs), /virtualservice-destination-not-found/);
    await cp.kubectl(['apply', '-f', '-'], { input: 'apiVersion: networking.istio.io/v1alpha3\nkind: ServiceEntry\nmetadata: {name: example, namespace: shop}\nspec:\n  hosts: ["*.example.com"]\n  ports: [{number: 443, name: tls, protocol: TLS}]\n  resolution: DNS\n' });
    await until('the ServiceEntry in the cache', async () => (/Warning/.test(await dryCreate(cp, vs)) ? undefined : true));
    t.pass('no warning');
  });

  t.test("Istio's host resolution and exportTo, through the caches", async (t) => {
    const vs = (host: string) =>
      `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: resolve, namespace: web}\nspec:\n  hosts: [x.example.com]\n  http:\n  - route:\n    - destination: {host: ${host}, port: {number: 9080}}\n`;
    t.equal(await dryCreate(cp, vs('reviews.shop.svc.cluster.local')), '', 'the full name routes');
    t.match(await dryCreate(cp, vs('reviews.shop')), /Warning: VirtualService web\/resolve: \[virtualservice-destination-not-found\] .*Istio takes .*literally.*write "reviews\.shop\.svc\.cluster\.local"/);
    t.match(await dryCreate(cp, vs('reviews.shop.svc')), /virtualservice-destination-not-found/);

    await cp.kubectl(['-n', 'shop', 'annotate', 'svc', 'reviews', 'networking.istio.io/exportTo=.']);
    const hidden = await until('the exportTo annotation in the cache', async () => {
      const stderr = await dryCreate(cp, vs('reviews.shop.svc.cluster.local'));
      return /virtualservice-destination-not-found/.test(stderr) ? stderr : undefined;
    });
    t.match(hidden, /no Service shop\/reviews/, 'exported to its own namespace only: web does not see it');
    await cp.kubectl(['-n', 'shop', 'annotate', '--overwrite', 'svc', 'reviews', 'networking.istio.io/exportTo=shop,web']);
    await until('web listed in exportTo', async () => ((await dryCreate(cp, vs('reviews.shop.svc.cluster.local'))) === '' ? true : undefined));
    t.pass('listed namespaces see it');
    await cp.kubectl(['-n', 'shop', 'annotate', 'svc', 'reviews', 'networking.istio.io/exportTo-']);
  });

  t.test('DestinationRules, route subsets and mesh hosts, through the caches', async (t) => {
    const dr = (host: string, subsets: string[]) =>
      `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews, namespace: shop}\nspec:\n  host: ${host}\n  subsets: [${subsets.map((name) => `{name: ${name}, labels: {version: ${name}}}`).join(', ')}]\n`;
    t.equal(await dryCreate(cp, dr('reviews', ['v1'])), '', 'the host is Service shop/reviews');
    t.match(await dryCreate(cp, dr('reviewz', ['v1'])), /Warning: DestinationRule shop\/reviews: \[destinationrule-host-not-found\] spec\.host: "reviewz"/);

    const vs = (name: string, subset?: string) =>
      `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ${name}, namespace: web}\nspec:\n  hosts: [reviews.shop.svc.cluster.local]\n  http:\n  - route:\n` +
      `    - destination: {host: reviews.shop.svc.cluster.local, port: {number: 9080}${subset ? `, subset: ${subset}` : ''}}\n`;
    t.match(await dryCreate(cp, vs('canary', 'v2')), /\[virtualservice-subset-not-found\] .*no DestinationRule for "reviews\.shop\.svc\.cluster\.local" defines subset/);
    await cp.kubectl(['apply', '-f', '-'], { input: dr('reviews', ['v1']) });
    const other = await until('the DestinationRule in the cache', async () => {
      const stderr = await dryCreate(cp, vs('canary', 'v2'));
      return /DestinationRule shop\/reviews/.test(stderr) ? stderr : undefined;
    });
    t.match(other, /\[virtualservice-subset-not-found\] .*DestinationRule shop\/reviews (for .* defines "v1", not|has no subset) "v2"/);
    await cp.kubectl(['apply', '-f', '-'], { input: dr('reviews', ['v1', 'v2']) });
    await until('the new subset in the cache', async () => ((await dryCreate(cp, vs('canary', 'v2'))) === '' ? true : undefined));
    t.pass('the subset exists once the DestinationRule defines it');

    const applied = await cp.kubectl(['apply', '-f', '-'], { input: vs('primary', 'v1') });
    t.equal(applied.stderr, '', 'the first VirtualService for the host');
    const conflict = await until('the VirtualService in the cache', async () => {
      const stderr = await dryCreate(cp, vs('canary', 'v2'));
      return /virtualservice-mesh-host-conflict/.test(stderr) ? stderr : undefined;
    });
    t.match(conflict, /Warning: VirtualService web\/canary: \[virtualservice-mesh-host-conflict\] spec\.hosts\[0\]: "reviews\.shop\.svc\.cluster\.local" is also defined for the mesh by VirtualService web\/primary/);
    const updated = await cp.kubectl(['apply', '-f', '-'], { input: vs('primary', 'v2') });
    t.equal(updated.stderr, '', 'an UPDATE does not conflict with its own stored copy');
    await cp.kubectl(['-n', 'web', 'delete', 'virtualservice', 'primary']);
    await cp.kubectl(['-n', 'shop', 'delete', 'destinationrule', 'reviews']);
  });

  t.test('a Service selecting part of the Gateway selector serves it', async (t) => {
    // The ingress Service selects {app, istio}; this Gateway asks for one label more.
    const gw = 'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: canary, namespace: istio-system}\nspec:\n  selector: {app: istio-ingressgateway, istio: ingressgateway, version: canary}\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ["*"]\n  - port: {number: 9443, name: tls-9443, protocol: TLS}\n    hosts: ["*"]\n    tls: {mode: PASSTHROUGH}\n';
    const stderr = await dryCreate(cp, gw);
    t.notMatch(stderr, /no Service selects/);
    t.match(stderr, /Warning: Gateway istio-system\/canary: \[gateway-port-not-exposed\] .*port 9443.*patch svc istio-ingressgateway /, 'only the missing port, and the fix patches the ingress Service');
    t.notMatch(stderr, /lacks port 80\b/);
  });

  t.test('structural Gateway errors are denied by the API server', async (t) => {
    const bad = 'apiVersion: networking.istio.io/v1alpha3\nkind: Gateway\nmetadata: {name: bad}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: ["*"]\n';
    const r = await cp.kubectl(['apply', '-f', '-'], { input: bad, allowFailure: true });
    t.not(r.code, 0);
    t.match(r.stderr, /admission webhook "validate\.mesh-admission\.io" denied the request: Gateway default\/bad is not ready for the Istio mesh: \[gateway-tls-missing\]/);
  });

  t.test('check --cluster sees the live Gateways and Services', async (t) => {
    const env = { KUBECONFIG: cp.kubeconfigPath };
    const offline = await runCliWithStatus(['check', '-f', new URL('virtualservices.yaml', EXAMPLES).pathname], env);
    t.match(offline.stdout, /virtualservice-gateway-not-found/, 'alone, the file lacks the Gateways');
    const started = Date.now();
    const live = await runCliWithStatus(['check', '--cluster', '-f', new URL('virtualservices.yaml', EXAMPLES).pathname], env);
    t.comment(`check --cluster took ${Date.now() - started} ms`);
    t.equal(live.code, 0, live.stderr);
    t.match(live.stdout, /No validation issues found in 3 checked objects/);
  });

  t.test('API outage: the webhook still answers at once, with the "could not check" warning', async (t) => {
    const review = (uid: string) => ({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid,
        kind: { group: 'networking.istio.io', version: 'v1', kind: 'VirtualService' },
        resource: { group: 'networking.istio.io', version: 'v1', resource: 'virtualservices' },
        operation: 'CREATE',
        namespace: 'default',
        object: { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'late', namespace: 'default' }, spec: { hosts: ['x'], http: [{ route: [{ destination: { host: 'test-kratos-service', port: { number: 80 } } }] }] } },
      },
    });
    const healthy = await post(webhook, ca, review('before'));
    t.same(healthy.json.response, { uid: 'before', allowed: true }, 'clean while the API is up');

    // Keep asking while the control plane goes down and after: never a slow answer.
    const stopped = Date.now();
    const stopping = cp.stop().then(() => t.comment(`control plane stopped in ${Date.now() - stopped} ms`));
    const answers: { at: number; ms: number; warned: boolean }[] = [];
    let n = 0;
    const degraded = await until('the unavailable warning', async () => {
      const answer = await post(webhook, ca, review(`outage-${++n}`));
      const warned = Boolean(answer.json.response.warnings);
      answers.push({ at: Date.now() - stopped, ms: answer.ms, warned });
      return warned ? answer : undefined;
    }, 20_000);
    await stopping;
    const timings = answers.map((a) => a.ms);
    t.comment(`warning from ${answers.find((a) => a.warned)?.at} ms after the stop began (${n} requests); answer times ms: ${timings.map(Math.round).join(', ')}`);
    t.equal(degraded.json.response.allowed, true);
    t.match(degraded.json.response.warnings, [/^VirtualService \S+: \[traffic-checks-unavailable\] could not check its destinations, gateways and hosts because the Kubernetes API could not be read/]);
    t.ok(Math.max(...timings) < 1000, `every answer under 1 s (max ${Math.round(Math.max(...timings))} ms)`);
    t.equal(await readyz(webhook), 200, 'still ready: the API server, not the webhook, is down');
  });
}
