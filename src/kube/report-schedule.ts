/**
 * Runs a task now and then again every interval, one run at a time: the next run is planned
 * only when the previous one has settled, `intervalMs` after it ended, so a run slower than
 * the interval never overlaps the next or queues a burst of them. A failed run is handed to
 * `onFailure` and the schedule goes on. Closing cancels the planned run and aborts the signal
 * of the one in flight, so a shutdown does not wait for a whole audit of a large cluster.
 * Pure timing: the timer is injected, so tests drive it.
 */
export interface Timer {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const REAL_TIMER: Timer = {
  setTimeout: (callback, ms) => {
    const handle = setTimeout(callback, ms);
    // A pending report run must not keep the process alive once everything else has stopped.
    handle.unref();
    return handle;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface Schedule {
  /**
   * Plans no further run, cancels the pending one and aborts the signal of a run in flight;
   * that run's outcome is still reported, unless it failed because it was aborted.
   */
  close(): void;
  /** Settles when no run is in flight (at once when none is). */
  idle(): Promise<void>;
}

export interface ScheduleOptions<T> {
  readonly intervalMs: number;
  /** One run; it should stop soon after `signal` aborts (between two API calls, say). */
  readonly run: (signal: AbortSignal) => Promise<T>;
  readonly onSuccess: (result: T, durationMs: number) => void;
  readonly onFailure: (error: unknown, durationMs: number) => void;
  readonly timer?: Timer | undefined;
  /** Milliseconds since some fixed point, for the durations (injected by tests). */
  readonly now?: (() => number) | undefined;
}

/** Starts the first run at once (on the next timer tick) and returns the handle that stops them. */
export function startSchedule<T>(options: ScheduleOptions<T>): Schedule {
  const timer = options.timer ?? REAL_TIMER;
  const now = options.now ?? (() => performance.now());
  const stop = new AbortController();
  let closed = false;
  let pending: unknown;
  let inFlight: Promise<void> | undefined;

  const plan = (delayMs: number) => {
    pending = timer.setTimeout(() => {
      pending = undefined;
      inFlight = runOnce().finally(() => {
        inFlight = undefined;
        if (!closed) plan(options.intervalMs);
      });
    }, delayMs);
  };

  const runOnce = async () => {
    const started = now();
    try {
      options.onSuccess(await options.run(stop.signal), now() - started);
    } catch (error) {
      if (!(stop.signal.aborted && error === stop.signal.reason)) options.onFailure(error, now() - started);
    }
  };

  plan(0);
  return {
    close() {
      closed = true;
      stop.abort(new Error('the schedule was closed'));
      if (pending !== undefined) timer.clearTimeout(pending);
      pending = undefined;
    },
    idle: () => inFlight ?? Promise.resolve(),
  };
}
