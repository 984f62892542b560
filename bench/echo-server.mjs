/**
 * The physical limit of this stack: a bare Fastify server with the webhook's TLS settings
 * (HTTP/2 with HTTP/1.1 fallback, TLS 1.2+, the same ciphers, the same certificate) that parses
 * the AdmissionReview and answers `allowed: true` with its uid. No schema, no logger, no policy.
 *
 *   node bench/echo-server.mjs --cert-dir DIR --ciphers LIST [--port 0] [--host 127.0.0.1]
 *
 * Plain JavaScript on purpose: Node strips TypeScript types with a loader that adds ~17 MB of
 * resident memory to the process, which the webhook (run from dist/) does not carry, and the
 * benchmark compares the two processes' memory. The bench passes the webhook's cipher list.
 *
 * Prints `{"port":N}` on stdout once listening; exits on SIGTERM/SIGINT.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Fastify from 'fastify';

/** @param {{ certDir: string, ciphers: string }} options */
export function buildEchoServer({ certDir, ciphers }) {
  const app = Fastify({
    logger: false,
    bodyLimit: 7 * 1024 * 1024,
    http2: true,
    https: {
      allowHTTP1: true,
      minVersion: 'TLSv1.2',
      ciphers,
      key: readFileSync(path.join(certDir, 'tls.key')),
      cert: readFileSync(path.join(certDir, 'tls.crt')),
    },
  });
  /** @param {{ body: { apiVersion?: string, request?: { uid?: string } } }} request */
  const echo = async (request) => {
    const review = request.body;
    return { apiVersion: review.apiVersion, kind: 'AdmissionReview', response: { uid: review.request?.uid, allowed: true } };
  };
  app.post('/validate', echo);
  app.post('/mutate', echo);
  return app;
}

async function main() {
  const { values } = parseArgs({
    options: {
      'cert-dir': { type: 'string' },
      ciphers: { type: 'string' },
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
    },
  });
  const certDir = values['cert-dir'];
  const ciphers = values.ciphers;
  if (!certDir || !ciphers) throw new Error('--cert-dir and --ciphers are required');
  const app = buildEchoServer({ certDir, ciphers });
  await app.listen({ port: Number(values.port), host: values.host });
  process.stdout.write(`${JSON.stringify({ port: app.server.address().port })}\n`);
  const stop = () => {
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (import.meta.main) await main();
