/**
 * The physical limit of this stack: a bare Fastify server with the webhook's TLS settings
 * (HTTP/2 with HTTP/1.1 fallback, TLS 1.2+, the same ciphers, the same certificate) that parses
 * the AdmissionReview and answers `allowed: true` with its uid. No schema, no logger, no policy.
 *
 *   node bench/echo-server.ts --cert-dir DIR [--port 0] [--host 127.0.0.1]
 *
 * Prints `{"port":N}` on stdout once listening; exits on SIGTERM/SIGINT.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import Fastify, { type FastifyInstance } from 'fastify';
import { TLS_CIPHERS } from '../src/app.ts';

interface Review {
  apiVersion?: string;
  request?: { uid?: string };
}

export function buildEchoServer(certDir: string): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: 7 * 1024 * 1024,
    http2: true,
    https: {
      allowHTTP1: true,
      minVersion: 'TLSv1.2',
      ciphers: TLS_CIPHERS,
      key: readFileSync(path.join(certDir, 'tls.key')),
      cert: readFileSync(path.join(certDir, 'tls.crt')),
    },
  }) as unknown as FastifyInstance;
  const echo = async (request: { body: unknown }) => {
    const review = request.body as Review;
    return { apiVersion: review.apiVersion, kind: 'AdmissionReview', response: { uid: review.request?.uid, allowed: true } };
  };
  app.post('/validate', echo);
  app.post('/mutate', echo);
  return app;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { 'cert-dir': { type: 'string' }, port: { type: 'string', default: '0' }, host: { type: 'string', default: '127.0.0.1' } },
  });
  const certDir = values['cert-dir'];
  if (!certDir) throw new Error('--cert-dir is required');
  const app = buildEchoServer(certDir);
  await app.listen({ port: Number(values.port), host: values.host });
  process.stdout.write(`${JSON.stringify({ port: (app.server.address() as AddressInfo).port })}\n`);
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
