/**
 * A stand-in API server for the request adapters: HTTPS with a certificate of a fresh CA
 * (trusted through the kubeconfig's certificate-authority-data, as a real cluster is), a
 * bearer token, every request recorded and answered by the test.
 */
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Test } from 'tap';
import { KubeConfig } from '@kubernetes/client-node';
import { generateCertificates } from '../../src/tls/generate.ts';

export interface RecordedRequest {
  readonly method: string;
  /** Path and query, as sent. */
  readonly url: string;
  readonly contentType: string | undefined;
  readonly authorization: string | undefined;
  /** The body parsed as JSON; undefined when there was none. */
  readonly body: unknown;
}

export interface FakeAnswer {
  readonly status: number;
  /** Sent as JSON unless a string. */
  readonly body: unknown;
}

export const FAKE_TOKEN = 'fake-api-token';

export async function fakeApiServer(t: Test, answer: (request: RecordedRequest) => FakeAnswer): Promise<{ kubeConfig: KubeConfig; requests: RecordedRequest[]; connections: () => number }> {
  const certificates = await generateCertificates({ serviceName: 'api', namespace: 'test', validityDays: 1 });
  const requests: RecordedRequest[] = [];
  const server = https.createServer({ cert: certificates.cert, key: certificates.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const recorded: RecordedRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        contentType: req.headers['content-type'],
        authorization: req.headers.authorization,
        body: text === '' ? undefined : JSON.parse(text),
      };
      requests.push(recorded);
      const { status, body } = answer(recorded);
      res.writeHead(status, { 'content-type': 'application/json' }).end(typeof body === 'string' ? body : JSON.stringify(body));
    });
  });
  let connections = 0;
  server.on('secureConnection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'fake', server: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, caData: Buffer.from(certificates.caCert ?? '').toString('base64') }],
    users: [{ name: 'u', token: FAKE_TOKEN }],
    contexts: [{ name: 'c', cluster: 'fake', user: 'u' }],
    currentContext: 'c',
  });
  return { kubeConfig, requests, connections: () => connections };
}

/** A Kubernetes Status answer. */
export function statusAnswer(code: number, reason: string, message: string): FakeAnswer {
  return { status: code, body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code } };
}
