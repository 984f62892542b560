/** Runs the CLI in-process with captured output, as the entry point would with real streams. */
import { runCli } from '../../src/cli.ts';

export async function runCliCaptured(argv: string[], stdin = '', env: Record<string, string> = {}, nodeVersion = process.versions.node) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    stdout: (s) => {
      stdout += s;
    },
    stderr: (s) => {
      stderr += s;
    },
    readStdin: async () => stdin,
    env,
    nodeVersion,
  });
  return { code, stdout, stderr };
}
