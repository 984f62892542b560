/**
 * A watch of one resource kind, sent like every other request of the program (api-request.ts:
 * node:https, the kubeconfig's credentials, connections kept open), in the shape
 * client-node's ListWatch drives: `watch(path, query, callback, done)` resolves to the
 * AbortController that ends it; each line of the answer is an event handed to `callback` as
 * (type, object, event); `done` is called once, with null when the server ends the watch and
 * with the error otherwise — a TimeoutError after `idleTimeoutMs` without a byte (ListWatch
 * then resumes at once), an error carrying `statusCode` for an answer other than 200 (410:
 * ListWatch lists again).
 *
 * Why not client-node's Watch: it sends the request through undici's fetch, and loading undici
 * alone costs 6.5 MiB of heap and 28 MiB of resident memory, a quarter of what the webhook's
 * caches of a 20,000-Service cluster take in all (`npm run bench:scale`).
 */
import type { IncomingMessage } from 'node:http';
import type { KubeConfig } from '@kubernetes/client-node';
import { answerError, clientFor, clusterRequest, JSON_MEDIA_TYPE, KEPT_BODY_CHARACTERS } from './api-request.ts';
import { isRecord } from '../policies/types.ts';

export type WatchCallback = (type: string, object: unknown, event: unknown) => void;
export type WatchDone = (error: unknown) => void;

/** Longest silence on a watch before it is given up and resumed; client-node's Watch uses the same. */
export const WATCH_IDLE_TIMEOUT_MS = 30_000;

export class ClusterWatch {
  readonly config: KubeConfig;
  private readonly idleTimeoutMs: number;

  constructor(kubeConfig: KubeConfig, idleTimeoutMs = WATCH_IDLE_TIMEOUT_MS) {
    this.config = kubeConfig;
    this.idleTimeoutMs = idleTimeoutMs;
  }

  async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: WatchCallback,
    done: WatchDone,
  ): Promise<AbortController> {
    const controller = new AbortController();
    let finished = false;
    // Marked finished before `done` runs: ListWatch aborts the controller from inside it.
    const finish = (error: unknown) => {
      if (finished) return;
      finished = true;
      controller.abort();
      done(error);
    };
    const query: Record<string, string | undefined> = { watch: 'true' };
    for (const [name, value] of Object.entries(queryParams)) query[name] = value === undefined ? undefined : String(value);
    // Resolved once the answer's headers are in (or the watch failed): ListWatch counts a cache
    // synced when this resolves, and events before it would reach a watch not yet registered.
    let connected: () => void = () => undefined;
    const answered = new Promise<void>((resolve) => (connected = resolve));
    try {
      const { url, options } = await clusterRequest(this.config, 'GET', path, query, { Accept: JSON_MEDIA_TYPE });
      const request = clientFor(url).request(url, { ...options, signal: controller.signal }, (response) => {
        connected();
        if (response.statusCode !== 200) {
          const status = response.statusCode ?? 0;
          readErrorAnswer(response, (body) => finish(answerError(status, `watching ${url.pathname}`, body)));
          return;
        }
        readEvents(response, callback, () => finish(null), finish);
      });
      // The socket's inactivity, reset by every byte: the server sends bookmarks on quiet kinds.
      // `done` gets the TimeoutError before the connection is torn down, not the reset that follows.
      request.setTimeout(this.idleTimeoutMs, () => {
        connected();
        finish(timeoutError(this.idleTimeoutMs));
      });
      request.on('error', (error) => {
        connected();
        finish(error);
      });
      request.end();
    } catch (error) {
      connected();
      finish(error);
    }
    await answered;
    return controller;
  }
}

/** Hands each complete line of the answer to `callback` as an event; unreadable lines are skipped. */
function readEvents(response: IncomingMessage, callback: WatchCallback, ended: () => void, failed: (error: unknown) => void): void {
  response.setEncoding('utf8');
  let pending = '';
  // Only the new chunk is searched for line ends: one large object arrives in many chunks.
  response.on('data', (chunk: string) => {
    let start = 0;
    let newline = chunk.indexOf('\n');
    while (newline >= 0) {
      const line = pending + chunk.slice(start, newline);
      pending = '';
      if (line.trim() !== '') deliver(line, callback);
      start = newline + 1;
      newline = chunk.indexOf('\n', start);
    }
    pending += chunk.slice(start);
  });
  response.on('end', () => {
    if (pending.trim() !== '') deliver(pending, callback);
    ended();
  });
  response.on('error', failed);
  // A connection lost mid-answer closes it without an end.
  response.on('close', () => {
    if (!response.complete) failed(new Error('the watch connection closed before the answer ended'));
  });
}

function deliver(line: string, callback: WatchCallback): void {
  let event: unknown;
  try {
    event = JSON.parse(line);
  } catch {
    // A line that is not JSON carries no event; the next one may.
    return;
  }
  // The type and the object: a Status for ERROR, the object for the rest.
  if (isRecord(event) && typeof event['type'] === 'string') callback(event['type'], event['object'], event);
}

/** The start of an answer other than 200, as much as an error keeps: a watch's body may never end. */
function readErrorAnswer(response: IncomingMessage, then: (body: string) => void): void {
  const chunks: Buffer[] = [];
  let kept = 0;
  response.on('data', (chunk: Buffer) => {
    if (kept >= KEPT_BODY_CHARACTERS) return;
    chunks.push(chunk);
    kept += chunk.length;
  });
  response.on('end', () => then(Buffer.concat(chunks).toString('utf8')));
  response.on('error', () => then(''));
}

/** Named as ListWatch expects: it resumes a timed-out watch at once instead of reporting it. */
function timeoutError(ms: number): Error {
  const error = new Error(`the watch was silent for ${ms} ms`);
  error.name = 'TimeoutError';
  return error;
}
