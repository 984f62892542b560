/** `mesh-admission webhook-config`: prints both webhook configurations for a webhook at a URL. */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { webhookConfigurations } from '../webhook-config.ts';
import { UsageError, type CommandIO } from './io.ts';

export const WEBHOOK_CONFIG_USAGE = `Usage: mesh-admission webhook-config --url URL --ca-file FILE [options]

Prints a ValidatingWebhookConfiguration and a MutatingWebhookConfiguration (YAML) that send
Services and Namespaces to a webhook served at URL. Pipe it to \`kubectl apply -f -\`.

      --url URL              base URL of the webhook, e.g. https://127.0.0.1:8443
      --ca-file FILE         CA certificate (PEM) that signed the serving certificate, e.g. certs/ca.crt
      --name NAME            name of both configurations (default mesh-admission)
      --failure-policy P     Fail (default) or Ignore
      --timeout-seconds N    1-30 (default 5)
      --exclude-namespace NS namespace never sent to the webhook; repeatable
      --traffic-checks       also send Istio Gateways and VirtualServices (networking.istio.io
                             v1, v1beta1, v1alpha3) to the validating webhook; for a webhook
                             served with --traffic-checks
      --hold-application-until-proxy-starts
                             also send Pods created in injected namespaces (istio-injection=enabled,
                             or istio.io/rev without istio-injection) to the mutating webhook; for a
                             webhook served with --hold-application-until-proxy-starts
`;

export async function webhookConfigCommand(argv: readonly string[], io: CommandIO): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      url: { type: 'string' },
      'ca-file': { type: 'string' },
      name: { type: 'string', default: 'mesh-admission' },
      'failure-policy': { type: 'string', default: 'Fail' },
      'timeout-seconds': { type: 'string', default: '5' },
      'exclude-namespace': { type: 'string', multiple: true, default: [] },
      'traffic-checks': { type: 'boolean', default: false },
      'hold-application-until-proxy-starts': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    io.stdout(WEBHOOK_CONFIG_USAGE);
    return 0;
  }
  if (!values.url) throw new UsageError('webhook-config needs --url');
  if (!values['ca-file']) throw new UsageError('webhook-config needs --ca-file');
  let url: URL;
  try {
    url = new URL(values.url);
  } catch {
    throw new UsageError(`--url "${values.url}" is not a URL`);
  }
  if (url.protocol !== 'https:') throw new UsageError('--url must use https: the API server only calls webhooks over TLS');
  const failurePolicy = values['failure-policy'];
  if (failurePolicy !== 'Fail' && failurePolicy !== 'Ignore') throw new UsageError('--failure-policy must be Fail or Ignore');
  const timeoutSeconds = Number(values['timeout-seconds']);
  if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1 || timeoutSeconds > 30) {
    throw new UsageError('--timeout-seconds must be an integer from 1 to 30');
  }
  let caPem: string;
  try {
    caPem = await readFile(values['ca-file'], 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read --ca-file ${values['ca-file']}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  if (!caPem.includes('-----BEGIN CERTIFICATE-----')) throw new UsageError(`${values['ca-file']} is not a PEM certificate`);

  const documents = webhookConfigurations({
    url: url.toString(),
    caPem,
    name: values.name,
    failurePolicy,
    timeoutSeconds,
    excludedNamespaces: values['exclude-namespace'],
    trafficChecks: values['traffic-checks'],
    holdApplicationUntilProxyStarts: values['hold-application-until-proxy-starts'],
  });
  io.stdout(documents.map((d) => `---\n${stringify(d)}`).join(''));
  return 0;
}
