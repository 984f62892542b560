/**
 * The logging the background parts (certificate lifecycle, CA bundle, traffic caches) need:
 * structured fields first, then the message. A pino or Fastify logger satisfies it, and so does
 * a silent stub in tests; nothing here depends on Fastify.
 */
export interface Logger {
  info(object: object, message: string): void;
  warn(object: object, message: string): void;
  error(object: object, message: string): void;
  debug(object: object, message: string): void;
}
