/**
 * What @kubernetes/client-node's KubeConfig takes from the generated code's index, from the
 * library's own files (see ../client-modules.ts): the same modules the index re-exports.
 */
export { createConfiguration } from '@kubernetes/client-node/dist/gen/configuration.js';
export { ServerConfiguration } from '@kubernetes/client-node/dist/gen/servers.js';
