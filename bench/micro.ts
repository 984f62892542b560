/**
 * Per-object cost of evaluation + patch: handleValidate + handleMutate (src/admission/handlers.ts)
 * on one parsed AdmissionRequest, timed one call pair at a time; the median of many iterations.
 *
 *   node bench/micro.ts        (also part of `npm run bench`)
 */
import { buildConfig } from '../src/config.ts';
import { handleMutate, handleValidate } from '../src/admission/handlers.ts';
import type { AdmissionRequest } from '../src/admission/review.ts';
import { admissionReview, lastAppliedSize, manyPorts, namespaceObject, serviceObject } from './fixtures.ts';
import { percentile } from './load.ts';

export interface MicroResult {
  readonly object: string;
  readonly bodyBytes: number;
  readonly iterations: number;
  /** Milliseconds per validate + mutate pair. */
  readonly median: number;
  readonly p99: number;
  readonly validateMedian: number;
  readonly mutateMedian: number;
  readonly decision: string;
}

interface Case {
  readonly object: string;
  readonly review: Record<string, unknown>;
}

function cases(): Case[] {
  return [
    ...[1, 10, 500].map((count) => {
      const object = serviceObject({ name: `svc-${count}`, ports: manyPorts(count) });
      return { object: `Service, ${count} port${count === 1 ? '' : 's'} (last-applied ${(lastAppliedSize(object) / 1024).toFixed(1)} KiB)`, review: admissionReview(object) };
    }),
    { object: 'Namespace, 1,000 labels', review: admissionReview(namespaceObject('team-labels', 1000)) },
  ];
}

/** Times `fn` alone, `iterations` times after a warm-up; sorted milliseconds. */
function time(fn: () => unknown, budgetMs: number, minIterations: number): Float64Array {
  const warmUntil = performance.now() + budgetMs / 4;
  while (performance.now() < warmUntil) fn();
  const samples: number[] = [];
  const stopAt = performance.now() + budgetMs;
  while (samples.length < minIterations || (performance.now() < stopAt && samples.length < 100_000)) {
    const t0 = performance.now();
    fn();
    samples.push(performance.now() - t0);
  }
  return Float64Array.from(samples).sort();
}

export function runMicro(budgetMs = 400): MicroResult[] {
  const config = buildConfig({ flags: { 'log-level': 'silent' }, env: {} });
  return cases().map(({ object, review }) => {
    const body = JSON.stringify(review);
    // What the handler gets: a freshly parsed request, as Fastify hands it over.
    const request = (JSON.parse(body) as { request: AdmissionRequest }).request;
    const both = time(() => {
      handleValidate(request, config);
      handleMutate(request, config);
    }, budgetMs, 50);
    const validate = time(() => handleValidate(request, config), budgetMs / 2, 50);
    const mutate = time(() => handleMutate(request, config), budgetMs / 2, 50);
    const decision = `${handleValidate(request, config).decision} / ${handleMutate(request, config).decision}`;
    return {
      object,
      bodyBytes: Buffer.byteLength(body),
      iterations: both.length,
      median: percentile(both, 50),
      p99: percentile(both, 99),
      validateMedian: percentile(validate, 50),
      mutateMedian: percentile(mutate, 50),
      decision,
    };
  });
}

export function microTable(results: readonly MicroResult[]): string {
  const ms = (value: number) => (value < 0.1 ? value.toFixed(4) : value.toFixed(3));
  return [
    '| object | review size | validate + mutate median | p99 | validate | mutate | decisions | iterations |',
    '|---|---:|---:|---:|---:|---:|---|---:|',
    ...results.map(
      (r) =>
        `| ${r.object} | ${(r.bodyBytes / 1024).toFixed(1)} KiB | ${ms(r.median)} ms | ${ms(r.p99)} ms | ${ms(r.validateMedian)} ms | ${ms(r.mutateMedian)} ms | ${r.decision} | ${r.iterations} |`,
    ),
  ].join('\n');
}

if (import.meta.main) process.stdout.write(`${microTable(runMicro())}\n`);
