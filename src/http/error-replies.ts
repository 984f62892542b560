/**
 * One table from framework error codes to the JSON answers a caller of the webhook sees.
 * Every client mistake gets a 4xx that says what was expected; anything unknown is a 500
 * (the API server then applies the webhook's failurePolicy).
 */
import type { FastifyError } from 'fastify';

export interface ErrorReply {
  readonly statusCode: number;
  readonly error: string;
  readonly message: string;
}

/** A body with more JSON values than `maxJsonValues`, refused before it is parsed (json-values.ts). */
export class TooManyJsonValuesError extends Error {
  readonly code = 'MESH_ADMISSION_TOO_MANY_JSON_VALUES';
  readonly statusCode = 413;
  constructor(limit: number) {
    super(`request body holds more than ${limit} JSON values; no AdmissionReview of a real object does`);
  }
}

const EXPECTED = 'expected a JSON AdmissionReview (admission.k8s.io/v1 or v1beta1) with request.uid';

export function errorReply(error: FastifyError, limits: { readonly bodyLimitBytes: number }): ErrorReply {
  const { bodyLimitBytes } = limits;
  switch (error.code) {
    case 'MESH_ADMISSION_TOO_MANY_JSON_VALUES':
      return { statusCode: 413, error: 'Payload Too Large', message: error.message };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { statusCode: 415, error: 'Unsupported Media Type', message: `unsupported Content-Type; expected application/json` };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { statusCode: 400, error: 'Bad Request', message: `request body is empty; ${EXPECTED}` };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      // Fastify's parser reports a __proto__ or constructor.prototype key (rejected against
      // prototype pollution) as invalid JSON too, without saying which it was.
      return { statusCode: 400, error: 'Bad Request', message: `request body is not valid JSON, or holds a __proto__ or constructor.prototype key; ${EXPECTED}` };
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { statusCode: 413, error: 'Payload Too Large', message: `request body exceeds the limit of ${bodyLimitBytes} bytes` };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { statusCode: 400, error: 'Bad Request', message: 'Content-Length does not match the body received' };
    case 'FST_ERR_VALIDATION':
      return { statusCode: 400, error: 'Bad Request', message: `not an AdmissionReview: ${error.message}; ${EXPECTED}` };
  }
  if (error instanceof SyntaxError) {
    // The JSON parser rejects bodies it cannot read, including __proto__ / constructor.prototype keys.
    return { statusCode: 400, error: 'Bad Request', message: `request body is not acceptable JSON (${error.message}); ${EXPECTED}` };
  }
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
    return { statusCode: error.statusCode, error: 'Bad Request', message: error.message };
  }
  return { statusCode: 500, error: 'Internal Server Error', message: 'the webhook failed to process the request; see its logs' };
}
