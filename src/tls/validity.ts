/** Certificate lifetimes: days in milliseconds, and whether a certificate runs out soon. */
import type { X509Certificate } from 'node:crypto';

export const DAY_MS = 24 * 60 * 60 * 1000;

/** Whether `cert` expires within `days` of `now` (0: it has expired). */
export function expiresWithin(cert: X509Certificate, now: Date, days: number): boolean {
  return cert.validToDate.getTime() - now.getTime() <= days * DAY_MS;
}

export function hasExpired(cert: X509Certificate, now: Date): boolean {
  return expiresWithin(cert, now, 0);
}
