/**
 * Shutdown within a deadline. A server's close() waits for every connection to end, and a
 * client can keep one open as long as it likes: a request whose body never completes, an
 * HTTP/2 session that keeps sending frames after GOAWAY, a handshake that never finishes. So
 * every connection is tracked from its first byte; on close, HTTP/2 sessions get GOAWAY at once
 * (requests in flight may finish, no new ones start) and whatever is still open at the
 * deadline is destroyed, so the process always exits within its grace period.
 */
import type { Server } from 'node:net';
import type { Socket } from 'node:net';
import type { Http2Session } from 'node:http2';

export interface TrackedConnections {
  /** Closes the server by `deadline` (ms since the epoch); the number of connections destroyed then. */
  closeBy(close: () => Promise<void>, deadline: number): Promise<number>;
}

export function trackConnections(server: Server): TrackedConnections {
  const sockets = new Set<Socket>();
  const sessions = new Set<Http2Session>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('session', (session: Http2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });

  return {
    async closeBy(close, deadline) {
      let destroyed = 0;
      const closing = close();
      // Every session, including ones the framework stopped tracking (a session that already
      // received GOAWAY from its client is still open until that client closes it).
      for (const session of sessions) if (!session.closed && !session.destroyed) session.close();
      const timer = setTimeout(() => {
        // An HTTP/2 connection is a session on a socket: count the connections, not both.
        destroyed = sockets.size;
        for (const session of sessions) session.destroy();
        for (const socket of sockets) socket.destroy();
      }, Math.max(0, deadline - Date.now()));
      try {
        await closing;
      } finally {
        clearTimeout(timer);
      }
      return destroyed;
    },
  };
}
