/** `check` with Gateways and VirtualServices: the files form one world; --cluster adds the live one. */
import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import net from 'node:net';
import { runCliCaptured } from './helpers/run-cli.ts';
import { tempDir } from './helpers/temp-dir.ts';

/** A port nothing listens on (fetch refuses some low ports outright, so not just any). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const run = runCliCaptured;

t.test("check over examples/istio/: the seed's Gateways, VirtualServices and Services pass", async (t) => {
  const r = await run(['check', '-f', 'examples/istio/']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^✔ No validation issues found in 9 checked objects\.\n$/);
});

t.test('check over examples/istio-missing-port/: the 21000 warning with the fix, exit 0', async (t) => {
  const r = await run(['check', '-f', 'examples/istio-missing-port/', '-o', 'json']);
  t.equal(r.code, 0, 'warnings only');
  const { violations } = JSON.parse(r.stdout);
  t.match(violations, [{
    kind: 'Gateway',
    namespace: 'data-center',
    name: 'data-center-grpc-gateway',
    rule: 'gateway-port-not-exposed',
    severity: 'warning',
    field: 'spec.servers[0].port.number',
    message: /kubectl -n istio-ingress patch svc istio-ingressgateway --type=json -p '\[\{"op":"add","path":"\/spec\/ports\/-","value":\{"name":"grpc-21000","port":21000\}\}\]'$/,
    file: 'examples/istio-missing-port/data-center-grpc.yaml',
  }]);
  t.equal(violations.length, 1);
});

t.test('check over all of examples/ reads one world: each example keeps its own verdict', async (t) => {
  const r = await run(['check', '-f', 'examples/', '-o', 'json', '--strict']);
  t.equal(r.code, 1, 'the unprefixed web Service is an error with --strict');
  const rules = JSON.parse(r.stdout).violations.map((v: { name: string; rule: string }) => `${v.name}:${v.rule}`);
  t.same(rules, ['data-center-grpc-gateway:gateway-port-not-exposed', 'web:port-protocol']);
});

t.test('files given separately are one world: a VirtualService finds a Service from another file', async (t) => {
  const dir = await tempDir(t, 'check-traffic-');
  await writeFile(join(dir, 'vs.yaml'), [
    'apiVersion: networking.istio.io/v1beta1',
    'kind: VirtualService',
    'metadata: {name: reviews, namespace: web}',
    'spec:',
    '  hosts: [reviews.example.com]',
    '  gateways: [istio-system/public]',
    '  http:',
    '  - route:',
    '    - destination: {host: reviews.shop.svc.cluster.local, port: {number: 9080}}',
    '',
  ].join('\n'));
  await writeFile(join(dir, 'svc.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: {name: reviews, namespace: shop}\nspec:\n  selector: {app: reviews}\n  ports: [{name: http, port: 9080}]\n');
  const alone = await run(['check', '-f', join(dir, 'vs.yaml')]);
  t.equal(alone.code, 0);
  t.match(alone.stdout, /Warning \[virtualservice-destination-not-found\] \(VirtualService web\/reviews .*vs\.yaml:1\) spec\.http\[0\]\.route\[0\]\.destination\.host: no Service shop\/reviews/);
  t.match(alone.stdout, /Warning \[virtualservice-gateway-not-found\]/);
  const both = await run(['check', '-f', join(dir, 'vs.yaml'), '-f', join(dir, 'svc.yaml')]);
  t.notMatch(both.stdout, /destination-not-found/);
  t.match(both.stdout, /0 errors, 1 warning in 2 checked objects/);
});

t.test('check: Gateway errors fail the run', async (t) => {
  const gw = 'apiVersion: networking.istio.io/v1alpha3\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: ["*"]\n';
  const r = await run(['check', '-f', '-'], gw);
  t.equal(r.code, 1);
  t.match(r.stdout, /^Error \[gateway-tls-missing\] \(Gateway gw <stdin>:1\) spec\.servers\[0\]\.port \(443, "https"\): an HTTPS server needs tls settings/);
});

t.test('check --context needs --cluster; --cluster without a reachable cluster exits 2 with a message', async (t) => {
  const usage = await run(['check', '-f', 'examples/istio/', '--context', 'x']);
  t.equal(usage.code, 2);
  t.match(usage.stderr, /--context needs --cluster/);

  const dir = await tempDir(t, 'kubeconfig-');
  const kubeconfig = join(dir, 'config');
  const port = await closedPort();
  await writeFile(kubeconfig, [
    'apiVersion: v1', 'kind: Config',
    `clusters: [{name: gone, cluster: {server: "https://127.0.0.1:${port}"}}]`,
    'users: [{name: u, user: {token: t}}]',
    'contexts: [{name: gone, context: {cluster: gone, user: u}}]',
    'current-context: gone', '',
  ].join('\n'));
  const env = { KUBECONFIG: kubeconfig };
  const unreachable = await run(['check', '-f', 'examples/istio/', '--cluster'], '', env);
  t.equal(unreachable.code, 2);
  t.match(unreachable.stderr, /^mesh-admission check: cannot list Services and Istio networking objects from https:\/\/127\.0\.0\.1:\d+: list failed: ECONNREFUSED\n$/);
  const badContext = await run(['check', '-f', 'examples/istio/', '--cluster', '--context', 'nope'], '', env);
  t.equal(badContext.code, 2);
  t.match(badContext.stderr, /no context "nope" in the kubeconfig/);
});

t.test('check: a VirtualService naming a Gateway of another namespace is told which namespace has it', async (t) => {
  const manifests = [
    'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: public\n  namespace: edge\nspec:\n  selector: {istio: ingressgateway}\n  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [shop.example.com]}]\n',
    'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: shop\n  namespace: shop\nspec:\n  hosts: [shop.example.com]\n  gateways: [public]\n  http: [{redirect: {uri: /new}}]\n',
  ].join('---\n');
  const r = await run(['check', '-f', '-'], manifests);
  t.equal(r.code, 0, 'a warning');
  t.match(r.stdout, /\[virtualservice-gateway-not-found\] .*Gateway shop\/public does not exist.*write "edge\/public": a Gateway public exists in edge\./);
});
