/**
 * One status line on a terminal, rewritten in place (carriage return + erase line), for
 * commands that run long on a large cluster. Only for a TTY: redirected to a file or a CI log
 * it would be noise, so callers create it only when stderr is a terminal.
 */
export interface ProgressLine {
  show(text: string): void;
  /** Erases the line, so the command's own output starts on a clean one. */
  clear(): void;
}

/** Rewrites at most every `intervalMs` (default 100 ms): a terminal need not show every page. */
export function progressLine(write: (text: string) => void, intervalMs = 100): ProgressLine {
  let shownAt = -Infinity;
  let shown = false;
  return {
    show(text) {
      const now = performance.now();
      if (now - shownAt < intervalMs) return;
      shownAt = now;
      shown = true;
      write(`\r\x1b[K${text}`);
    },
    clear() {
      if (shown) write('\r\x1b[K');
      shown = false;
    },
  };
}
