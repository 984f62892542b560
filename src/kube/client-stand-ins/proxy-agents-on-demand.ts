/**
 * What KubeConfig's module takes from socks-proxy-agent, socks and hpagent (see
 * ../client-modules.ts): the agents it builds for a cluster reached through a `proxy-url`,
 * and the SOCKS client behind them. Imported at the module's top, they cost 3 MiB of resident
 * memory in every cluster command, though a kubeconfig rarely names a proxy; here each package
 * is loaded when a proxy is first used.
 */
import { constructedOnDemand, libraryRequire, type Constructor } from './library-require.ts';

function exported<T>(specifier: string, name: string): T {
  return (libraryRequire(specifier) as Record<string, T>)[name] as T;
}

export const SocksProxyAgent = constructedOnDemand(() => exported<Constructor>('socks-proxy-agent', 'SocksProxyAgent'));
export const HttpProxyAgent = constructedOnDemand(() => exported<Constructor>('hpagent', 'HttpProxyAgent'));
export const HttpsProxyAgent = constructedOnDemand(() => exported<Constructor>('hpagent', 'HttpsProxyAgent'));

export const SocksClient = {
  createConnection(...args: unknown[]): unknown {
    return exported<{ createConnection: (...args: unknown[]) => unknown }>('socks', 'SocksClient').createConnection(...args);
  },
};
