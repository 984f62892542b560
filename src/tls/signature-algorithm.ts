/**
 * Whether a certificate is signed with SHA-1. `selfsigned` signs with SHA-1 unless told
 * otherwise, so certificates from older tooling may use it, and Go's TLS stack — the API
 * server — rejects them.
 */
import type { X509Certificate } from 'node:crypto';

/** SHA-1 signature algorithm OIDs, DER-encoded (sha1WithRSAEncryption, ecdsa-with-SHA1). */
const SHA1_SIGNATURE_OIDS: readonly Buffer[] = [
  Buffer.from('06092a864886f70d010105', 'hex'),
  Buffer.from('06072a8648ce3d0401', 'hex'),
];

/**
 * The OID of the certificate's outer signatureAlgorithm, as DER bytes (tag and length
 * included). Certificate ::= SEQUENCE { tbsCertificate SEQUENCE, signatureAlgorithm
 * SEQUENCE { algorithm OID, ... }, signature BIT STRING }.
 */
function signatureAlgorithmOid(cert: X509Certificate): Buffer | undefined {
  const der = cert.raw;
  // Returns [offset of contents, length of contents] of the DER element at `offset`.
  const header = (offset: number): [number, number] | undefined => {
    const first = der[offset + 1];
    if (first === undefined) return undefined;
    if (first < 0x80) return [offset + 2, first];
    const bytes = first & 0x7f;
    let length = 0;
    for (let i = 0; i < bytes; i++) length = length * 256 + (der[offset + 2 + i] ?? 0);
    return [offset + 2 + bytes, length];
  };
  const outer = header(0);
  if (outer === undefined) return undefined;
  const tbs = header(outer[0]);
  if (tbs === undefined) return undefined;
  const algorithm = header(tbs[0] + tbs[1]);
  if (algorithm === undefined) return undefined;
  const oid = header(algorithm[0]);
  if (oid === undefined) return undefined;
  return der.subarray(algorithm[0], oid[0] + oid[1]);
}

export function usesSha1(cert: X509Certificate): boolean {
  const oid = signatureAlgorithmOid(cert);
  return oid !== undefined && SHA1_SIGNATURE_OIDS.some((sha1) => sha1.equals(oid));
}
