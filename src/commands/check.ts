/** `mesh-admission check`: the webhook's rules, offline, over manifest files. */
import { parseArgs } from 'node:util';
import { loadManifests } from '../check/load-manifests.ts';
import { hasErrors, runCheck } from '../check/run-check.ts';
import { worldFromObjects } from '../policies/traffic-world.ts';
import { formatFixNotes, formatJson, formatManifests, formatText } from '../check/format.ts';
import { loadConfig } from './load-config.ts';
import { UsageError, type CommandIO } from './io.ts';

export const CHECK_USAGE = `Usage: mesh-admission check -f PATH [-f PATH...] [-o text|json] [--fix] [--strict] [--config FILE] [--cluster [--kubeconfig FILE] [--context NAME]]

Checks Kubernetes manifests offline with the same rules the webhook enforces.

  -f, --filename PATH   a file, a directory (read recursively: .yaml, .yml, .json) or - for stdin;
                        repeatable; multi-document YAML and List kinds are read
  -o, --output FORMAT   text (default) or json: {"violations":[{kind,namespace,name,rule,severity,field,message,file,line}]}
      --fix             print the manifests with the webhook's mutations applied (to stdout);
                        the report then goes to stderr and covers what is left after fixing
      --strict          a port the webhook would rename on admission is an error, not a warning
      --config FILE     the webhook's config file (hint tables, exemptions, injection mode)
      --cluster         also look up Services and Istio networking objects in the live cluster
                        (kubeconfig) for the Gateway and VirtualService checks; without it they
                        see only the objects in the files given
      --kubeconfig FILE kubeconfig for --cluster (default: KUBECONFIG, ~/.kube/config, or the
                        in-cluster service account)
      --context NAME    kubeconfig context for --cluster (default: the current one)

A port without a protocol that the webhook renames on admission (e.g. "web" on 8080, which
\`kubectl apply\` admits as "http-web") is a warning naming the new name; --strict makes it an
error, for a pipeline that wants the manifests themselves fixed (\`--fix\` writes the names).

Exit status: 0 no errors (warnings allowed), 1 error-level violations, 2 unusable input.
`;

export async function checkCommand(argv: readonly string[], io: CommandIO): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      filename: { type: 'string', short: 'f', multiple: true },
      output: { type: 'string', short: 'o', default: 'text' },
      fix: { type: 'boolean', default: false },
      strict: { type: 'boolean', default: false },
      config: { type: 'string' },
      cluster: { type: 'boolean', default: false },
      kubeconfig: { type: 'string' },
      context: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    io.stdout(CHECK_USAGE);
    return 0;
  }
  if (!values.filename || values.filename.length === 0) throw new UsageError('check needs at least one -f PATH');
  if (values.output !== 'text' && values.output !== 'json') throw new UsageError(`unknown output format "${values.output}"; use text or json`);
  for (const flag of ['context', 'kubeconfig'] as const) {
    if (values[flag] !== undefined && !values.cluster) throw new UsageError(`--${flag} needs --cluster`);
  }

  const config = await loadConfig({ config: values.config }, io.env);
  const objects = await loadManifests(values.filename, io.readStdin);
  let traffic;
  if (values.cluster) {
    // Loaded only when asked for: the Kubernetes client is large.
    const [{ loadKubeConfig }, { listTrafficObjects }] = await Promise.all([
      import('../kube/kubeconfig.ts'),
      import('../kube/cluster-world.ts'),
    ]);
    const live = await listTrafficObjects(loadKubeConfig({ context: values.context, kubeconfig: values.kubeconfig, env: io.env }));
    // The files win over what is deployed: they are what is about to be applied.
    traffic = worldFromObjects([...live, ...objects.map((o) => o.object)], { complete: true });
  }
  const result = runCheck(objects, config, { fix: values.fix, webhookFixedSeverity: values.strict ? 'error' : 'warning', ...(traffic ? { traffic } : {}) });
  const report = values.output === 'json' ? formatJson(result) : formatText(result);
  if (values.fix) {
    io.stdout(formatManifests(objects, result));
    io.stderr(formatFixNotes(result) + report);
  } else {
    io.stdout(report);
  }
  return hasErrors(result) ? 1 : 0;
}
