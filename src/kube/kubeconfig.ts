/**
 * Kubeconfig loading for the commands that talk to a cluster, resolved as kubectl resolves it:
 * `--kubeconfig FILE`, else the files of KUBECONFIG, else ~/.kube/config, else the in-cluster
 * service account. When none is there the error says where it looked; the client library
 * would instead fall back to http://localhost:8080 and fail later with a message about TLS.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node/dist/config.js';
import { apiRefusal, refusalMessage } from './api-refusal.ts';
import { describeError } from './istio-resources.ts';

/** Where a pod's service account token is mounted (the in-cluster configuration). */
export const SERVICE_ACCOUNT_TOKEN_PATH = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export interface KubeConfigOptions {
  /** A context of the kubeconfig other than the current one (`--context`). */
  readonly context?: string | undefined;
  /** `--kubeconfig`: this file and no other. */
  readonly kubeconfig?: string | undefined;
  /** Where KUBECONFIG, HOME and KUBERNETES_SERVICE_HOST are read (the entry point's environment). */
  readonly env: Readonly<Record<string, string | undefined>>;
}

export class KubeConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KubeConfigError';
  }
}

/** One place the kubeconfig was looked for, and what was found there. */
export interface KubeConfigLookup {
  readonly where: string;
  readonly found: string;
}

/** "No kubeconfig": every place looked at, then what to do. */
export function noKubeConfigMessage(lookups: readonly KubeConfigLookup[]): string {
  return [
    'no kubeconfig found; looked for:',
    ...lookups.map((lookup) => `  ${lookup.where}: ${lookup.found}`),
    'Pass --kubeconfig FILE, set KUBECONFIG, or create ~/.kube/config (e.g. with your cluster provider\'s "get credentials" command).',
  ].join('\n');
}

/**
 * A failed read of the cluster as the error the commands print (exit 2); a refused one says
 * which permission is missing and how to grant it. `what` is e.g. "list Services".
 */
export function clusterReadError(error: unknown, what: string, server: string): KubeConfigError {
  const refusal = apiRefusal(error);
  return new KubeConfigError(refusal ? refusalMessage(refusal, server) : `cannot ${what} from ${server}: ${describeError(error)}`);
}

export function loadKubeConfig(options: KubeConfigOptions): KubeConfig {
  const env = options.env;
  const kubeConfig = new KubeConfig();
  const files = kubeConfigFiles(options.kubeconfig, env);
  if (files.length > 0) {
    for (const [index, file] of files.entries()) {
      try {
        if (index === 0) {
          kubeConfig.loadFromFile(file);
        } else {
          const next = new KubeConfig();
          next.loadFromFile(file);
          // Merged as kubectl merges KUBECONFIG: the first file that names a current context wins.
          kubeConfig.mergeConfig(next, Boolean(kubeConfig.getCurrentContext()));
        }
      } catch (error) {
        throw new KubeConfigError(`cannot read the kubeconfig ${file}: ${firstLine(error)}`);
      }
    }
  } else if (existsSync(SERVICE_ACCOUNT_TOKEN_PATH) && env['KUBERNETES_SERVICE_HOST']) {
    kubeConfig.loadFromCluster();
  } else {
    throw new KubeConfigError(noKubeConfigMessage(lookups(env)));
  }
  if (options.context !== undefined) {
    if (!kubeConfig.getContextObject(options.context)) {
      const known = kubeConfig.getContexts().map((c) => c.name);
      throw new KubeConfigError(`no context "${options.context}" in the kubeconfig (known: ${known.join(', ') || 'none'})`);
    }
    kubeConfig.setCurrentContext(options.context);
  }
  if (!kubeConfig.getCurrentCluster()) {
    const known = kubeConfig.getContexts().map((c) => c.name);
    throw new KubeConfigError(`the kubeconfig (${files.join(', ') || 'in-cluster'}) names no current context with a cluster; pass --context NAME (known: ${known.join(', ') || 'none'})`);
  }
  return kubeConfig;
}

/**
 * The kubeconfig files to read, in kubectl's order: `--kubeconfig` alone (missing is an error:
 * it was asked for), else the files of KUBECONFIG that exist, else ~/.kube/config if it does.
 */
function kubeConfigFiles(flag: string | undefined, env: Readonly<Record<string, string | undefined>>): string[] {
  if (flag !== undefined) {
    if (!existsSync(flag)) throw new KubeConfigError(`cannot read the kubeconfig ${flag} (--kubeconfig): no such file`);
    return [flag];
  }
  const fromEnv = env['KUBECONFIG'];
  if (fromEnv) return fromEnv.split(path.delimiter).filter((file) => file !== '' && existsSync(file));
  const home = homeConfig(env);
  return existsSync(home) ? [home] : [];
}

/** Where kubeConfigFiles and the in-cluster check looked, when none of them found anything. */
function lookups(env: Readonly<Record<string, string | undefined>>): KubeConfigLookup[] {
  const fromEnv = env['KUBECONFIG'];
  return [
    { where: '--kubeconfig', found: 'not given' },
    { where: 'KUBECONFIG', found: fromEnv ? `${fromEnv} (no such file)` : 'not set' },
    { where: homeConfig(env), found: fromEnv ? 'not read while KUBECONFIG is set' : 'no such file' },
    {
      where: 'in-cluster service account',
      found: existsSync(SERVICE_ACCOUNT_TOKEN_PATH) ? 'KUBERNETES_SERVICE_HOST not set' : `no token at ${SERVICE_ACCOUNT_TOKEN_PATH}`,
    },
  ];
}

function homeConfig(env: Readonly<Record<string, string | undefined>>): string {
  return path.join(env['HOME'] || homedir(), '.kube', 'config');
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? 'unknown error';
}
