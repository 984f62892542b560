/**
 * What @kubernetes/client-node's modules take from undici (see ../client-modules.ts): `fetch`
 * and the two dispatcher classes KubeConfig builds for it. KubeConfig's module and the
 * generated configuration import undici at their top, which loads the whole HTTP client
 * (6.5 MiB of heap, 28 MiB of resident memory in a bare process), although the cluster
 * commands never make a fetch call through them: their requests go through node:https
 * (../api-request.ts). Here undici is loaded on first use.
 */
import { constructedOnDemand, libraryRequire, type Constructor } from './library-require.ts';

interface UndiciModule {
  readonly Agent: Constructor;
  readonly ProxyAgent: Constructor;
  readonly fetch: (...args: unknown[]) => Promise<unknown>;
}

let loaded: UndiciModule | undefined;

function undici(): UndiciModule {
  loaded ??= libraryRequire('undici') as UndiciModule;
  return loaded;
}

export function fetch(...args: unknown[]): Promise<unknown> {
  return undici().fetch(...args);
}

export const Agent = constructedOnDemand(() => undici().Agent);
export const ProxyAgent = constructedOnDemand(() => undici().ProxyAgent);
