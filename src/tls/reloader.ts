/**
 * Reloads the serving certificate when the files in the certificate directory change, so a
 * renewed certificate is used without a restart, and refuses a pair that start-up would not
 * serve either (see `certificate-decision.ts`).
 *
 * The DIRECTORY is watched, not the files: kubelet updates a mounted Secret by writing a new
 * timestamped directory and atomically swapping the `..data` symlink that `tls.crt` and
 * `tls.key` point through. The files' own inodes never change, so a watch on them never fires,
 * while the directory sees the swap. `ensureCertificates` also replaces files by rename, which
 * a watch on the old inode would miss too.
 *
 * A watch on a directory dies with the directory: once it is deleted (or renamed away) and
 * created again, the old watch sees nothing. So the parent directory is watched for the
 * directory's own name, a slow poll catches what neither watch reports (a parent that is
 * itself replaced, a file system without change events), and each reload re-arms the
 * directory watch when the directory is a new one.
 */

import { readFileSync, statSync, watch, type FSWatcher, type Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { certificatePaths, errorCode, parseCertificate, parsePrivateKey, readOptionalFile } from './certificate-files.ts';
import { parseMaterial, servingProblem } from './certificate-decision.ts';

/** The PEM text the HTTPS server needs (`tls.crt` may hold a chain after the leaf). */
export interface ServingPair {
  readonly cert: string;
  readonly key: string;
}

/** What a pair on disk must satisfy, beyond a certificate with its key, to be served. */
export interface ReloadRequirements {
  /** The name the API server dials; the certificate must cover it. */
  readonly hostname?: string | undefined;
  /**
   * The ca.crt the server started with: the chain is checked against it when the directory
   * has no ca.crt of its own (otherwise against that one, which is what the caBundle is made of).
   */
  readonly startupCa?: string | undefined;
  /** The current time; tests pass a fixed one. */
  readonly now?: (() => Date) | undefined;
}

export type DirectoryEvent = 'removed' | 'recreated';

export interface WatchOptions {
  /**
   * Quiet time after the last change before reading: a rotation is several file system
   * events (new directory, symlink, rename, cleanup), and reading in between could see a
   * certificate without its key.
   */
  readonly debounceMs?: number | undefined;
  /** How often the directory is read without any event (the fallback for lost watches). */
  readonly pollIntervalMs?: number | undefined;
  readonly requirements?: ReloadRequirements | undefined;
  /**
   * Refused, invalid or unreadable files; the previous certificate stays in use. Reported once
   * per distinct content, not at every poll.
   */
  readonly onError?: ((error: Error) => void) | undefined;
  /** The files on disk are the pair in use again (after a change or a refused pair). */
  readonly onInSync?: (() => void) | undefined;
  /** The directory disappeared, or appeared again (a new directory): the watch follows it. */
  readonly onDirectory?: ((event: DirectoryEvent) => void) | undefined;
  /** The pair being served now; when omitted the files are read once, synchronously, at start. */
  readonly current?: ServingPair | undefined;
}

export interface CertificateWatcher {
  close(): void;
}

export const DEFAULT_DEBOUNCE_MS = 200;
export const DEFAULT_POLL_INTERVAL_MS = 10_000;

/** Throws unless the text is a certificate with the private key that belongs to it. */
function checkPair(pair: ServingPair, certFile: string, keyFile: string): void {
  const cert = parseCertificate(pair.cert, certFile);
  const key = parsePrivateKey(pair.key, keyFile);
  if (!cert.checkPrivateKey(key)) throw new Error(`${keyFile} does not belong to ${certFile}`);
}

/**
 * Reads `tls.crt` and `tls.key` and checks them as start-up does: the key belongs to the
 * certificate, the certificate is within its validity window, chains to the CA in use, and
 * covers the hostname. Errors name the file at fault and say why.
 */
export async function loadServingPair(dir: string, requirements: ReloadRequirements = {}): Promise<ServingPair> {
  const paths = certificatePaths(dir);
  const [cert, key, caCert] = await Promise.all([readOptionalFile(paths.cert), readOptionalFile(paths.key), readOptionalFile(paths.caCert)]);
  if (cert === undefined) throw new Error(`${paths.cert} does not exist`);
  if (key === undefined) throw new Error(`${paths.key} does not exist`);
  const trusted = caCert ?? requirements.startupCa;
  const names = { ...paths, caCert: caCert === undefined ? `the CA the server started with (${paths.caCert} is gone)` : paths.caCert };
  const material = parseMaterial({ cert, key, caCert: trusted }, names);
  const now = requirements.now?.() ?? new Date();
  // Also refuses a file that is not valid PEM, naming it.
  const problem = servingProblem(material, names, { now, hostname: requirements.hostname, renewBeforeDays: 0, caRenewBeforeDays: 0 });
  if (problem !== undefined) throw new Error(problem);
  return { cert, key };
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
 * Which directory is at the path, or undefined when none is (any other failure is thrown). A
 * directory deleted and created again often gets the same inode number back, so its creation
 * time is part of the identity.
 */
function identity(stats: Stats): string {
  return `${stats.ino}:${stats.birthtimeMs}`;
}

async function directoryIdentity(dir: string): Promise<string | undefined> {
  try {
    return identity(await stat(dir));
  } catch (error) {
    if (errorCode(error) === 'ENOENT' || errorCode(error) === 'ENOTDIR') return undefined;
    throw error;
  }
}

/** The pair as the reload compares it with the one in use; unreadable files read as undefined. */
async function readRawPair(dir: string): Promise<ServingPair | undefined> {
  const paths = certificatePaths(dir);
  try {
    const [cert, key] = await Promise.all([readOptionalFile(paths.cert), readOptionalFile(paths.key)]);
    return cert === undefined || key === undefined ? undefined : { cert, key };
  } catch {
    return undefined;
  }
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
  /** What was last reported, so a refused pair is reported once, not at every poll. */
  let lastReported: string | undefined;
  const report = (error: unknown, content: string): void => {
    if (closed || content === lastReported) return;
    lastReported = content;
    opts.onError?.(asError(error));
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  // A change arriving while a reload is reading files triggers one more reload afterwards,
  // so the last state on disk is always the one that wins.
  let reloading = false;
  let reloadAgain = false;

  const schedule = (): void => {
    if (closed) return;
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      void reload();
    }, debounceMs);
  };

  /** The watch on the directory itself, and which directory (inode) it is on. */
  let armed: { readonly watcher: FSWatcher; readonly directory: string } | undefined;
  const arm = (directory: string): void => {
    armed?.watcher.close();
    // Every event in the directory counts: the names involved in a Secret rotation
    // (`..data_tmp`, `..2024_01_01_...`) are not the certificate files themselves.
    const watcher = watch(dir, schedule);
    watcher.on('error', (error) => report(new Error(`watching certificate directory ${dir} failed: ${error.message}`, { cause: error }), `watch:${error.message}`));
    armed = { watcher, directory };
  };
  const disarm = (): void => {
    armed?.watcher.close();
    armed = undefined;
  };

  /** Follows the directory: false while it does not exist. */
  const followDirectory = async (): Promise<boolean> => {
    const directory = await directoryIdentity(dir);
    if (closed) return false;
    if (directory === undefined) {
      if (armed !== undefined) {
        disarm();
        opts.onDirectory?.('removed');
      }
      return false;
    }
    if (armed === undefined || armed.directory !== directory) {
      arm(directory);
      opts.onDirectory?.('recreated');
    }
    return true;
  };

  const reloadOnce = async (): Promise<void> => {
    if (!(await followDirectory())) return;
    const raw = await readRawPair(dir);
    if (closed) return;
    if (raw !== undefined && active !== undefined && raw.cert === active.cert && raw.key === active.key) {
      lastReported = undefined;
      opts.onInSync?.();
      return;
    }
    const content = raw === undefined ? 'unreadable' : `${raw.cert}\n${raw.key}`;
    let pair: ServingPair;
    try {
      pair = await loadServingPair(dir, opts.requirements);
    } catch (error) {
      report(error, `${content}\n${asError(error).message}`);
      return;
    }
    if (closed) return;
    try {
      onChange(pair);
    } catch (error) {
      // Only a pair the caller accepted becomes the baseline; the same files are offered
      // again on the next change.
      report(error, `${content}\n${asError(error).message}`);
      return;
    }
    active = pair;
    lastReported = undefined;
  };

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
          await reloadOnce();
        } catch (error) {
          report(error, `failure:${asError(error).message}`);
        }
      } while (reloadAgain && !closed);
    } finally {
      reloading = false;
    }
  };

  // The first watch is armed synchronously, so no change after this call is missed.
  try {
    arm(identity(statSync(dir)));
  } catch (error) {
    throw new Error(`cannot watch certificate directory ${dir}: ${asError(error).message}`, { cause: error });
  }
  // The parent sees the directory itself deleted, created or renamed into place.
  let parent: FSWatcher | undefined;
  try {
    const name = path.basename(dir);
    parent = watch(path.dirname(path.resolve(dir)), (_event, file) => {
      if (file === null || file === name) schedule();
    });
    parent.on('error', () => parent?.close());
  } catch {
    // An unwatchable parent leaves the poll to notice a replaced directory.
  }
  const poll = setInterval(schedule, opts.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS);
  poll.unref();

  return {
    close(): void {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      clearInterval(poll);
      disarm();
      parent?.close();
    },
  };
}
