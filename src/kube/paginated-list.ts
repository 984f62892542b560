/**
 * Lists read in pages (`limit` + `continue`), so the largest answer held at once is one page,
 * not the whole cluster. Every page of one list comes from the same snapshot: the API server
 * encodes its resourceVersion in the continue token, and reports it on every page.
 */
import { LIST_TIMEOUT_MS, withTimeout } from './istio-resources.ts';

/**
 * Objects per page. Each page is one JSON text and its parsed objects, whole Services with
 * managedFields and kubectl's last-applied annotation, garbage the collector reclaims only
 * later: pages of 100 left a 20,000-Service sync well below pages of 500 (the Kubernetes
 * clients' default), pages of 50 no lower (see `npm run bench:scale`), and 200 pages cost no
 * noticeable time.
 */
export const DEFAULT_PAGE_SIZE = 100;

/**
 * The parts of a list answer paging needs. client-node's typed lists (V1ServiceList) name the
 * token `_continue` (`continue` is a reserved word in its generated models); custom-object
 * lists are the server's JSON, with `continue`.
 */
export interface ListPage<T> {
  readonly items?: readonly T[];
  readonly metadata?: { readonly continue?: string; readonly _continue?: string; readonly resourceVersion?: string };
}

/** One list call: `limit` objects at most, from `continueToken` on (undefined: the first page). */
export type PageFetcher<T> = (limit: number, continueToken: string | undefined) => Promise<ListPage<T>>;

export interface PagingOptions {
  /** Objects per page (default DEFAULT_PAGE_SIZE). */
  readonly pageSize?: number;
  /** For the timeout's message, e.g. "listing Services". */
  readonly what: string;
  /** Bounds each page's call (default LIST_TIMEOUT_MS): a stalled API server fails the list. */
  readonly pageTimeoutMs?: number;
}

/** Whether `value` can be sent as a list's `limit`. */
export function isValidPageSize(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 1;
}

/** The list's pages in order, fetching the next only when the previous one has been consumed. */
export async function* listPages<T>(fetchPage: PageFetcher<T>, options: PagingOptions): AsyncGenerator<ListPage<T>, void, undefined> {
  const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
  if (!isValidPageSize(pageSize)) throw new RangeError(`page size must be a positive integer, not ${pageSize}`);
  let continueToken: string | undefined;
  let page = 0;
  do {
    page += 1;
    const answer = await withTimeout(fetchPage(pageSize, continueToken), options.pageTimeoutMs ?? LIST_TIMEOUT_MS, `${options.what} (page ${page})`);
    yield answer;
    const next = answer.metadata?.continue ?? answer.metadata?._continue;
    continueToken = typeof next === 'string' && next !== '' ? next : undefined;
  } while (continueToken !== undefined);
}
