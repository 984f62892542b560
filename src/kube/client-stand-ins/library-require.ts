/**
 * What the stand-ins that load a dependency of @kubernetes/client-node on first use share.
 * `libraryRequire` is `require` as seen from the library's own folder, so a stand-in gets the
 * very copy the library would have imported; it is resolved from the library's package, not
 * from one of its modules, for which the resolution hooks (../client-modules.ts) would hand a
 * stand-in back.
 */
import { createRequire } from 'node:module';

export const libraryRequire = createRequire(import.meta.resolve('@kubernetes/client-node/package.json'));

export type Constructor = new (...args: unknown[]) => object;

/**
 * A class whose `new` loads the real class (`load`, on first use) and yields an instance of it:
 * a constructor that returns an object makes `new` yield that object, so callers get the
 * package's own instances.
 */
export function constructedOnDemand(load: () => Constructor): Constructor {
  return class {
    constructor(...args: unknown[]) {
      return new (load())(...args);
    }
  };
}
