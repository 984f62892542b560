/**
 * The schedule of `serve --report-interval` (src/kube/report-schedule.ts), driven by a fake
 * timer and runs the test settles by hand: the first run at once, the next only an interval
 * after the previous one settled (never two at a time), failures reported and retried, and
 * nothing planned or run after close.
 */
import t from 'tap';
import { REAL_TIMER, startSchedule, type Timer } from '../src/kube/report-schedule.ts';

interface Planned {
  readonly callback: () => void;
  readonly ms: number;
}

function fakeTimer() {
  const pending = new Map<number, Planned>();
  let next = 1;
  const timer: Timer = {
    setTimeout: (callback, ms) => {
      pending.set(next, { callback, ms });
      return next++;
    },
    clearTimeout: (handle) => void pending.delete(handle as number),
  };
  return {
    timer,
    /** The delays of the timers now pending. */
    delays: () => [...pending.values()].map((p) => p.ms),
    /** Fires the only pending timer, as its time would have come. */
    fire: () => {
      if (pending.size !== 1) throw new Error(`expected one pending timer, found ${pending.size}`);
      const [handle, planned] = [...pending.entries()][0]!;
      pending.delete(handle);
      planned.callback();
    },
  };
}

/** Runs the test settles by hand, counting how many are in flight at once. */
function controlledRuns() {
  const settle: { resolve: (value: string) => void; reject: (error: unknown) => void }[] = [];
  const signals: AbortSignal[] = [];
  let inFlight = 0;
  let mostInFlight = 0;
  return {
    run: (signal: AbortSignal) => {
      signals.push(signal);
      inFlight++;
      mostInFlight = Math.max(mostInFlight, inFlight);
      return new Promise<string>((resolve, reject) => settle.push({ resolve, reject })).finally(() => inFlight--);
    },
    started: () => settle.length,
    mostInFlight: () => mostInFlight,
    /** The signal the latest run was given. */
    signal: () => signals[signals.length - 1]!,
    resolve: (value: string) => settle[settle.length - 1]!.resolve(value),
    reject: (error: unknown) => settle[settle.length - 1]!.reject(error),
  };
}

t.test('the first run at once, the next an interval after the previous one settled, never two at a time', async (t) => {
  const clock = fakeTimer();
  const runs = controlledRuns();
  const outcomes: string[] = [];
  let time = 0;
  const schedule = startSchedule({
    intervalMs: 60_000,
    run: runs.run,
    onSuccess: (result, durationMs) => outcomes.push(`${result} in ${durationMs}`),
    onFailure: (error) => outcomes.push(`failed: ${(error as Error).message}`),
    timer: clock.timer,
    now: () => time,
  });
  t.same(clock.delays(), [0], 'the first run is planned at once');
  t.equal(runs.started(), 0, '... on the next tick, not inside startSchedule');
  clock.fire();
  t.equal(runs.started(), 1);
  t.same(clock.delays(), [], 'while a run is in flight nothing else is planned');
  time = 250_000;
  runs.resolve('first');
  await schedule.idle();
  t.same(outcomes, ['first in 250000'], 'a run longer than the interval is reported with its duration');
  t.same(clock.delays(), [60_000], 'the next run an interval after it ended, not at once to catch up');
  clock.fire();
  time = 250_500;
  runs.resolve('second');
  await schedule.idle();
  t.same(outcomes, ['first in 250000', 'second in 500']);
  t.equal(runs.mostInFlight(), 1, 'never two runs at a time');
  schedule.close();
});

t.test('a failed run is reported and the schedule goes on', async (t) => {
  const clock = fakeTimer();
  const runs = controlledRuns();
  const outcomes: string[] = [];
  const schedule = startSchedule({
    intervalMs: 1_000,
    run: runs.run,
    onSuccess: (result) => outcomes.push(result),
    onFailure: (error) => outcomes.push(`failed: ${(error as Error).message}`),
    timer: clock.timer,
  });
  clock.fire();
  runs.reject(new Error('policyreports.wgpolicyk8s.io is forbidden'));
  await schedule.idle();
  t.same(outcomes, ['failed: policyreports.wgpolicyk8s.io is forbidden']);
  t.same(clock.delays(), [1_000], 'retried an interval later');
  clock.fire();
  runs.resolve('written');
  await schedule.idle();
  t.same(outcomes, ['failed: policyreports.wgpolicyk8s.io is forbidden', 'written']);
  schedule.close();
});

t.test('a report handler that throws counts as a failed run, not a stopped schedule', async (t) => {
  const clock = fakeTimer();
  const failures: string[] = [];
  const schedule = startSchedule({
    intervalMs: 1_000,
    run: async () => 'done',
    onSuccess: () => {
      throw new Error('handler broke');
    },
    onFailure: (error) => failures.push((error as Error).message),
    timer: clock.timer,
  });
  clock.fire();
  await schedule.idle();
  t.same(failures, ['handler broke']);
  t.same(clock.delays(), [1_000]);
  schedule.close();
});

t.test('close cancels the planned run', async (t) => {
  const clock = fakeTimer();
  const runs = controlledRuns();
  const schedule = startSchedule({ intervalMs: 1_000, run: runs.run, onSuccess: () => {}, onFailure: () => {}, timer: clock.timer });
  clock.fire();
  runs.resolve('first');
  await schedule.idle();
  t.same(clock.delays(), [1_000]);
  schedule.close();
  t.same(clock.delays(), [], 'the pending timer is cleared');
  t.equal(runs.started(), 1, 'no run after close');
  schedule.close();
  t.same(clock.delays(), [], 'closing twice is harmless');
});

t.test('close during a run: its signal aborts; a run that finishes anyway is reported, nothing is planned after it', async (t) => {
  const clock = fakeTimer();
  const runs = controlledRuns();
  const outcomes: string[] = [];
  const schedule = startSchedule({ intervalMs: 1_000, run: runs.run, onSuccess: (result) => outcomes.push(result), onFailure: () => outcomes.push('failed'), timer: clock.timer });
  clock.fire();
  t.equal(runs.signal().aborted, false, 'a running run is not told to stop');
  schedule.close();
  t.equal(runs.signal().aborted, true, 'close tells the run in flight to stop');
  runs.resolve('last');
  await schedule.idle();
  t.same(outcomes, ['last']);
  t.same(clock.delays(), [], 'no next run planned');
  t.equal(runs.started(), 1);
});

t.test('a run stopped by close is no failure; any other failure after close still is', async (t) => {
  for (const [how, failure, expected] of [['stopped by the abort', undefined, []], ['failing on its own', new Error('HTTP 500'), ['HTTP 500']]] as const) {
    const clock = fakeTimer();
    const runs = controlledRuns();
    const failures: string[] = [];
    const schedule = startSchedule({ intervalMs: 1_000, run: runs.run, onSuccess: () => {}, onFailure: (error) => failures.push((error as Error).message), timer: clock.timer });
    clock.fire();
    schedule.close();
    runs.reject(failure ?? runs.signal().reason);
    await schedule.idle();
    t.same(failures, expected, how);
  }
});

t.test('close before the first run: it never runs', async (t) => {
  const clock = fakeTimer();
  const runs = controlledRuns();
  const schedule = startSchedule({ intervalMs: 1_000, run: runs.run, onSuccess: () => {}, onFailure: () => {}, timer: clock.timer });
  schedule.close();
  t.same(clock.delays(), []);
  t.equal(runs.started(), 0);
  await schedule.idle();
});

t.test('the real timer does not keep the process alive', async (t) => {
  const handle = REAL_TIMER.setTimeout(() => t.fail('cleared before it fires'), 60_000) as NodeJS.Timeout;
  t.equal(handle.hasRef(), false, 'unref: a waiting report run never holds off the exit');
  REAL_TIMER.clearTimeout(handle);
});
