/**
 * The answers a webhook gives, built in one place so that every allowed, denied and patched
 * answer has the same shape: fields that carry nothing are left out, except a patch's
 * warnings, which are always there. Without the `uid`, which the HTTP layer copies from the
 * request it answers.
 */
import type { Operation } from 'fast-json-patch';
import type { AdmissionResponse, AdmissionStatus, StatusCause } from './review.ts';

export type AdmissionAnswer = Omit<AdmissionResponse, 'uid'>;

/**
 * A denial is answered as 403 Forbidden: kubectl then prints the whole message after
 * `admission webhook "…" denied the request:`. With 422 Invalid kubectl would print only the
 * causes and drop the webhook's name and the explanation.
 */
export const DENIAL_CODE = 403;
export const DENIAL_REASON = 'Forbidden';

/** Allowed unchanged, with the warnings when there are any. */
export function allowed(warnings: readonly string[] = []): AdmissionAnswer {
  return warnings.length === 0 ? { allowed: true } : { allowed: true, warnings };
}

/** Denied for `status`, with the warnings of what did not block the request. */
export function denied(status: AdmissionStatus, warnings: readonly string[] = []): AdmissionAnswer {
  return warnings.length === 0 ? { allowed: false, status } : { allowed: false, status, warnings };
}

/** Why a request is denied, as the status of a denial; `causes` list its problems one by one. */
export function denialStatus(message: string, causes?: readonly StatusCause[]): AdmissionStatus {
  return causes === undefined ? { code: DENIAL_CODE, reason: DENIAL_REASON, message } : { code: DENIAL_CODE, reason: DENIAL_REASON, message, details: { causes } };
}

/** Allowed once `patch` is applied: a JSONPatch, base64-encoded as the API server reads it. */
export function patched(patch: readonly Operation[], warnings: readonly string[]): AdmissionAnswer {
  return { allowed: true, patch: Buffer.from(JSON.stringify(patch)).toString('base64'), patchType: 'JSONPatch', warnings };
}
