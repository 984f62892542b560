/**
 * What KubeConfig's module takes from socks-proxy-agent, socks and hpagent (see
 * ../client-modules.ts): the agents it builds for a cluster reached through a `proxy-url`,
 * and the SOCKS client behind them. Imported at the module's top, they cost 3 MiB of resident
 * memory in every cluster command, though a kubeconfig rarely names a proxy; here each package
 * is loaded when a proxy is first used.
 */
import { libraryRequire } from './library-require.ts';

type Constructor = new (...args: unknown[]) => object;

function exported<T>(specifier: string, name: string): T {
  return (libraryRequire(specifier) as Record<string, T>)[name] as T;
}

// A constructor that returns an object makes `new` yield that object: callers get the packages' own instances.
export class SocksProxyAgent {
  constructor(...args: unknown[]) {
    return new (exported<Constructor>('socks-proxy-agent', 'SocksProxyAgent'))(...args);
  }
}

export class HttpProxyAgent {
  constructor(...args: unknown[]) {
    return new (exported<Constructor>('hpagent', 'HttpProxyAgent'))(...args);
  }
}

export class HttpsProxyAgent {
  constructor(...args: unknown[]) {
    return new (exported<Constructor>('hpagent', 'HttpsProxyAgent'))(...args);
  }
}

export const SocksClient = {
  createConnection(...args: unknown[]): unknown {
    return exported<{ createConnection: (...args: unknown[]) => unknown }>('socks', 'SocksClient').createConnection(...args);
  },
};
