/**
 * `require` as seen from @kubernetes/client-node's own folder, so a stand-in that loads a
 * dependency on first use gets the very copy the library would have imported. Resolved from
 * the library's package, not from one of its modules: the resolution hooks
 * (../client-modules.ts) would hand a stand-in back for those.
 */
import { createRequire } from 'node:module';

export const libraryRequire = createRequire(import.meta.resolve('@kubernetes/client-node/package.json'));
