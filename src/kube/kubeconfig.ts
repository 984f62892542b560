/**
 * Kubeconfig loading for the commands that talk to a cluster: the usual resolution
 * (KUBECONFIG, ~/.kube/config, in-cluster service account), optionally another context.
 */
import { KubeConfig } from '@kubernetes/client-node';

export interface KubeConfigOptions {
  /** A context of the kubeconfig other than the current one (`--context`). */
  readonly context?: string | undefined;
}

export class KubeConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KubeConfigError';
  }
}

export function loadKubeConfig(options: KubeConfigOptions = {}): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
  if (options.context !== undefined) {
    if (!kubeConfig.getContextObject(options.context)) {
      const known = kubeConfig.getContexts().map((c) => c.name);
      throw new KubeConfigError(`no context "${options.context}" in the kubeconfig (known: ${known.join(', ') || 'none'})`);
    }
    kubeConfig.setCurrentContext(options.context);
  }
  if (!kubeConfig.getCurrentCluster()) {
    throw new KubeConfigError('no cluster configured: set KUBECONFIG, create ~/.kube/config, or run inside a cluster');
  }
  return kubeConfig;
}
