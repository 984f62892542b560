/**
 * ClusterWatch against a stand-in API server over HTTPS: the request it sends, events split
 * anywhere across chunks, lines that are not events, the end of a watch, answers other than
 * 200, silence, and a watch ended by its caller — each as ListWatch expects it.
 */
import t from 'tap';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Test } from 'tap';
import { KubeConfig } from '@kubernetes/client-node';
import { generateCertificates } from '../src/tls/generate.ts';
import { ClusterWatch } from '../src/kube/watch-request.ts';

type Answer = (request: { url: string; authorization: string | undefined }, response: import('node:http').ServerResponse) => void;

async function watchServer(t: Test, answer: Answer): Promise<KubeConfig> {
  const certificates = await generateCertificates({ serviceName: 'api', namespace: 'test', validityDays: 1 });
  const server = https.createServer({ cert: certificates.cert, key: certificates.key }, (req, res) => answer({ url: req.url ?? '', authorization: req.headers.authorization }, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'c', server: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, caData: Buffer.from(certificates.caCert ?? '').toString('base64') }],
    users: [{ name: 'u', token: 'watch-token' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kubeConfig;
}

interface Seen {
  readonly events: { type: string; object: unknown }[];
  readonly done: Promise<unknown>;
}

function watching(kubeConfig: KubeConfig, path = '/api/v1/services', query: Record<string, string | undefined> = { resourceVersion: '7' }, idleTimeoutMs?: number) {
  const events: Seen['events'] = [];
  let doneCalls = 0;
  let finish: (error: unknown) => void = () => undefined;
  const done = new Promise<unknown>((resolve) => (finish = resolve));
  const controller = new ClusterWatch(kubeConfig, idleTimeoutMs).watch(path, query, (type, object) => events.push({ type, object }), (error) => {
    doneCalls += 1;
    finish(error);
  });
  return { events, done, controller, doneCalls: () => doneCalls };
}

t.test('events are read line by line, however the chunks split them; the end of the answer ends the watch', async (t) => {
  let seen: { url: string; authorization: string | undefined } | undefined;
  const kubeConfig = await watchServer(t, (request, res) => {
    seen = request;
    res.writeHead(200, { 'content-type': 'application/json' });
    const lines = [
      JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'a', resourceVersion: '8' } } }),
      'not json at all',
      JSON.stringify({ type: 'MODIFIED', object: { metadata: { name: 'a', resourceVersion: '9' }, spec: { text: 'é ünïcode ✓' } } }),
      '',
      JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '10' } } }),
    ].join('\n');
    // Cut in the middle of events and of a multi-byte character.
    const bytes = Buffer.from(`${lines}\n${JSON.stringify({ type: 'DELETED', object: { metadata: { name: 'a' } } })}`);
    const cuts = [5, 40, 90, 91, 150, bytes.length];
    let at = 0;
    const next = () => {
      const cut = cuts.shift();
      if (cut === undefined) return void res.end();
      res.write(bytes.subarray(at, cut));
      at = cut;
      setTimeout(next, 5);
    };
    next();
  });
  const watch = watching(kubeConfig, '/api/v1/services', { resourceVersion: '7', allowWatchBookmarks: 'true', labelSelector: undefined });
  t.equal(await watch.done, null, 'the server ended the watch: done(null)');
  t.same(watch.events.map((event) => event.type), ['ADDED', 'MODIFIED', 'BOOKMARK', 'DELETED'], 'the last line counts without a newline; a line that is not JSON is skipped');
  t.equal((watch.events[1]?.object as { spec: { text: string } }).spec.text, 'é ünïcode ✓', 'characters cut between chunks arrive whole');
  t.equal(seen?.url, '/api/v1/services?watch=true&resourceVersion=7&allowWatchBookmarks=true', 'watch=true and the query, undefined parameters left out');
  t.equal(seen?.authorization, 'Bearer watch-token', "the kubeconfig's credentials");
  t.equal(watch.doneCalls(), 1);
});

t.test('watch() resolves once the answer has begun, so events after it reach a registered watch', async (t) => {
  let write: ((line: string) => void) | undefined;
  const kubeConfig = await watchServer(t, (_request, res) => {
    setTimeout(() => {
      res.writeHead(200);
      res.flushHeaders();
      write = (line) => res.write(`${line}\n`);
    }, 100);
  });
  const watch = watching(kubeConfig);
  const controller = await watch.controller;
  t.ok(write, 'the headers were in before watch() resolved');
  write?.(JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'b' } } }));
  while (watch.events.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  t.same(watch.events, [{ type: 'ADDED', object: { metadata: { name: 'b' } } }]);
  controller.abort();
  t.match(await watch.done, { name: 'AbortError' }, 'ending it from outside calls done once, with the abort');
  write?.(JSON.stringify({ type: 'DELETED', object: { metadata: { name: 'b' } } }));
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.equal(watch.events.length, 1, 'nothing arrives after the abort');
  t.equal(watch.doneCalls(), 1);
});

t.test('an answer other than 200 ends the watch with its status and the Status message', async (t) => {
  const kubeConfig = await watchServer(t, (_request, res) => {
    res.writeHead(410, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kind: 'Status', status: 'Failure', reason: 'Expired', code: 410, message: 'too old resource version: 7 (12)' }));
  });
  const watch = watching(kubeConfig);
  await watch.controller;
  const error = (await watch.done) as { statusCode?: number; code?: number; message?: string };
  t.equal(error.statusCode, 410, 'statusCode, which ListWatch reads to list again');
  t.equal(error.code, 410);
  t.equal(error.message, 'watching /api/v1/services: HTTP 410: too old resource version: 7 (12)');
  t.same(watch.events, []);
});

t.test('a silent watch ends with a TimeoutError (ListWatch resumes it at once)', async (t) => {
  const kubeConfig = await watchServer(t, (_request, res) => {
    res.writeHead(200);
    res.flushHeaders();
  });
  const watch = watching(kubeConfig, '/api/v1/services', {}, 200);
  await watch.controller;
  const error = (await watch.done) as Error;
  t.equal(error.name, 'TimeoutError');
  t.match(error.message, /silent for 200 ms/);
  t.equal(watch.doneCalls(), 1, 'the reset that follows is not reported again');
});

t.test('a connection lost mid-answer is an error, not the end of the watch', async (t) => {
  const kubeConfig = await watchServer(t, (_request, res) => {
    res.writeHead(200);
    res.write(`${JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'c' } } })}\n`);
    setTimeout(() => res.socket?.destroy(), 50);
  });
  const watch = watching(kubeConfig);
  const error = await watch.done;
  t.ok(error instanceof Error, 'done(error), so ListWatch reports it');
  t.equal(watch.events.length, 1);
});

t.test('an unreachable server: done(error) and watch() still resolves', async (t) => {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({ clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }], users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
  const watch = watching(kubeConfig);
  t.ok((await watch.controller) instanceof AbortController);
  t.match(await watch.done, { code: 'ECONNREFUSED' });
});
