/** Shared by the benchmark's reports: medians of alternating runs, and how figures are printed. */
import type { LoadResult } from './load.ts';

/** A run's result plus the CPU time (user + system, all threads) the server used per answered request. */
export type WindowResult = LoadResult & { readonly cpuMicrosPerRequest: number };

export const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? NaN : (sorted[Math.floor((sorted.length - 1) / 2)] as number);
};
export const fmt = (value: number, digits = 2) => (Number.isFinite(value) ? value.toFixed(digits) : 'n/a');
export const check = (ok: boolean) => (ok ? '✅' : '❌');

export interface Aggregate {
  rps: number;
  mean: number;
  p50: number;
  p99: number;
  errors: number;
  cpu: number;
}

/** Medians of the runs (errors summed). */
export function aggregate(results: readonly WindowResult[]): Aggregate {
  return {
    rps: median(results.map((r) => r.rps)),
    mean: median(results.map((r) => r.mean)),
    p50: median(results.map((r) => r.p50)),
    p99: median(results.map((r) => r.p99)),
    errors: results.reduce((sum, r) => sum + r.errors, 0),
    cpu: median(results.map((r) => r.cpuMicrosPerRequest)),
  };
}
