/**
 * What @kubernetes/client-node's modules take from undici (see ../client-modules.ts): `fetch`
 * and the two dispatcher classes KubeConfig builds for it. KubeConfig's module and the
 * generated configuration import undici at their top, which loads the whole HTTP client
 * (6.5 MiB of heap, 28 MiB of resident memory in a bare process), although the cluster
 * commands never make a fetch call through them: their requests go through node:https
 * (../api-request.ts). Here undici is loaded on first use, from where the library itself
 * would load it.
 */
import { createRequire } from 'node:module';

type Dispatcher = new (...args: unknown[]) => object;

interface UndiciModule {
  readonly Agent: Dispatcher;
  readonly ProxyAgent: Dispatcher;
  readonly fetch: (...args: unknown[]) => Promise<unknown>;
}

let loaded: UndiciModule | undefined;

function undici(): UndiciModule {
  // Resolved from the library's folder, as its modules resolve it, but not from one of them:
  // the resolution hooks would hand this very stand-in back.
  loaded ??= createRequire(import.meta.resolve('@kubernetes/client-node/package.json'))('undici') as UndiciModule;
  return loaded;
}

export function fetch(...args: unknown[]): Promise<unknown> {
  return undici().fetch(...args);
}

// A constructor that returns an object makes `new` yield that object: callers get undici's own instances.
export class Agent {
  constructor(...args: unknown[]) {
    return new (undici().Agent)(...args);
  }
}

export class ProxyAgent {
  constructor(...args: unknown[]) {
    return new (undici().ProxyAgent)(...args);
  }
}
