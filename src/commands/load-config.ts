/** Reads the optional config file named by --config and builds the frozen Config. */
import { readFile } from 'node:fs/promises';
import { buildConfig, ConfigError, type Config } from '../config.ts';

export async function loadConfig(
  flags: Readonly<Record<string, string | undefined>>,
  env: Readonly<Record<string, string | undefined>>,
): Promise<Config> {
  const path = flags['config'] ?? env['MESH_ADMISSION_CONFIG'];
  let file: { path: string; text: string } | undefined;
  if (path) {
    try {
      file = { path, text: await readFile(path, 'utf8') };
    } catch (error) {
      throw new ConfigError('config', `cannot read config file ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  }
  return buildConfig({ flags, env, file });
}
