/**
 * The API calls `serve` makes for its certificates and webhook configurations
 * (webhookConfigurationApi, secretApi, serviceRoutingCheck), against an HTTPS stand-in API
 * server: the paths, methods, query and media types the API server gets, and the answers the
 * callers act on (404 "absent", 409 "someone else wrote first", 403 a failure).
 */
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import jsonpatch, { type Operation } from 'fast-json-patch';
import { CaBundleRegistrar, webhookConfigurationApi, type Logger, type WebhookConfigurationLike } from '../src/kube/ca-bundle.ts';
import { CertificateSecretStore, renewalPolicy, secretApi, type SecretLike } from '../src/kube/certificate-secret.ts';
import { serviceRoutingCheck } from '../src/kube/service-routing.ts';
import { generateCertificateAuthority } from '../src/tls/generate.ts';
import { fakeApiServer, statusAnswer, type FakeAnswer, type RecordedRequest } from './helpers/fake-api-server.ts';

const silent: Logger = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} };
const VALIDATING = '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations';
const MUTATING = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations';
const SECRETS = '/api/v1/namespaces/mesh-system/secrets';

t.test('webhook configurations: read, a JSON patch with the field manager, a conflict retried', async (t) => {
  const objects = new Map<string, WebhookConfigurationLike>([
    [`${VALIDATING}/v`, { metadata: { name: 'v', resourceVersion: '1' }, webhooks: [{ name: 'a.mesh-admission.io', clientConfig: {} }] }],
  ]);
  let conflicts = 1;
  const { kubeConfig, requests } = await fakeApiServer(t, (request): FakeAnswer => {
    const key = request.url.split('?')[0] ?? '';
    const object = objects.get(key);
    if (object === undefined) return statusAnswer(404, 'NotFound', `"${key}" not found`);
    if (request.method === 'GET') return { status: 200, body: object };
    if (conflicts-- > 0) return statusAnswer(409, 'Conflict', 'the object has been modified; please apply your changes to the latest version and try again');
    const patched = jsonpatch.applyPatch(structuredClone(object), request.body as Operation[]).newDocument;
    objects.set(key, { ...patched, metadata: { ...patched.metadata, resourceVersion: '2' } });
    return { status: 200, body: objects.get(key) };
  });
  const api = webhookConfigurationApi(kubeConfig);
  t.equal(await api.read('mutating', 'm'), undefined, '404: the configuration does not exist');

  const ca = (await generateCertificateAuthority({ commonName: 'ca', validityDays: 10 })).cert;
  const registrar = new CaBundleRegistrar(api, { validating: 'v', mutating: 'm' }, silent);
  t.same((await registrar.publish(ca)).map((outcome) => outcome.result), ['patched', 'missing'], 'the 409 was read again and patched again');
  t.equal(Buffer.from(objects.get(`${VALIDATING}/v`)?.webhooks?.[0]?.clientConfig?.caBundle ?? '', 'base64').toString(), ca);
  t.notOk(await registrar.isPublished(ca), 'not published while the mutating configuration is missing');

  const patches = requests.filter((request) => request.method === 'PATCH');
  t.same(patches.map((request) => [request.url, request.contentType]), [
    [`${VALIDATING}/v?fieldManager=mesh-admission`, 'application/json-patch+json'],
    [`${VALIDATING}/v?fieldManager=mesh-admission`, 'application/json-patch+json'],
  ]);
  t.match(patches[0]?.body, [{ op: 'test', path: '/metadata/resourceVersion', value: '1' }], 'the patch tests the resourceVersion it read');
  t.ok(requests.some((request) => request.method === 'GET' && request.url === `${MUTATING}/m`), 'the mutating configuration at its own path');
});

t.test('webhook configurations: a refusal is an error, not "absent"', async (t) => {
  const { kubeConfig } = await fakeApiServer(t, () => statusAnswer(403, 'Forbidden', 'forbidden'));
  const error = await webhookConfigurationApi(kubeConfig).read('validating', 'v').catch((e: unknown) => e);
  t.match(error, { code: 403, message: `reading ${VALIDATING}/v: HTTP 403: forbidden` });
});

t.test('the certificate Secret: created with the field manager; a replica that loses the create race uses the winner', async (t) => {
  const stored = new Map<string, SecretLike>();
  /** Reads answered 404 although the Secret exists: a replica that read before another created it. */
  let staleReads = 0;
  const { kubeConfig, requests } = await fakeApiServer(t, (request: RecordedRequest): FakeAnswer => {
    const [pathname = ''] = request.url.split('?');
    if (request.method === 'GET') {
      const secret = staleReads-- > 0 ? undefined : stored.get(pathname);
      return secret ? { status: 200, body: secret } : statusAnswer(404, 'NotFound', 'secrets "webhook-tls" not found');
    }
    const body = request.body as SecretLike;
    const key = `${SECRETS}/${body.metadata?.name ?? ''}`;
    if (request.method === 'POST') {
      if (stored.has(key)) return statusAnswer(409, 'AlreadyExists', `secrets "${body.metadata?.name}" already exists`);
      stored.set(key, { ...body, metadata: { ...body.metadata, uid: 'uid-1', resourceVersion: '1' } });
      return { status: 201, body: stored.get(key) };
    }
    return statusAnswer(405, 'MethodNotAllowed', 'not expected here');
  });
  const policy = renewalPolicy({ serviceName: 'mesh-admission', namespace: 'mesh-system', validityDays: 30, renewBeforeDays: 7 });
  const store = async (): Promise<CertificateSecretStore> => {
    const certDir = await mkdtemp(path.join(os.tmpdir(), 'serve-api-calls-'));
    t.teardown(() => rm(certDir, { recursive: true, force: true }));
    return new CertificateSecretStore({ api: secretApi(kubeConfig, 'mesh-system', 'webhook-tls'), name: 'webhook-tls', namespace: 'mesh-system', certDir, policy, logger: silent });
  };

  const first = await (await store()).sync();
  t.same(first.generation, { uid: 'uid-1', counter: 1 }, 'the answer to the create is the stored Secret');
  // The second replica's first read happens before the first replica's create is visible.
  const second = await store();
  staleReads = 1;
  const original = requests.length;
  const result = await second.sync();
  t.equal(result.trustBundle, first.trustBundle, 'the loser of the race trusts the winner\'s CA');
  t.same(
    requests.slice(original).map((request) => `${request.method} ${request.url}`),
    [`GET ${SECRETS}/webhook-tls`, `POST ${SECRETS}?fieldManager=mesh-admission`, `GET ${SECRETS}/webhook-tls`],
    'read, create refused with 409 AlreadyExists, read again',
  );
  t.equal(requests.find((request) => request.method === 'POST')?.contentType, 'application/json');
});

t.test('the certificate Secret: replaced at its path with the field manager; a 409 surfaces as code 409', async (t) => {
  const { kubeConfig, requests } = await fakeApiServer(t, () => statusAnswer(409, 'Conflict', 'the object has been modified'));
  const api = secretApi(kubeConfig, 'mesh-system', 'webhook-tls');
  const error = await api.replace({ metadata: { name: 'webhook-tls', resourceVersion: '3' }, data: {} }).catch((e: unknown) => e);
  t.match(error, { code: 409 });
  t.same(requests.map((request) => `${request.method} ${request.url}`), [`PUT ${SECRETS}/webhook-tls?fieldManager=mesh-admission`]);
  t.same(requests[0]?.body, { metadata: { name: 'webhook-tls', resourceVersion: '3' }, data: {} }, 'the object as given');
});

t.test('service routing: the EndpointSlices of the Service by its label; true once a pod IP is a ready endpoint', async (t) => {
  let ready = false;
  const { kubeConfig, requests } = await fakeApiServer(t, () => ({
    status: 200,
    body: { kind: 'EndpointSliceList', items: [{ addressType: 'IPv4', endpoints: [{ addresses: ['10.0.0.7'], conditions: { ready } }] }] },
  }));
  const routed = serviceRoutingCheck(kubeConfig, 'mesh-system', 'mesh-admission', ['10.0.0.7']);
  t.equal(await routed(), false);
  ready = true;
  t.equal(await routed(), true);
  t.equal(await routed(), true, 'true stays true without asking again');
  t.same(requests.map((request) => `${request.method} ${request.url}`), [
    'GET /apis/discovery.k8s.io/v1/namespaces/mesh-system/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dmesh-admission',
    'GET /apis/discovery.k8s.io/v1/namespaces/mesh-system/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dmesh-admission',
  ]);
});
