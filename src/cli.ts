#!/usr/bin/env node
/**
 * Entry point: the only place that reads process.argv, process.env and stdin, and decides
 * exit codes. Each command lives in src/commands/.
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { ConfigError } from './config.ts';
import { InputError } from './check/load-manifests.ts';
import { UsageError, type CommandIO } from './commands/io.ts';
import { isSupportedNode, unsupportedNodeMessage } from './node-version.ts';
import { loadClientWithoutGeneratedApi } from './kube/client-modules.ts';

const USAGE = `Usage: mesh-admission <command> [options]

Commands:
  serve            run the admission webhook (HTTPS) and its probe port
  check            check manifest files offline with the webhook's rules
  webhook-config   print webhook configurations for a webhook served at a URL
  certs            generate a CA and serving certificate, print the caBundle
  audit            apply the rules to the objects of a live cluster
  rules            list every rule: id, severity, kinds, Istio codes
  policies         print the Service rules as ValidatingAdmissionPolicies (no webhook needed)

Run \`mesh-admission <command> --help\` for a command's options.
`;

type Command = (argv: readonly string[], io: CommandIO) => Promise<number>;

/**
 * Each command is loaded when it runs: `audit` (and the cluster features of `serve`) bring in
 * @kubernetes/client-node, about 0.5 s and 60 MB that `serve` would otherwise pay at every
 * start, before it can become ready.
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  serve: async () => (await import('./commands/serve.ts')).serveCommand,
  check: async () => (await import('./commands/check.ts')).checkCommand,
  'webhook-config': async () => (await import('./commands/webhook-config.ts')).webhookConfigCommand,
  certs: async () => (await import('./commands/certs.ts')).certsCommand,
  audit: async () => (await import('./commands/audit.ts')).auditCommand,
  rules: async () => (await import('./commands/rules.ts')).rulesCommand,
  policies: async () => (await import('./commands/policies.ts')).policiesCommand,
};

/**
 * Which invocations need a current Node: certificate generation (serve, certs) and the
 * Kubernetes client (audit, check --cluster). Offline `check`, `webhook-config` and every
 * `--help` run on older versions too.
 */
const NEEDS_CURRENT_NODE: Record<string, (args: readonly string[]) => boolean> = {
  serve: () => true,
  certs: () => true,
  audit: () => true,
  check: (args) => args.includes('--cluster'),
};

function asksForHelp(args: readonly string[]): boolean {
  return args.includes('--help') || args.includes('-h');
}

/** By name rather than instanceof: importing the class would load @kubernetes/client-node. */
function isKubeConfigError(error: unknown): error is Error {
  return error instanceof Error && error.name === 'KubeConfigError';
}

export async function runCli(argv: readonly string[], io: CommandIO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout(USAGE);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    io.stderr(`mesh-admission: unknown command "${name}"\n\n${USAGE}`);
    return 2;
  }
  if (NEEDS_CURRENT_NODE[name]?.(rest) && !asksForHelp(rest) && !isSupportedNode(io.nodeVersion)) {
    io.stderr(unsupportedNodeMessage(name, io.nodeVersion));
    return 2;
  }
  try {
    return await (await command())(rest, io);
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr(`mesh-admission ${name}: ${(error as Error).message}\nRun \`mesh-admission ${name} --help\` for usage.\n`);
      return 2;
    }
    if (error instanceof InputError || error instanceof ConfigError || isKubeConfigError(error)) {
      io.stderr(`mesh-admission ${name}: ${error.message}\n`);
      return 2;
    }
    // A failed system call (port in use, permission denied) is the environment, not a bug: its message says it all.
    // Wrapped ones (the certificate files add which directory and why) count too.
    const systemError = error instanceof Error && isSystemError(error);
    io.stderr(`mesh-admission ${name}: ${systemError ? error.message : ((error as Error).stack ?? String(error))}\n`);
    // check and audit reserve 1 for "violations found": any other failure is 2.
    return name === 'check' || name === 'audit' ? 2 : 1;
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** True when this file is the program being run (directly or through the npm bin symlink), not imported. */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  loadClientWithoutGeneratedApi();
  const io: CommandIO = {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    stderrIsTTY: process.stderr.isTTY === true,
    readStdin,
    env: process.env,
    nodeVersion: process.versions.node,
  };
  runCli(process.argv.slice(2), io).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`mesh-admission: ${(error as Error).stack ?? String(error)}\n`);
      process.exitCode = 1;
    },
  );
}

/** Whether a failed system call is the error or, a few wrappings down, its cause. */
function isSystemError(error: unknown, depth = 0): boolean {
  if (!(error instanceof Error) || depth > 4) return false;
  return typeof (error as NodeJS.ErrnoException).syscall === 'string' || isSystemError(error.cause, depth + 1);
}
