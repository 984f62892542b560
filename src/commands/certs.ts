/** `mesh-admission certs`: generates (or reuses) a CA and serving certificate and prints the caBundle. */
import { parseArgs } from 'node:util';
import { buildConfig, DEFAULT_CONFIG } from '../config.ts';
import { ensureCertificates } from '../tls/ensure.ts';
import type { CommandIO } from './io.ts';

export const CERTS_USAGE = `Usage: mesh-admission certs --dir DIR [--service-name NAME] [--namespace NS] [--validity-days N]

Writes ca.crt, ca.key, tls.crt and tls.key to DIR (reusing valid ones) and prints the
base64 caBundle for a webhook configuration.
`;

export async function certsCommand(argv: readonly string[], io: CommandIO): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      dir: { type: 'string', default: DEFAULT_CONFIG.certDir },
      'service-name': { type: 'string', default: DEFAULT_CONFIG.serviceName },
      namespace: { type: 'string', default: DEFAULT_CONFIG.namespace },
      'validity-days': { type: 'string', default: String(DEFAULT_CONFIG.certificates.validityDays) },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    io.stdout(CERTS_USAGE);
    return 0;
  }
  // The same parsing and checks as serve's settings: a bad value names its flag.
  const config = buildConfig({
    flags: { 'cert-dir': values.dir, 'service-name': values['service-name'], namespace: values.namespace, 'cert-validity-days': values['validity-days'] },
  });
  const result = await ensureCertificates(config.certDir, {
    serviceName: config.serviceName,
    namespace: config.namespace,
    validityDays: config.certificates.validityDays,
    renewBeforeDays: config.certificates.renewBeforeDays,
  });
  io.stderr(`${result.generated ? 'generated' : 'reused'} certificates in ${values.dir} (${result.reason})\n`);
  if (result.bundle.caCert === undefined) {
    io.stderr(`${values.dir} has a serving certificate but no ca.crt: take the caBundle from whoever issued it\n`);
    return 1;
  }
  io.stdout(`${Buffer.from(result.bundle.caCert).toString('base64')}\n`);
  return 0;
}
