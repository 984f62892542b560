/**
 * The webhook's memory budget for requests: how many body bytes and how many requests may be
 * in flight (from their headers until their answer is delivered) across all connections.
 *
 * A request reserves its declared Content-Length (the body limit when it declares none) before
 * a byte of its body is read, and keeps the reservation until its answer has left or its
 * stream is gone: a stalled body holds what it may still send, and an answer a client will not
 * read holds its slot. Both the HTTP/1.1 parser and HTTP/2 (nghttp2) refuse more body bytes
 * than declared, so a reservation is never exceeded. What does not fit is refused at once, so
 * memory is bounded by the budget rather than by what clients choose to send.
 *
 * One exception keeps a well-behaved client answered while others fill the budget: a
 * connection with nothing in flight may always start one small request. That costs at most
 * one small body per connection, and connections are capped too.
 */

/** A body at most this large counts as small (a real review is 2-10 KiB). */
export const SMALL_BODY_BYTES = 64 * 1024;

export interface RequestBudgetLimits {
  /** Body bytes reserved by all requests in flight at most. */
  readonly maxBodyBytesInFlight: number;
  /** Requests in flight across all connections at most. */
  readonly maxRequestsInFlight: number;
  /** What a request without Content-Length reserves: the largest body it may send. */
  readonly bodyLimitBytes: number;
}

export type Admission =
  | { readonly admitted: true; readonly release: () => void }
  | { readonly admitted: false; readonly reason: 'body-bytes' | 'requests'; readonly message: string };

export interface RequestBudget {
  /**
   * Reserves room for a request arriving on `connection` (its socket or HTTP/2 session) that
   * declares `declaredBytes` of body (undefined: not declared).
   */
  admit(connection: object, declaredBytes: number | undefined): Admission;
  readonly bodyBytesInFlight: () => number;
  readonly requestsInFlight: () => number;
}

export function createRequestBudget(limits: RequestBudgetLimits): RequestBudget {
  let bodyBytes = 0;
  let requests = 0;
  // Each connection's count lives on the connection object under a symbol of this budget's own
  // rather than in a WeakMap keyed by it: V8's collections treat WeakMap entries specially, and
  // one written twice per request cost 11-17 % of the CPU per request under HTTP/2 load (the
  // bench's ready case, twice 6 alternating runs: 122.0 → 108.6 and 125.8 → 104.9 µs per
  // request, the echo 75; the rename case, where judging dominates, stayed within its spread).
  const inFlightOnConnection = Symbol('requests in flight on this connection');
  const countOf = (connection: object) => (connection as Record<symbol, number | undefined>)[inFlightOnConnection] ?? 0;
  const setCount = (connection: object, count: number) => {
    (connection as Record<symbol, number>)[inFlightOnConnection] = count;
  };

  return {
    admit(connection, declaredBytes) {
      const bytes = Math.min(declaredBytes ?? limits.bodyLimitBytes, limits.bodyLimitBytes);
      const onConnection = countOf(connection);
      const guaranteed = onConnection === 0 && bytes <= SMALL_BODY_BYTES;
      if (!guaranteed && bodyBytes + bytes > limits.maxBodyBytesInFlight) {
        return {
          admitted: false,
          reason: 'body-bytes',
          message: `the webhook is busy: ${bodyBytes} body bytes in flight, and this request's ${bytes} would exceed its budget of ${limits.maxBodyBytesInFlight}; retry shortly`,
        };
      }
      if (!guaranteed && requests >= limits.maxRequestsInFlight) {
        return { admitted: false, reason: 'requests', message: `the webhook is busy: ${requests} requests in flight, its limit; retry shortly` };
      }
      bodyBytes += bytes;
      requests += 1;
      setCount(connection, onConnection + 1);
      let released = false;
      return {
        admitted: true,
        release() {
          if (released) return;
          released = true;
          bodyBytes -= bytes;
          requests -= 1;
          setCount(connection, countOf(connection) - 1);
        },
      };
    },
    bodyBytesInFlight: () => bodyBytes,
    requestsInFlight: () => requests,
  };
}
