/** Paged lists: continue tokens threaded from page to page, lazily, each page bounded in time. */
import t from 'tap';
import { listPages, type ListPage } from '../src/kube/paginated-list.ts';

/** A list of `total` numbers served `limit` at a time, recording every call. */
function pagedNumbers(total: number, tokenField: 'continue' | '_continue' = 'continue') {
  const calls: { limit: number; token: string | undefined }[] = [];
  const fetchPage = async (limit: number, token: string | undefined): Promise<ListPage<number>> => {
    calls.push({ limit, token });
    const offset = token ? Number(token.slice('after-'.length)) : 0;
    const items = Array.from({ length: Math.max(0, Math.min(limit, total - offset)) }, (_, i) => offset + i);
    const end = offset + items.length;
    return { items, metadata: { resourceVersion: '42', ...(end < total ? { [tokenField]: `after-${end}` } : { [tokenField]: '' }) } };
  };
  return { calls, fetchPage };
}

async function collect<T>(pages: AsyncIterable<ListPage<T>>): Promise<T[][]> {
  const out: T[][] = [];
  for await (const page of pages) out.push([...(page.items ?? [])]);
  return out;
}

t.test('every object once, in order; each call sends the limit and the previous page\'s token', async (t) => {
  const { calls, fetchPage } = pagedNumbers(10);
  const pages = await collect(listPages(fetchPage, { pageSize: 4, what: 'listing numbers' }));
  t.same(pages, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
  t.same(calls, [{ limit: 4, token: undefined }, { limit: 4, token: 'after-4' }, { limit: 4, token: 'after-8' }]);
});

t.test("client-node's typed lists name the token _continue", async (t) => {
  const { calls, fetchPage } = pagedNumbers(5, '_continue');
  t.same((await collect(listPages(fetchPage, { pageSize: 2, what: 'listing numbers' }))).flat(), [0, 1, 2, 3, 4]);
  t.equal(calls.length, 3);
});

t.test('an empty list is one call; the default page size is 100', async (t) => {
  const { calls, fetchPage } = pagedNumbers(0);
  t.same(await collect(listPages(fetchPage, { what: 'listing numbers' })), [[]]);
  t.same(calls, [{ limit: 100, token: undefined }]);
});

t.test('the next page is fetched only once the previous one has been taken', async (t) => {
  const { calls, fetchPage } = pagedNumbers(10);
  const pages = listPages(fetchPage, { pageSize: 3, what: 'listing numbers' });
  await pages.next();
  t.equal(calls.length, 1, 'one page in hand, one call made');
  await pages.return();
  t.equal(calls.length, 1, 'stopping early fetches nothing more');
});

t.test('a page that does not come fails the list, naming the page', async (t) => {
  const fetchPage = async (_limit: number, token: string | undefined): Promise<ListPage<number>> =>
    token === undefined ? { items: [1], metadata: { continue: 'next' } } : new Promise<ListPage<number>>(() => {});
  await t.rejects(collect(listPages(fetchPage, { pageSize: 1, what: 'listing numbers', pageTimeoutMs: 50 })), { message: 'listing numbers (page 2) timed out after 50 ms', code: 'ETIMEDOUT' });
});

t.test('page sizes must be positive integers', async (t) => {
  const { fetchPage } = pagedNumbers(1);
  for (const pageSize of [0, -1, 1.5, Number.NaN]) {
    await t.rejects(collect(listPages(fetchPage, { pageSize, what: 'listing numbers' })), RangeError, String(pageSize));
  }
});
