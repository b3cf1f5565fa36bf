// Error catalogue of the admin HTTP API: one stable code per failure, its HTTP status
// and a summary. docs/admin-api.md lists the same table, and test/admin checks that
// the two agree.

export const AdminErrorCode = {
  TOKEN_MISSING: { status: 401, summary: 'the request has no Authorization: Bearer token' },
  TOKEN_INVALID: { status: 403, summary: 'the bearer token does not match the admin token' },
  INVALID_JSON: { status: 400, summary: 'the body is not one JSON object' },
  FIELD_MISSING: { status: 400, summary: 'a required field is absent' },
  FIELD_INVALID: { status: 400, summary: 'a field has the wrong type or value, or is not a field of this request' },
  INVALID_VERSION: { status: 400, summary: 'the version is not a semantic version 2.0.0 of at most 32 bytes' },
  SIZE_MISMATCH: { status: 400, summary: 'size differs from the byte count of the payload' },
  DIGEST_MISMATCH: { status: 400, summary: 'sha256 differs from the SHA-256 of the payload' },
  BAD_SIGNATURE: { status: 400, summary: "the signature does not verify with the server's public key" },
  INVALID_QUERY: { status: 400, summary: 'a query parameter has the wrong value' },
  RELEASE_NOT_FOUND: { status: 404, summary: 'no release has this version' },
  DEVICE_NOT_FOUND: { status: 404, summary: 'no device has this id' },
  ROUTE_NOT_FOUND: { status: 404, summary: 'no resource has this path' },
  METHOD_NOT_ALLOWED: { status: 405, summary: 'the resource does not support this method (the Allow header lists those it does)' },
  RELEASE_EXISTS: { status: 409, summary: 'a release with the same version precedence exists' },
  PAYLOAD_EXISTS: { status: 409, summary: 'another release uses the download id for bytes with another digest or encoding' },
  BODY_TOO_LARGE: { status: 413, summary: 'the body exceeds the size limit (16 MiB by default)' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, summary: 'the body is sent with a Content-Type other than application/json' },
  HOST_REJECTED: { status: 421, summary: 'the Host header names a DNS name other than localhost on a loopback address' },
  AUTH_RATE_LIMITED: { status: 429, summary: 'the client address sent too many requests with a missing or wrong bearer token; retry after the seconds in Retry-After' },
  INTERNAL: { status: 500, summary: 'the server failed; its log has the cause' },
} as const;

export type AdminErrorName = keyof typeof AdminErrorCode;

/** An error that becomes `{"error":{"code","message"}}` with the catalogue's status. */
export class AdminError extends Error {
  readonly code: AdminErrorName;
  readonly status: number;
  /** Name of the body field or query parameter at fault, when there is one. */
  readonly field?: string;
  /** Extra response headers, such as Allow or WWW-Authenticate. */
  readonly headers: Record<string, string>;

  constructor(code: AdminErrorName, message: string, options: { field?: string; headers?: Record<string, string> } = {}) {
    super(message);
    this.name = 'AdminError';
    this.code = code;
    this.status = AdminErrorCode[code].status;
    if (options.field !== undefined) this.field = options.field;
    this.headers = options.headers ?? {};
  }

  toJSON(): { error: { code: string; message: string; field?: string } } {
    const error: { code: string; message: string; field?: string } = { code: this.code, message: this.message };
    if (this.field !== undefined) error.field = this.field;
    return { error };
  }
}
