/** Certificate expiry, for the expiry metric and the renewal timer. */

import { parseCertificate } from './certificate-files.ts';

/**
 * The `notAfter` of the first certificate in a PEM string (the leaf, when the string holds a
 * chain); throws if there is no valid certificate.
 */
export function certificateExpiry(pem: string): Date {
  return parseCertificate(pem, 'PEM text').validToDate;
}
