/**
 * One page of a list, read straight from the API server with the kubeconfig's credentials
 * (client-node's KubeConfig.applyToHTTPSOptions: client certificates, tokens, exec and OIDC
 * plugins, proxies) and parsed once into plain objects.
 *
 * Why not the generated CoreV1Api/CustomObjectsApi list calls: each call builds a new HTTP
 * client (a fresh TLS connection pool) and converts the parsed answer into model class
 * instances, a second copy of every object. Over the hundreds of pages of a large cluster both
 * stay in memory until the garbage collector and the pools catch up: measured by
 * `npm run bench:scale`, they were most of the memory a 20,000-Service list cost. Here the
 * kubeconfig's one cached agent carries every page and the JSON is parsed once.
 */
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import type { ListPage, PageFetcher } from './paginated-list.ts';

/**
 * A list answer other than 200: its HTTP status (404 for a resource not served, 410 for an
 * expired continue token, 403 for a refusal) and the body, the API's Status object, which
 * says for a refusal who was refused what.
 */
export class ListRequestError extends Error {
  readonly statusCode: number;
  readonly body: string;

  constructor(statusCode: number, message: string, body: string) {
    super(message);
    this.name = 'ListRequestError';
    this.statusCode = statusCode;
    this.body = body;
  }
}

/** The pages of `path` (e.g. /api/v1/services) on the kubeconfig's current cluster. */
export function listPageFetcher(kubeConfig: KubeConfig, path: string): PageFetcher<KubernetesObject> {
  return async (limit, continueToken) => {
    const server = kubeConfig.getCurrentCluster()?.server;
    if (!server) throw new Error('no cluster configured in the kubeconfig');
    const url = new URL(`${server.replace(/\/+$/, '')}${path}`);
    url.searchParams.set('limit', String(limit));
    if (continueToken !== undefined) url.searchParams.set('continue', continueToken);
    // Per page, so a refreshed token is used; the agent itself is cached by the KubeConfig.
    const options: https.RequestOptions = { headers: { Accept: 'application/json' } };
    await kubeConfig.applyToHTTPSOptions(options);
    return getJson(url, options);
  };
}

function getJson(url: URL, options: https.RequestOptions): Promise<ListPage<KubernetesObject>> {
  const client = url.protocol === 'http:' ? http : https;
  return new Promise((resolve, reject) => {
    const request = client.get(url, options, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const status = response.statusCode ?? 0;
        if (status !== 200) {
          reject(new ListRequestError(status, `listing ${url.pathname}: HTTP ${status}${statusMessage(body)}`, body.slice(0, 64 * 1024)));
          return;
        }
        try {
          resolve(JSON.parse(body) as ListPage<KubernetesObject>);
        } catch (error) {
          reject(new Error(`listing ${url.pathname}: the answer is not JSON (${(error as Error).message})`));
        }
      });
    });
    // The socket's error (ECONNREFUSED, ENOTFOUND, a TLS failure) as the cause, so messages
    // name the reason once: "list failed: ECONNREFUSED".
    request.on('error', (error) => reject(new Error('list failed', { cause: error })));
  });
}

/** The message of a Kubernetes Status answer, when the body is one. */
function statusMessage(body: string): string {
  try {
    const { message } = JSON.parse(body) as { message?: unknown };
    return typeof message === 'string' && message !== '' ? `: ${message.slice(0, 200)}` : '';
  } catch {
    return '';
  }
}
