/**
 * Prometheus metrics. Each app gets its own registry so tests (and several servers in one
 * process) never share counters.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  readonly registry: Registry;
  readonly requests: Counter<'webhook' | 'kind' | 'operation' | 'decision'>;
  readonly duration: Histogram<'webhook'>;
  readonly violations: Counter<'rule' | 'enforced'>;
  readonly certificateExpiry: Gauge;
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
  };
}
