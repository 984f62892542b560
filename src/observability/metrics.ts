/**
 * Prometheus metrics. Each app gets its own registry so tests (and several servers in one
 * process) never share counters.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { REGISTERED_KINDS } from '../webhook-config.ts';

export interface Metrics {
  readonly registry: Registry;
  readonly requests: Counter<'webhook' | 'kind' | 'operation' | 'decision'>;
  readonly duration: Histogram<'webhook'>;
  readonly violations: Counter<'rule' | 'enforced'>;
  readonly certificateExpiry: Gauge;
  readonly certificateStale: Gauge;
  readonly certificateReloads: Counter<'result'>;
  /** The `kind` label value for an admitted object's kind (see `kindLabels`). */
  readonly kindLabel: (kind: string) => string;
}

/**
 * The registry's exposition text, rendered at most once per `maxAgeMs`: requests within that
 * time, and requests arriving while a render runs, share one text.
 */
export function cachedMetricsText(registry: Registry, maxAgeMs: number): () => Promise<string> {
  let rendered: { readonly at: number; readonly text: Promise<string> } | undefined;
  return () => {
    const now = performance.now();
    if (rendered === undefined || now - rendered.at >= maxAgeMs) {
      const text = registry.metrics();
      rendered = { at: now, text };
      // A failed render is not kept: the next request tries again.
      text.catch(() => {
        if (rendered?.text === text) rendered = undefined;
      });
    }
    return rendered.text;
  };
}

/**
 * Distinct unknown `kind` label values at most. Anyone who can reach the port can post any
 * kind: each new one would be a new time series kept forever.
 */
export const MAX_UNKNOWN_KIND_LABELS = 32;

const KIND_NAME = /^[A-Za-z][A-Za-z0-9]{0,62}$/;

/**
 * Label values for object kinds. The kinds the webhook configurations register always keep
 * their own value, so junk kinds posted first cannot push real admissions into "other";
 * the first `unknownSlots` other kind names get a value each, then they share "other"
 * (as does anything that is not a kind name).
 */
export function kindLabels(known: readonly string[] = REGISTERED_KINDS, unknownSlots = MAX_UNKNOWN_KIND_LABELS): (kind: string) => string {
  const reserved = new Set(known);
  const seen = new Set<string>();
  return (kind) => {
    if (reserved.has(kind) || seen.has(kind)) return kind;
    if (seen.size >= unknownSlots || !KIND_NAME.test(kind)) return 'other';
    seen.add(kind);
    return kind;
  };
}

export function createMetrics(options: { collectProcessMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.collectProcessMetrics ?? true) collectDefaultMetrics({ register: registry });
  return {
    registry,
    requests: new Counter({
      name: 'mesh_admission_requests_total',
      help: 'Admission reviews answered, by webhook, object kind, operation and decision.',
      labelNames: ['webhook', 'kind', 'operation', 'decision'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'mesh_admission_request_duration_seconds',
      help: 'Time to answer an admission review, from parsed request to reply.',
      labelNames: ['webhook'],
      // Admission answers are expected in well under a millisecond; the API server's
      // webhook timeout is seconds. The buckets cover both ends.
      buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5],
      registers: [registry],
    }),
    violations: new Counter({
      name: 'mesh_admission_violations_total',
      help: 'Rule violations found, by rule id and whether they were enforced (denied).',
      labelNames: ['rule', 'enforced'],
      registers: [registry],
    }),
    certificateExpiry: new Gauge({
      name: 'mesh_admission_certificate_expiry_timestamp_seconds',
      help: 'Expiry of the serving certificate in use, as a Unix timestamp.',
      registers: [registry],
    }),
    certificateStale: new Gauge({
      name: 'mesh_admission_certificate_stale',
      help: '1 while the cert dir holds files that reload refused, so the served certificate is older than them; 0 otherwise.',
      registers: [registry],
    }),
    certificateReloads: new Counter({
      name: 'mesh_admission_certificate_reloads_total',
      help: 'Changed certificate files, by result: applied (served to new connections) or refused (the previous certificate stays).',
      labelNames: ['result'],
      registers: [registry],
    }),
    kindLabel: kindLabels(),
  };
}
