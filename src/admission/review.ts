/**
 * The AdmissionReview wire format (admission.k8s.io v1 and v1beta1, which share one shape)
 * and the JSON schema Fastify checks the envelope against before a handler runs.
 */

export const REVIEW_VERSIONS = ['admission.k8s.io/v1', 'admission.k8s.io/v1beta1'] as const;
export type ReviewVersion = (typeof REVIEW_VERSIONS)[number];

export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

export interface GroupVersionKind {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
}

export interface AdmissionRequest {
  readonly uid: string;
  readonly kind: GroupVersionKind;
  readonly operation: Operation;
  readonly name?: string;
  readonly namespace?: string;
  readonly object?: unknown;
  readonly oldObject?: unknown;
  readonly dryRun?: boolean;
}

export interface AdmissionReview {
  readonly apiVersion: ReviewVersion;
  readonly kind: 'AdmissionReview';
  readonly request: AdmissionRequest;
}

export interface StatusCause {
  readonly reason: string;
  readonly message: string;
  readonly field: string;
}

export interface AdmissionStatus {
  readonly code: number;
  readonly reason: string;
  readonly message: string;
  readonly details?: { readonly causes: readonly StatusCause[] };
}

export interface AdmissionResponse {
  readonly uid: string;
  readonly allowed: boolean;
  readonly status?: AdmissionStatus;
  readonly warnings?: readonly string[];
  readonly patch?: string;
  readonly patchType?: 'JSONPatch';
}

/**
 * Only the envelope is checked: `object` and `oldObject` stay free-form because a mutating
 * webhook sees objects before the API server has validated them, and odd shapes there must
 * be answered (allowed), not rejected.
 */
export const admissionReviewSchema = {
  type: 'object',
  required: ['apiVersion', 'kind', 'request'],
  properties: {
    apiVersion: { type: 'string', enum: [...REVIEW_VERSIONS] },
    kind: { type: 'string', const: 'AdmissionReview' },
    request: {
      type: 'object',
      required: ['uid', 'kind', 'operation'],
      properties: {
        uid: { type: 'string', minLength: 1, maxLength: 128 },
        kind: {
          type: 'object',
          required: ['kind'],
          properties: {
            group: { type: 'string' },
            version: { type: 'string' },
            kind: { type: 'string' },
          },
        },
        operation: { type: 'string', enum: ['CREATE', 'UPDATE', 'DELETE', 'CONNECT'] },
        name: { type: 'string' },
        namespace: { type: 'string' },
        dryRun: { type: 'boolean' },
      },
    },
  },
} as const;

/** Serialisation schema for the answer: faster than generic JSON.stringify and never leaks extra fields. */
export const admissionReviewResponseSchema = {
  type: 'object',
  properties: {
    apiVersion: { type: 'string' },
    kind: { type: 'string' },
    response: {
      type: 'object',
      properties: {
        uid: { type: 'string' },
        allowed: { type: 'boolean' },
        status: {
          type: 'object',
          properties: {
            code: { type: 'integer' },
            reason: { type: 'string' },
            message: { type: 'string' },
            details: {
              type: 'object',
              properties: {
                causes: {
                  type: 'array',
                  items: {
                    type: 'object',
                    properties: { reason: { type: 'string' }, message: { type: 'string' }, field: { type: 'string' } },
                  },
                },
              },
            },
          },
        },
        warnings: { type: 'array', items: { type: 'string' } },
        patch: { type: 'string' },
        patchType: { type: 'string' },
      },
    },
  },
} as const;

export function reviewResponse(version: ReviewVersion, response: AdmissionResponse) {
  return { apiVersion: version, kind: 'AdmissionReview', response };
}
