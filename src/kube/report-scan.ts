/**
 * `serve --report-interval`: the audit of `mesh-admission audit --write-reports`, run in the
 * background once the webhook serves and then every interval, keeping the cluster's policy
 * reports current. Each run logs one line (objects judged, findings, reports written, how
 * long it took); a failed run (reads or writes refused, report CRDs not installed) is a
 * warning saying why, and the next run tries again. Without an interval nothing here runs
 * and the Kubernetes client is never loaded.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Config } from '../config.ts';
import type { Logger } from '../observability/logger.ts';
import { startSchedule, type Schedule, type Timer } from './report-schedule.ts';

export interface ReportScanDependencies {
  readonly kubeConfig?: (() => KubeConfig) | undefined;
  /** The environment the kubeconfig is found through (KUBECONFIG, HOME, in-cluster). */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
  readonly timer?: Timer | undefined;
}

const NOTHING: Schedule = { close: () => {}, idle: async () => {} };

export async function startReportScan(config: Config, logger: Logger, deps: ReportScanDependencies = {}): Promise<Schedule> {
  const { intervalMs, format } = config.reports;
  if (intervalMs === undefined) return NOTHING;
  // Loaded only when used, as the other background parts do: the client costs start-up time and memory.
  const [{ auditCluster }, { writeReports }, { buildReports, REPORT_APIS }, { DEFAULT_PAGE_SIZE }, { loadKubeConfig }] = await Promise.all([
    import('./cluster-audit.ts'),
    import('./report-writer.ts'),
    import('../check/policy-reports.ts'),
    import('./paginated-list.ts'),
    import('./kubeconfig.ts'),
  ]);
  // A missing kubeconfig is a setup error: serve stops at start rather than warn every interval.
  const kubeConfig = (deps.kubeConfig ?? (() => loadKubeConfig({ env: deps.env ?? {} })))();
  const { group, version } = REPORT_APIS[format];
  const api = `${group}/${version}`;
  logger.info({ intervalMs, api }, 'periodic reports on: the first audit runs now');
  return startSchedule({
    intervalMs,
    timer: deps.timer,
    run: async (signal) => {
      const audit = await auditCluster(kubeConfig, config, { pageSize: DEFAULT_PAGE_SIZE, signal });
      const written = await writeReports(kubeConfig, format, buildReports(audit.findings, format, new Date()), signal);
      return { audit, written };
    },
    onSuccess: ({ audit, written }, durationMs) => {
      logger.info(
        { objects: audit.checkedObjects, findings: audit.findings.length, api, reports: written, durationMs: Math.round(durationMs) },
        `reports written: ${audit.checkedObjects} objects judged, ${audit.findings.length} findings; ${written.created} created, ${written.updated} updated, ${written.deleted} deleted`,
      );
    },
    onFailure: (error, durationMs) => {
      // The messages of the audit and the writer say what was refused or missing; the stack adds nothing.
      const reason = error instanceof Error ? error.message : String(error);
      logger.warn({ api, durationMs: Math.round(durationMs), nextInMs: intervalMs }, `reports not written, will retry: ${reason}`);
    },
  });
}
