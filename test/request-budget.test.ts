/** The request budget: body bytes and requests in flight, with one small request always open to an idle connection. */
import t from 'tap';
import { createRequestBudget, SMALL_BODY_BYTES } from '../src/http/request-budget.ts';

const MiB = 1024 * 1024;
const limits = { maxBodyBytesInFlight: 16 * MiB, maxRequestsInFlight: 3, bodyLimitBytes: 7 * MiB };

t.test('bodies reserve their declared length; what does not fit is refused until others end', async (t) => {
  const budget = createRequestBudget(limits);
  const [a, b] = [{}, {}];
  const first = budget.admit(a, 7 * MiB);
  const second = budget.admit(a, 7 * MiB);
  t.ok(first.admitted && second.admitted);
  const third = budget.admit(b, 7 * MiB);
  t.equal(third.admitted, false);
  t.match(third, { reason: 'body-bytes', message: /14680064 body bytes in flight, and this request's 7340032 would exceed its budget of 16777216/ });
  if (first.admitted) {
    first.release();
    first.release();
  }
  t.equal(budget.bodyBytesInFlight(), 7 * MiB, 'a release counts once');
  t.ok(budget.admit(b, 7 * MiB).admitted);
});

t.test('a request without Content-Length reserves the body limit', async (t) => {
  const budget = createRequestBudget(limits);
  t.ok(budget.admit({}, undefined).admitted);
  t.equal(budget.bodyBytesInFlight(), 7 * MiB);
  t.ok(budget.admit({}, 100 * MiB).admitted, 'a declared length over the limit reserves the limit (the framework answers 413)');
  t.equal(budget.bodyBytesInFlight(), 14 * MiB);
});

t.test('requests in flight are capped, but an idle connection may always start one small request', async (t) => {
  const budget = createRequestBudget(limits);
  const busy = {};
  for (let i = 0; i < 3; i++) t.ok(budget.admit(busy, 100).admitted);
  t.match(budget.admit(busy, 100), { admitted: false, reason: 'requests' });
  const idle = {};
  const guaranteed = budget.admit(idle, SMALL_BODY_BYTES);
  t.ok(guaranteed.admitted, 'the first small request of an idle connection');
  t.match(budget.admit(idle, 100), { admitted: false, reason: 'requests' }, 'but not a second one');
  t.match(budget.admit({}, SMALL_BODY_BYTES + 1), { admitted: false }, 'nor a large one');
  t.equal(budget.requestsInFlight(), 4);
});
