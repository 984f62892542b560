/** `mesh-admission serve`: runs the webhook until SIGTERM/SIGINT, then drains and exits 0. */
import { parseArgs } from 'node:util';
import closeWithGrace from 'close-with-grace';
import { BOOLEAN_SETTING_FLAGS, SETTING_FLAGS } from '../config.ts';
import { startServer } from '../server.ts';
import { startCertificateLifecycle } from '../kube/certificate-lifecycle.ts';
import { startReportScan } from '../kube/report-scan.ts';
import { loadConfig } from './load-config.ts';
import { createLogger, finishLog } from '../observability/logger.ts';
import type { CommandIO } from './io.ts';

export const SERVE_USAGE = `Usage: mesh-admission serve [options]

Serves the validating (/validate) and mutating (/mutate) webhooks over HTTPS (HTTP/2 and
HTTP/1.1, TLS 1.2+), and /healthz, /readyz, /metrics over plain HTTP on the probe port.
Certificates missing from the cert dir are generated (ca.crt, ca.key, tls.crt, tls.key).

      --port N                  webhook HTTPS port (default 8443)         MESH_ADMISSION_PORT
      --host ADDR               webhook listen address (default 0.0.0.0)  MESH_ADMISSION_HOST
      --probe-port N            probe HTTP port (default 9090)            MESH_ADMISSION_PROBE_PORT
      --probe-host ADDR         probe listen address (default 0.0.0.0)    MESH_ADMISSION_PROBE_HOST
      --cert-dir DIR            certificate directory (default ./certs)   MESH_ADMISSION_CERT_DIR
      --config FILE             YAML config file                          MESH_ADMISSION_CONFIG
      --enforcement deny|warn   deny errors, or only warn (default deny)  MESH_ADMISSION_ENFORCEMENT
      --log-level LEVEL         fatal|error|warn|info|debug|trace|silent  MESH_ADMISSION_LOG_LEVEL
      --service-name NAME       the webhook's Service (certificate SANs)  MESH_ADMISSION_SERVICE_NAME
      --namespace NS            the webhook's namespace (SANs, exclusion) MESH_ADMISSION_NAMESPACE
      --exempt-namespaces A,B   namespaces never checked or mutated       MESH_ADMISSION_EXEMPT_NAMESPACES
      --default-protocol P      protocol for ports no hint recognises     MESH_ADMISSION_DEFAULT_PROTOCOL
      --injection [true|false]  label new namespaces for injection        MESH_ADMISSION_INJECTION
      --injection-mode MODE     istio-injection|revision|ambient          MESH_ADMISSION_INJECTION_MODE
      --injection-revision REV  revision for --injection-mode revision    MESH_ADMISSION_INJECTION_REVISION
      --client-ca-file FILE     require client certificates signed by it  MESH_ADMISSION_CLIENT_CA_FILE
      --request-timeout-ms N    whole-request deadline (default 10000)    MESH_ADMISSION_REQUEST_TIMEOUT_MS
      --headers-timeout-ms N    handshake/headers deadline (default 10000) MESH_ADMISSION_HEADERS_TIMEOUT_MS
      --traffic-checks [true]   check Gateways/VirtualServices (caches)   MESH_ADMISSION_TRAFFIC_CHECKS
      --hold-application-until-proxy-starts [true]
                                add it to Pods' proxy.istio.io/config     MESH_ADMISSION_HOLD_APPLICATION_UNTIL_PROXY_STARTS
      --cert-secret NAME        share CA + certificate via this Secret    MESH_ADMISSION_CERT_SECRET
      --register-validating N   keep this validating config's caBundle    MESH_ADMISSION_REGISTER_VALIDATING
      --register-mutating N     keep this mutating config's caBundle      MESH_ADMISSION_REGISTER_MUTATING
                                (and install its planned webhooks)
      --pod-ips A,B             install them once the Service routes here MESH_ADMISSION_POD_IPS
      --report-interval D       audit the cluster and write the findings  MESH_ADMISSION_REPORT_INTERVAL
                                as reports every D (30s, 10m, 1h; off)
      --report-format F         policyreport (default) or openreports     MESH_ADMISSION_REPORT_FORMAT
  On/off flags given bare mean true (\`--traffic-checks\`); \`--flag false\` turns one off.
  (all settings: see the README's configuration reference)
`;

/**
 * `--traffic-checks` alone means `--traffic-checks=true`, as `webhook-config --traffic-checks`
 * reads; `--traffic-checks true|false` keeps working. The settings stay string-typed because
 * the same value may also come from the environment or the config file.
 */
export function withExplicitBooleans(argv: readonly string[]): string[] {
  const result: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const next = argv[i + 1];
    if (arg.startsWith('--') && BOOLEAN_SETTING_FLAGS.includes(arg.slice(2))) {
      const value = next === 'true' || next === 'false' ? next : 'true';
      if (value === next) i++;
      result.push(`${arg}=${value}`);
    } else {
      result.push(arg);
    }
    if (arg === '--') {
      result.push(...argv.slice(i + 1));
      break;
    }
  }
  return result;
}

export async function serveCommand(argv: readonly string[], io: CommandIO): Promise<number> {
  const options = Object.fromEntries(SETTING_FLAGS.map((flag) => [flag, { type: 'string' as const }]));
  const { values } = parseArgs({
    args: withExplicitBooleans(argv),
    options: { ...options, config: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  if (values['help']) {
    io.stdout(SERVE_USAGE);
    return 0;
  }
  const flags = Object.fromEntries(Object.entries(values).filter(([, v]) => typeof v === 'string')) as Record<string, string>;
  const config = await loadConfig(flags, io.env);
  const logger = createLogger(config.logLevel);
  // The certificate Secret (when configured) fills the cert dir before the server reads it.
  const certificates = await startCertificateLifecycle(config, logger, { env: io.env });
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    server = await startServer(config, logger, { externallyManagedCertificates: certificates.managesCertificates, env: io.env });
  } catch (error) {
    certificates.close();
    throw error;
  }
  await certificates.start();
  let reports: Awaited<ReturnType<typeof startReportScan>>;
  try {
    reports = await startReportScan(config, logger, { env: io.env });
  } catch (error) {
    certificates.close();
    await server.close();
    throw error;
  }

  await new Promise<void>((resolve) => {
    closeWithGrace({ delay: config.shutdownGraceMs, logger: { error: (...args: unknown[]) => logger.error(args, 'shutdown') } }, async ({ signal, err }) => {
      if (err) logger.error({ err }, 'fatal error, shutting down');
      else logger.info({ signal }, 'shutting down: readiness off, draining in-flight requests');
      certificates.close();
      reports.close();
      await server.close();
      logger.info('stopped');
      // The log is written asynchronously and the process exits after this callback.
      await finishLog(logger);
      resolve();
    });
  });
  return 0;
}
