/** `mesh-admission policies`: the Service rules as ValidatingAdmissionPolicies, for clusters without the webhook. */
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { mutatingPolicies } from '../cel/mutating-policies.ts';
import { validatingPolicies } from '../cel/validating-policies.ts';
import { loadConfig } from './load-config.ts';
import { UsageError, type CommandIO } from './io.ts';

export const POLICIES_USAGE = `Usage: mesh-admission policies [--config FILE] [--mutations] [-o yaml|json]

Prints ValidatingAdmissionPolicies and their bindings (YAML) that make the API server itself
enforce the Service rules that need only the Service: port-protocol (Istio's exact port
classification), externalname-port and port-name-duplicate, with the webhook's skips
(system and exempt namespaces, the mesh-admission.io/ignore=true label, Istio's own control
plane) and its grandfathering of findings already stored (they warn on UPDATE). Needs
Kubernetes 1.30 or newer. Pipe it to \`kubectl apply -f -\`.

With --mutations, also MutatingAdmissionPolicies and their bindings (Kubernetes 1.36 or
newer): the Service port renames, from the same hints and stable across redeploys as the
webhook's (silent: a policy cannot warn), and the injection label of the configured mode for
each new namespace.

Not covered: the Namespace, Gateway and VirtualService rules; those need the webhook.

      --config FILE         the webhook's config file: enforcement (deny: Deny, warn: Warn),
                            exemptNamespaces, namespace, serviceName (the objects' name prefix),
                            mutation and injection (with --mutations)
      --mutations           also the port renames and the namespace injection label
                            (MutatingAdmissionPolicies)
  -o, --output FORMAT       yaml (default) or json (a List)
`;

export async function policiesCommand(argv: readonly string[], io: CommandIO): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      config: { type: 'string' },
      mutations: { type: 'boolean', default: false },
      output: { type: 'string', short: 'o', default: 'yaml' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    io.stdout(POLICIES_USAGE);
    return 0;
  }
  if (values.output !== 'yaml' && values.output !== 'json') throw new UsageError(`unknown output format "${values.output}"; use yaml or json`);
  const config = await loadConfig({ config: values.config }, io.env);
  const objects = [...validatingPolicies(config), ...(values.mutations ? mutatingPolicies(config) : [])];
  io.stdout(values.output === 'json' ? `${JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }, null, 2)}\n` : objects.map((object) => stringify(object, { lineWidth: 0 })).join('---\n'));
  return 0;
}
