/**
 * Reloads the serving certificate when the files in the certificate directory change, so a
 * renewed certificate is used without a restart.
 *
 * The DIRECTORY is watched, not the files: kubelet updates a mounted Secret by writing a new
 * timestamped directory and atomically swapping the `..data` symlink that `tls.crt` and
 * `tls.key` point through. The files' own inodes never change, so a watch on them never fires,
 * while the directory sees the swap. `ensureCertificates` also replaces files by rename, which
 * a watch on the old inode would miss too.
 */

import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { certificatePaths, parseCertificate, parsePrivateKey, readOptionalFile } from './certificate-files.ts';

/** The PEM text the HTTPS server needs (`tls.crt` may hold a chain after the leaf). */
export interface ServingPair {
  readonly cert: string;
  readonly key: string;
}

export interface WatchOptions {
  /**
   * Quiet time after the last change before reading: a rotation is several file system
   * events (new directory, symlink, rename, cleanup), and reading in between could see a
   * certificate without its key.
   */
  readonly debounceMs?: number | undefined;
  /** Invalid or unreadable files; the previous certificate stays in use. */
  readonly onError?: ((error: Error) => void) | undefined;
  /** The pair being served now; when omitted the files are read once, synchronously, at start. */
  readonly current?: ServingPair | undefined;
}

export interface CertificateWatcher {
  close(): void;
}

export const DEFAULT_DEBOUNCE_MS = 200;

/** Throws unless the text is a certificate with the private key that belongs to it. */
function checkPair(pair: ServingPair, certFile: string, keyFile: string): void {
  const cert = parseCertificate(pair.cert, certFile);
  const key = parsePrivateKey(pair.key, keyFile);
  if (!cert.checkPrivateKey(key)) throw new Error(`${keyFile} does not belong to ${certFile}`);
}

/** Reads and validates `tls.crt` and `tls.key`; errors name the file at fault. */
export async function loadServingPair(dir: string): Promise<ServingPair> {
  const paths = certificatePaths(dir);
  const [cert, key] = await Promise.all([readOptionalFile(paths.cert), readOptionalFile(paths.key)]);
  if (cert === undefined) throw new Error(`${paths.cert} does not exist`);
  if (key === undefined) throw new Error(`${paths.key} does not exist`);
  const pair = { cert, key };
  checkPair(pair, paths.cert, paths.key);
  return pair;
}

/** The valid pair on disk now, or undefined: the baseline that later changes compare with. */
function readPairSync(dir: string): ServingPair | undefined {
  const paths = certificatePaths(dir);
  try {
    const pair = { cert: readFileSync(paths.cert, 'utf8'), key: readFileSync(paths.key, 'utf8') };
    checkPair(pair, paths.cert, paths.key);
    return pair;
  } catch {
    // No valid baseline: the first valid pair that appears is reported as a change.
    return undefined;
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * Calls `onChange` with the new pair each time `tls.crt`/`tls.key` in `dir` change to a valid
 * pair different from the one in use. Throws, naming the directory, when it cannot be watched.
 */
export function watchCertificates(
  dir: string,
  onChange: (pair: ServingPair) => void,
  opts: WatchOptions = {},
): CertificateWatcher {
  const debounceMs = opts.debounceMs ?? DEFAULT_DEBOUNCE_MS;
  let active = opts.current ?? readPairSync(dir);
  let closed = false;
  const report = (error: unknown): void => {
    if (!closed) opts.onError?.(asError(error));
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  // A change arriving while a reload is reading files triggers one more reload afterwards,
  // so the last state on disk is always the one that wins.
  let reloading = false;
  let reloadAgain = false;

  const reload = async (): Promise<void> => {
    if (reloading) {
      reloadAgain = true;
      return;
    }
    reloading = true;
    try {
      do {
        reloadAgain = false;
        try {
          const pair = await loadServingPair(dir);
          if (closed) return;
          if (active !== undefined && pair.cert === active.cert && pair.key === active.key) continue;
          onChange(pair);
          // Only a pair the caller accepted becomes the baseline; if onChange threw, the same
          // files are offered again on the next change.
          active = pair;
        } catch (error) {
          report(error);
        }
      } while (reloadAgain && !closed);
    } finally {
      reloading = false;
    }
  };

  const schedule = (): void => {
    if (closed) return;
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      void reload();
    }, debounceMs);
  };

  let watcher: FSWatcher;
  try {
    // Every event in the directory counts: the names involved in a Secret rotation
    // (`..data_tmp`, `..2024_01_01_...`) are not the certificate files themselves.
    watcher = watch(dir, schedule);
  } catch (error) {
    throw new Error(`cannot watch certificate directory ${dir}: ${asError(error).message}`, { cause: error });
  }
  watcher.on('error', (error) => report(new Error(`watching certificate directory ${dir} failed: ${error.message}`, { cause: error })));

  return {
    close(): void {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      watcher.close();
    },
  };
}
