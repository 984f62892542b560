/**
 * One request to the API server, sent straight over HTTP(S) with the kubeconfig's credentials
 * (client-node's KubeConfig.applyToHTTPSOptions: client certificates, tokens, exec and OIDC
 * plugins, proxies, and the KubeConfig's one cached agent) and answered as plain parsed JSON.
 *
 * Why not the generated API clients (CoreV1Api, AdmissionregistrationV1Api, ...): importing
 * any of them loads every generated API and its 2,700 models, about 30 MiB of resident memory
 * that `serve` and the cluster commands would carry for a handful of calls; each list call
 * also builds a new HTTP client (a fresh TLS connection pool) and converts the parsed answer
 * into model class instances, a second copy of every object (measured by `npm run
 * bench:scale`: most of the memory a 20,000-Service list cost). This module sends what those
 * clients send for the calls the program makes: the same paths, methods, query parameters and
 * bodies, with the body's media type named by the caller (JSON, or JSON Patch for a patch).
 */
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

/** What a request does: its HTTP method, and how messages name it. */
export type ApiOperation = 'list' | 'read' | 'create' | 'replace' | 'patch' | 'delete';

const METHODS: Readonly<Record<ApiOperation, string>> = { list: 'GET', read: 'GET', create: 'POST', replace: 'PUT', patch: 'PATCH', delete: 'DELETE' };
const GERUNDS: Readonly<Record<ApiOperation, string>> = {
  list: 'listing',
  read: 'reading',
  create: 'creating',
  replace: 'replacing',
  patch: 'patching',
  delete: 'deleting',
};

export const JSON_MEDIA_TYPE = 'application/json';
/** RFC 6902 JSON Patch: a list of operations (`test`, `add`, ...), applied in order or not at all. */
export const JSON_PATCH_MEDIA_TYPE = 'application/json-patch+json';

/** The part of an error body kept: a Status is small; a proxy's HTML page need not be kept whole. */
export const KEPT_BODY_CHARACTERS = 64 * 1024;

export interface ApiRequest {
  readonly operation: ApiOperation;
  /** The path on the API server, e.g. /api/v1/namespaces/default/secrets. */
  readonly path: string;
  /** Query parameters in order; undefined ones are left out. */
  readonly query?: Readonly<Record<string, string | undefined>> | undefined;
  /** Sent as JSON when given. */
  readonly body?: unknown;
  /** The body's media type; JSON unless given. */
  readonly contentType?: string | undefined;
}

/**
 * An answer outside 2xx: its HTTP status (404 not found or not served, 409 a conflict, 410 an
 * expired continue token, 403 a refusal) and the body, the API's Status object as text, which
 * says for a refusal who was refused what. The status is both `code` (what the callers read
 * from the generated clients' errors) and `statusCode` (what they read from watch errors).
 */
export class ApiRequestError extends Error {
  readonly code: number;
  readonly statusCode: number;
  readonly body: string;

  constructor(statusCode: number, message: string, body: string) {
    super(message);
    this.name = 'ApiRequestError';
    this.code = statusCode;
    this.statusCode = statusCode;
    this.body = body;
  }
}

/**
 * Sends `request` to the kubeconfig's current cluster; resolves with the parsed answer,
 * unchecked: the caller names what it expects. Every call the program makes is answered with
 * JSON (the object, a list, or a Status), so an empty or other answer is an error.
 */
export async function apiRequest<T>(kubeConfig: KubeConfig, request: ApiRequest): Promise<T> {
  const body = request.body === undefined ? undefined : Buffer.from(JSON.stringify(request.body), 'utf8');
  const headers: Record<string, string> = { Accept: JSON_MEDIA_TYPE };
  if (body !== undefined) {
    headers['Content-Type'] = request.contentType ?? JSON_MEDIA_TYPE;
    headers['Content-Length'] = String(body.length);
  }
  const { url, options } = await clusterRequest(kubeConfig, METHODS[request.operation], request.path, request.query, headers);
  return send<T>(url, options, body, request.operation);
}

/**
 * The URL and options of one request to the kubeconfig's current cluster: the path and query
 * on its server, the credentials and TLS settings applied, connections kept open. Built per
 * request, so a refreshed token is used.
 */
export async function clusterRequest(
  kubeConfig: KubeConfig,
  method: string,
  path: string,
  query: Readonly<Record<string, string | undefined>> = {},
  headers: Record<string, string> = {},
): Promise<{ url: URL; options: https.RequestOptions }> {
  const server = kubeConfig.getCurrentCluster()?.server;
  if (!server) throw new Error('no cluster configured in the kubeconfig');
  const url = new URL(`${server.replace(/\/+$/, '')}${path}`);
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined) url.searchParams.set(name, value);
  }
  const options: https.RequestOptions = { method, headers };
  await kubeConfig.applyToHTTPSOptions(options);
  options.agent = keepingConnections(options.agent);
  return { url, options };
}

/** node:http for an http:// server (a local proxy), node:https otherwise. */
export function clientFor(url: URL): typeof https | typeof http {
  return url.protocol === 'http:' ? http : https;
}

/**
 * The KubeConfig's agent, or a twin of it that keeps connections open between requests.
 * client-node builds its agent without keepAlive: every page of a list then opened a new TLS
 * connection, and Node built a new TLS context for each (the kubeconfig's CA parsed again),
 * CPU and memory an `audit` of a large cluster spent hundreds of times over. The twin has the
 * same TLS options and is made once per agent, so changed credentials (a new agent) get a new
 * twin. Idle connections close after IDLE_CONNECTION_MS, well before the API server drops
 * them, so a request is never sent on a connection the server is closing; Node unrefs idle
 * sockets, so they never keep a command from exiting. Agents of other kinds (a proxy's) are
 * used as they are.
 */
function keepingConnections(agent: https.RequestOptions['agent']): https.RequestOptions['agent'] {
  if (!(agent instanceof https.Agent) || agent.constructor !== https.Agent) return agent;
  let twin = keepAliveTwins.get(agent);
  if (!twin) keepAliveTwins.set(agent, (twin = new https.Agent({ ...agent.options, keepAlive: true, timeout: IDLE_CONNECTION_MS })));
  return twin;
}

const keepAliveTwins = new WeakMap<https.Agent, https.Agent>();
const IDLE_CONNECTION_MS = 4000;

function send<T>(url: URL, options: https.RequestOptions, body: Buffer | undefined, operation: ApiOperation): Promise<T> {
  const client = clientFor(url);
  const what = `${GERUNDS[operation]} ${url.pathname}`;
  return new Promise((resolve, reject) => {
    const request = client.request(url, options, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const status = response.statusCode ?? 0;
        if (status < 200 || status > 299) {
          reject(answerError(status, what, text));
          return;
        }
        try {
          resolve(JSON.parse(text) as T);
        } catch (error) {
          reject(new Error(`${what}: the answer is not JSON (${(error as Error).message})`));
        }
      });
    });
    // The socket's error (ECONNREFUSED, ENOTFOUND, a TLS failure) as the cause, so messages
    // name the reason once: "list failed: ECONNREFUSED".
    request.on('error', (error) => reject(new Error(`${operation} failed`, { cause: error })));
    request.end(body);
  });
}

/** The error for an answer outside 2xx: its Status message in the text, its body kept, cut, for callers. */
export function answerError(status: number, what: string, body: string): ApiRequestError {
  return new ApiRequestError(status, `${what}: HTTP ${status}${statusMessage(body)}`, body.slice(0, KEPT_BODY_CHARACTERS));
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
