/**
 * The logging the background parts (certificate lifecycle, CA bundle, traffic caches) need:
 * structured fields first, then the message. A pino or Fastify logger satisfies it, and so does
 * a silent stub in tests; nothing in the interface depends on Fastify.
 *
 * `createLogger` builds the process's pino logger with the error serializer below.
 */
import { pino, stdSerializers, type Logger as PinoLogger, type LevelWithSilent } from 'pino';

export interface Logger {
  info(object: object, message: string): void;
  warn(object: object, message: string): void;
  error(object: object, message: string): void;
  debug(object: object, message: string): void;
}

/**
 * Node attaches the bytes it could not parse to HTTP parser errors (`rawPacket`: up to a whole
 * read, tens of KB of a caller's request). Logs must never carry request bytes — they may hold
 * anything a client sent, and a 64 KB line per bad request is a log flood — so only their
 * size is kept, at any depth of `cause`.
 */
function withoutRawBytes<T extends object>(value: T, depth = 0): T {
  const copy: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) {
    if (key === 'rawPacket') copy['rawPacketBytes'] = field instanceof Uint8Array ? field.length : undefined;
    else copy[key] = field !== null && typeof field === 'object' && depth < 8 ? withoutRawBytes(field as object, depth + 1) : field;
  }
  return copy as T;
}

type SerializedError = ReturnType<typeof stdSerializers.err>;

/** pino's error serializer (message, stack, code, cause…) without request bytes. */
export function serializeError(error: Error): SerializedError {
  return withoutRawBytes(stdSerializers.err(error));
}

export const LOG_SERIALIZERS = { err: serializeError };

/**
 * Lines go to stdout asynchronously: a synchronous write per line cost a system call per denial
 * or mutation, which under load was a third of the CPU an admission took. Lines written while a
 * write is in flight leave together in the next one, and none waits for a buffer to fill, so
 * each still appears at once when the webhook is quiet. pino writes out what is pending when
 * the process exits.
 */
/**
 * Writes out every pending line, in order, and ends the log: the last thing `serve` does before
 * the process exits. (pino's own exit hook writes pending lines synchronously, which can land
 * before a write still in flight: the shutdown's lines came out of order, or not at all.)
 */
export function finishLog(logger: PinoLogger): Promise<void> {
  const stream = (logger as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] as
    | { destroyed?: boolean; end?: () => void; once: (event: string, listener: () => void) => void }
    | undefined;
  if (stream === undefined || typeof stream.end !== 'function' || stream.destroyed === true) return Promise.resolve();
  return new Promise((resolve) => {
    stream.once('close', resolve);
    stream.once('error', resolve);
    stream.end?.();
  });
}

export function createLogger(level: LevelWithSilent): PinoLogger {
  return pino({ level, base: { service: 'mesh-admission' }, serializers: LOG_SERIALIZERS }, pino.destination({ dest: 1, sync: false }));
}
