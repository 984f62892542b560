/**
 * Loads the parts of @kubernetes/client-node the cluster commands use (KubeConfig, ListWatch)
 * without the generated API: KubeConfig's module imports the generated code's index
 * for two small functions, and ListWatch's imports the model serializer for label and field
 * selectors. Either drags in every generated API and its 2,700 models, which alone took a
 * process from 42 to 125 MiB of resident memory; without them `audit` and the webhook's
 * caches fit the pod's memory budget in large clusters (`npm run bench:scale`).
 *
 * Node's module resolution hooks hand those two importing modules stand-ins (./client-stand-ins/)
 * that re-export just what they use from the library's own files. The same hooks hand the
 * library's modules stand-ins that load, on first use, what most runs never use: undici (28 MiB
 * of resident memory; the cluster commands never fetch through the library), the proxy agents
 * (a kubeconfig's `proxy-url`) and the OIDC authenticator with openid-client. The program's
 * own API calls (lists, the certificate Secret, the webhook configurations' caBundle, the
 * EndpointSlices) are plain requests (`api-request.ts`), and so are the informers' watches
 * (`watch-request.ts`), so `serve` and the cluster commands load neither generated code nor
 * undici; only `serve`'s report writer imports the library's index, lazily, when it writes
 * reports, and then loads it whole, sharing the same configuration modules. Registered by the
 * entry point before any command loads the client; tests that import the client directly load
 * it whole, which behaves the same.
 */
// The namespace, not a named import: the offline commands also run on Node versions without registerHooks.
import * as nodeModule from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const LIBRARY = '/@kubernetes/client-node/dist/';

/** Our own modules run as .ts in a checkout and as .js when built. */
const EXTENSION = path.extname(fileURLToPath(import.meta.url));

/** Importing module (within the library's dist/) and specifier → the stand-in. */
const STAND_INS: readonly { readonly importer: string; readonly specifier: string; readonly standIn: string }[] = [
  { importer: 'config.js', specifier: './gen/index.js', standIn: 'generated-configuration' },
  { importer: 'cache.js', specifier: './serializer.js', standIn: 'selector-serializer' },
  { importer: 'config.js', specifier: 'undici', standIn: 'undici-on-demand' },
  { importer: 'gen/http/isomorphic-fetch.js', specifier: 'undici', standIn: 'undici-on-demand' },
  { importer: 'watch.js', specifier: 'undici', standIn: 'undici-on-demand' },
  { importer: 'config.js', specifier: 'socks-proxy-agent', standIn: 'proxy-agents-on-demand' },
  { importer: 'config.js', specifier: 'socks', standIn: 'proxy-agents-on-demand' },
  { importer: 'config.js', specifier: 'hpagent', standIn: 'proxy-agents-on-demand' },
  { importer: 'config.js', specifier: './oidc_auth.js', standIn: 'oidc-auth-on-demand' },
];

let registered = false;

/** Whether the hooks are in place (Node versions before 22.15 have no registerHooks; they load the client whole). */
export function loadClientWithoutGeneratedApi(): boolean {
  if (registered) return true;
  if (typeof nodeModule.registerHooks !== 'function') return false;
  registered = true;
  nodeModule.registerHooks({
    resolve(specifier, context, nextResolve) {
      const parent = context.parentURL;
      if (parent?.includes(LIBRARY)) {
        const importer = parent.slice(parent.lastIndexOf(LIBRARY) + LIBRARY.length);
        const match = STAND_INS.find((entry) => entry.importer === importer && entry.specifier === specifier);
        if (match) return { url: new URL(`./client-stand-ins/${match.standIn}${EXTENSION}`, import.meta.url).href, shortCircuit: true };
      }
      return nextResolve(specifier, context);
    },
  });
  return true;
}
