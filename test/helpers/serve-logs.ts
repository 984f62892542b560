/**
 * Follows the JSON log lines a `mesh-admission serve` child process writes to stdout, so a
 * test can wait for a line (above all "mesh-admission serving", which carries the ports).
 */
import type { ChildProcess } from 'node:child_process';

export type LogLine = Record<string, unknown>;

export interface ServeLogs {
  /** Every line so far, parsed. */
  readonly lines: LogLine[];
  /** The first line (already seen or still to come) that matches; rejects after timeoutMs. */
  waitFor(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** The "mesh-admission serving" line; rejects early if the process exits first. */
  serving(timeoutMs?: number): Promise<{ webhookPort: number; probePort: number } & LogLine>;
}

export function followServeLogs(child: ChildProcess): ServeLogs {
  const lines: LogLine[] = [];
  const waiters: { match: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[] = [];
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  let buffer = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let newline;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const text = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        continue; // not a log line
      }
      lines.push(line);
      for (const waiter of waiters.filter((w) => w.match(line))) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  });

  const waitFor = (match: (line: LogLine) => boolean, timeoutMs = 30_000) =>
    new Promise<LogLine>((resolve, reject) => {
      const seen = lines.find(match);
      if (seen) return resolve(seen);
      const timer = setTimeout(() => reject(new Error(`log line never came within ${timeoutMs} ms; stderr:\n${stderr}\nlog:\n${lines.map((l) => JSON.stringify(l)).join('\n')}`)), timeoutMs);
      timer.unref();
      waiters.push({ match, resolve: (line) => { clearTimeout(timer); resolve(line); } });
      child.once('exit', (code) => reject(new Error(`serve exited with ${code} before the expected log line; stderr:\n${stderr}`)));
    });

  return {
    lines,
    waitFor,
    serving: (timeoutMs) => waitFor((line) => line['msg'] === 'mesh-admission serving', timeoutMs) as Promise<{ webhookPort: number; probePort: number } & LogLine>,
  };
}
