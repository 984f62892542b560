// Runs before `npm start`: compiles src/ to dist/ when dist is missing or older than any source file.
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

let built = 0;
try {
  built = statSync('dist/cli.js').mtimeMs;
} catch {
  built = 0;
}
const sources = Math.max(newestMtime('src'), statSync('package-lock.json').mtimeMs);
if (built < sources) {
  process.stderr.write('mesh-admission: building dist/ ...\n');
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
}
