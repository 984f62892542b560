/** `mesh-admission audit`: the webhook's rules over the live cluster's Services and Namespaces. */
import { parseArgs } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import { hasErrors, runCheck } from '../check/run-check.ts';
import { formatJson, formatText } from '../check/format.ts';
import type { SourcedObject } from '../check/load-manifests.ts';
import type { KubeObject } from '../policies/types.ts';
import { KubeConfigError, loadKubeConfig } from '../kube/kubeconfig.ts';
import { loadConfig } from './load-config.ts';
import { UsageError, type CommandIO } from './io.ts';

export const AUDIT_USAGE = `Usage: mesh-admission audit [--context NAME] [-o text|json] [--config FILE]

Applies the webhook's rules to the Services and Namespaces already in the cluster (through
the kubeconfig: KUBECONFIG, ~/.kube/config, or the in-cluster service account), e.g. before
turning enforcement on.

      --context NAME        kubeconfig context to use (default: the current one)
  -o, --output FORMAT       text (default) or json, as \`check\`
      --config FILE         the webhook's config file (exemptions, hint tables)

Exit status: 0 no errors, 1 error-level violations, 2 the cluster could not be read.
`;

export async function auditCommand(argv: readonly string[], io: CommandIO): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      context: { type: 'string' },
      output: { type: 'string', short: 'o', default: 'text' },
      config: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    io.stdout(AUDIT_USAGE);
    return 0;
  }
  if (values.output !== 'text' && values.output !== 'json') throw new UsageError(`unknown output format "${values.output}"; use text or json`);
  const config = await loadConfig({ config: values.config }, io.env);
  const kubeConfig = loadKubeConfig({ context: values.context });
  const api = kubeConfig.makeApiClient(CoreV1Api);

  let services, namespaces;
  try {
    [services, namespaces] = await Promise.all([api.listServiceForAllNamespaces(), api.listNamespace()]);
  } catch (error) {
    const server = kubeConfig.getCurrentCluster()?.server ?? 'the cluster';
    throw new KubeConfigError(`cannot list Services and Namespaces from ${server}: ${(error as Error).message.split('\n')[0]}`);
  }
  const live = (kind: string, items: readonly object[]): SourcedObject[] =>
    items.map((item) => ({ object: { apiVersion: 'v1', kind, ...item } as KubeObject, file: '', line: 0, documentIndex: 0 }));
  const objects = [...live('Namespace', namespaces.items), ...live('Service', services.items)];

  const result = runCheck(objects, config, { fix: false });
  io.stdout(values.output === 'json' ? formatJson(result) : formatText(result));
  return hasErrors(result) ? 1 : 0;
}
