/**
 * The oldest Node.js the cluster client and the certificate code run on. Older versions fail
 * deep inside a dependency with a TypeError, so the CLI checks first and says what to do.
 */
export const MINIMUM_NODE = { major: 22, minor: 19 } as const;

/** True when `version` (as in process.versions.node, e.g. "20.20.2") is at least MINIMUM_NODE. */
export function isSupportedNode(version: string): boolean {
  const [major = 0, minor = 0] = version.replace(/^v/, '').split('.').map((part) => Number.parseInt(part, 10));
  return major > MINIMUM_NODE.major || (major === MINIMUM_NODE.major && minor >= MINIMUM_NODE.minor);
}

/** The one line printed instead of running `command` on an older Node. */
export function unsupportedNodeMessage(command: string, version: string): string {
  return (
    `mesh-admission ${command}: needs Node.js >= ${MINIMUM_NODE.major}.${MINIMUM_NODE.minor}, this is ${version.replace(/^v?/, 'v')}; ` +
    '`npm start` and `npx mesh-admission` run it on the project\'s own Node 24\n'
  );
}
