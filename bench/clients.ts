/** One AdmissionReview posted over a fresh connection (HTTP/1.1 or HTTP/2), for the benchmarks' correctness checks. */
import http2 from 'node:http2';
import https from 'node:https';
import type { BenchRequest } from './fixtures.ts';

export interface Answer {
  status: number;
  body: { response?: { uid?: string; allowed?: boolean; patch?: string; status?: { code?: number }; warnings?: string[] } };
}

export function postHttp1(port: number, ca: string, request: Pick<BenchRequest, 'path' | 'body'>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, path: request.path, method: 'POST', ca, servername: 'localhost', headers: { 'content-type': 'application/json' }, agent: false },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Answer['body'] }));
      },
    );
    req.on('error', reject);
    req.end(request.body);
  });
}

export function postHttp2(port: number, ca: string, request: Pick<BenchRequest, 'path' | 'body'>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { ca, servername: 'localhost' });
    session.on('error', reject);
    const stream = session.request({ ':method': 'POST', ':path': request.path, 'content-type': 'application/json' });
    let status = 0;
    let text = '';
    stream.setEncoding('utf8');
    stream.on('response', (headers) => (status = Number(headers[':status'])));
    stream.on('data', (chunk: string) => (text += chunk));
    stream.on('end', () => {
      session.close();
      resolve({ status, body: JSON.parse(text) as Answer['body'] });
    });
    stream.on('error', reject);
    stream.end(request.body);
  });
}
