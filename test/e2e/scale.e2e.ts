// Paged lists against a real kube-apiserver + etcd: a cluster with more Services than one list
// page holds. `audit` reports the same findings whatever its --page-size, and `serve
// --traffic-checks true` becomes ready only once every page is in its caches (a Service of the
// last page is found by the first admission after /readyz turns 200).
// Run: PATH=$PWD/node_modules/.bin:$PATH tap --timeout 600 test/e2e/scale.e2e.ts
// Skips when the binaries are unavailable, unless E2E_REQUIRED=1.
import t from 'tap';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { binariesOrSkip, startControlPlane } from './control-plane.ts';
import { ISTIO_CRD_NAMES, istioCrdsManifest } from './istio-crds.ts';
import { registerWebhook, runCliWithStatus, startWebhook } from './webhook-server.ts';

/** Three list pages at the default page size of 500 (plus the API server's own `kubernetes` Service). */
const SERVICES = 1100;
const NAMESPACES = ['team-a', 'team-b', 'team-c'];

async function readyz(probePort: number): Promise<number> {
  try {
    return (await fetch(`http://127.0.0.1:${probePort}/readyz`)).status;
  } catch {
    return 0;
  }
}

const binDir = await binariesOrSkip(t);
if (binDir) {
  const cp = await startControlPlane({ binDir, log: (line) => t.comment(line) });
  t.teardown(() => cp.stop());
  await cp.kubectl(['apply', '-f', '-'], { input: istioCrdsManifest() });
  await cp.kubectl(['wait', '--for=condition=Established', '--timeout=60s', ...ISTIO_CRD_NAMES]);
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  for (const name of NAMESPACES) await core.createNamespace({ body: { metadata: { name } } });
  // Headless (no ClusterIP to allocate); every fourth has a port Istio cannot classify.
  const started = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < SERVICES) {
        const i = next++;
        await core.createNamespacedService({
          namespace: NAMESPACES[i % NAMESPACES.length] as string,
          body: { metadata: { name: `svc-${String(i).padStart(4, '0')}` }, spec: { clusterIP: 'None', selector: { app: `svc-${i}` }, ports: [{ name: i % 4 === 0 ? 'web' : 'http-web', port: 80 }, { name: 'grpc', port: 9090 }] } },
        });
      }
    }),
  );
  t.comment(`${SERVICES} Services created in ${Date.now() - started} ms`);
  const env = { KUBECONFIG: cp.kubeconfigPath };

  t.test('audit pages through the cluster and reports the same findings at any page size', async (t) => {
    const byDefault = await runCliWithStatus(['audit', '-o', 'json'], env);
    t.equal(byDefault.code, 1, byDefault.stderr);
    const violations = JSON.parse(byDefault.stdout).violations as { kind: string; name: string; rule: string }[];
    t.equal(violations.filter((v) => v.rule === 'port-protocol').length, SERVICES / 4, 'every fourth Service, from every page');
    t.ok(violations.some((v) => v.name === 'svc-1096'), 'a Service of the last page');
    t.equal(byDefault.stderr, '', 'no progress line when stderr is not a terminal');
    for (const pageSize of ['7', '100000']) {
      const paged = await runCliWithStatus(['audit', '-o', 'json', '--page-size', pageSize], env);
      t.equal(paged.code, 1, paged.stderr);
      t.equal(paged.stdout, byDefault.stdout, `--page-size ${pageSize}: the same report`);
    }
  });

  t.test('serve is ready only once every page of Services is cached', async (t) => {
    const webhook = await startWebhook(['--traffic-checks', 'true'], { env });
    t.teardown(() => webhook.stop());
    const deadline = Date.now() + 60_000;
    while ((await readyz(webhook.probePort)) !== 200) {
      if (Date.now() > deadline) throw new Error('not ready within 60 s');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // The server logs the sync before it turns ready; the line may reach this test a moment later.
    const syncedLine = () => webhook.logs.find((line) => line['msg'] === 'traffic caches synced');
    for (const logDeadline = Date.now() + 5_000; !syncedLine() && Date.now() < logDeadline; ) await new Promise((resolve) => setTimeout(resolve, 20));
    const synced = syncedLine();
    t.same(synced?.['objects'], { Services: SERVICES + 1, Gateways: 0, ServiceEntries: 0, DestinationRules: 0, VirtualServices: 0 }, 'every Service was listed before /readyz turned 200');
    await registerWebhook(cp, webhook, ['--traffic-checks']);
    const virtualService = (port: number) =>
      JSON.stringify({
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name: `to-last-${port}`, namespace: 'team-b' },
        spec: { hosts: ['last.example.com'], http: [{ route: [{ destination: { host: 'svc-1099', port: { number: port } } }] }] },
      });
    // svc-1099 is in team-b (1099 % 3 = 1) and on the last page of the Services list.
    const known = await cp.kubectl(['create', '--dry-run=server', '-f', '-'], { input: virtualService(9090) });
    t.notMatch(known.stderr, /Warning/, 'the last page\'s Service and its port are known');
    const wrongPort = await cp.kubectl(['create', '--dry-run=server', '-f', '-'], { input: virtualService(9091) });
    t.match(wrongPort.stderr, /virtualservice-port-not-found/, 'and its ports are the ones the API server holds');
  });
}
