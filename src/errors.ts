// Error catalogue of the CoAP side: each fault a device or client can cause has a
// stable code, the CoAP response code it maps to, and a message naming the expected
// and the actual value. docs/server.md lists the same codes, and a test keeps the two
// in step.

/** CoAP response codes used by the device resources (RFC 7252 section 12.1.2). */
export const CoapCode = {
  content: '2.05',
  changed: '2.04',
  valid: '2.03',
  badRequest: '4.00',
  badOption: '4.02',
  forbidden: '4.03',
  notFound: '4.04',
  methodNotAllowed: '4.05',
  notAcceptable: '4.06',
  unsupportedFormat: '4.15',
  internal: '5.00',
  serviceUnavailable: '5.03',
  proxyingNotSupported: '5.05',
} as const;
export type CoapCodeValue = (typeof CoapCode)[keyof typeof CoapCode];

interface CatalogueEntry {
  coapCode: CoapCodeValue;
  message: (...args: string[]) => string;
}

export const ERROR_CATALOGUE = {
  PAYLOAD_NOT_CBOR: {
    coapCode: CoapCode.badRequest,
    message: (reason) => `payload is not a CBOR item: ${reason}; expected a CBOR map with integer keys`,
  },
  PAYLOAD_NOT_MAP: {
    coapCode: CoapCode.badRequest,
    message: (actual) => `payload must be a CBOR map with integer keys, got ${actual}`,
  },
  KEY_MISSING: {
    coapCode: CoapCode.badRequest,
    message: (key, name) => `key ${key} (${name}) is missing from the CBOR map`,
  },
  KEY_WRONG_TYPE: {
    coapCode: CoapCode.badRequest,
    message: (key, name, expected, actual) => `key ${key} (${name}) must be ${expected}, got ${actual}`,
  },
  VALUE_INVALID: {
    coapCode: CoapCode.badRequest,
    message: (field, expected, actual) => `${field} must be ${expected}, got ${actual}`,
  },
  KEY_DUPLICATE: {
    coapCode: CoapCode.badRequest,
    message: (key) => `key ${key} appears more than once in the CBOR map; send each key once`,
  },
  QUERY_DUPLICATE: {
    coapCode: CoapCode.badRequest,
    message: (name) => `query parameter "${name}" is given more than once; give it once`,
  },
  QUERY_INVALID: {
    coapCode: CoapCode.badRequest,
    message: (reason, example) => `${reason}; example: ${example}`,
  },
  QUERY_MISSING: {
    coapCode: CoapCode.badRequest,
    message: (name, example) => `query parameter "${name}" is missing; example: ${example}`,
  },
  FORMAT_UNSUPPORTED: {
    coapCode: CoapCode.unsupportedFormat,
    message: (expected, actual) => `Content-Format must be ${expected}, got ${actual}`,
  },
  ACCEPT_UNSUPPORTED: {
    coapCode: CoapCode.notAcceptable,
    message: (expected, actual) => `Accept must be ${expected}, got ${actual}`,
  },
  OPTION_UNKNOWN_CRITICAL: {
    coapCode: CoapCode.badOption,
    message: (number) => `critical option ${number} is not supported by this server (RFC 7252 section 5.4.1)`,
  },
  OPTION_INVALID: {
    coapCode: CoapCode.badOption,
    message: (name, expected, actual) => `option ${name} must be ${expected}, got ${actual}`,
  },
  PROXY_UNSUPPORTED: {
    coapCode: CoapCode.proxyingNotSupported,
    message: (name) => `option ${name} asks for a proxy, and this server is not one`,
  },
  BLOCK_SZX_RESERVED: {
    coapCode: CoapCode.badRequest,
    message: () => 'Block2 SZX 7 is reserved (RFC 7959 section 2.2); expected SZX 0..6 (16..1024 bytes)',
  },
  BLOCK_OUT_OF_RANGE: {
    coapCode: CoapCode.badOption,
    message: (num, lastNum, blockSize) => `Block2 NUM ${num} is past the last block ${lastNum} at ${blockSize} bytes per block`,
  },
  DEVICE_NOT_REGISTERED: {
    coapCode: CoapCode.forbidden,
    message: (id) => `device ${id} is not registered on this server; register it with ota-tool device add (docs/ota-tool.md) or PUT /api/devices/${id}/registration`,
  },
  RESOURCE_NOT_FOUND: {
    coapCode: CoapCode.notFound,
    message: (path) => `no resource at /${path}; GET /.well-known/core lists them`,
  },
  RELEASE_NOT_FOUND: {
    coapCode: CoapCode.notFound,
    message: (id) => `no release with download id ${id}; ask /c for the current manifest`,
  },
  RELEASE_REVOKED: {
    coapCode: CoapCode.notFound,
    message: (id, version) => `release ${version} (download id ${id}) is revoked; ask /c for the current manifest`,
  },
  METHOD_NOT_ALLOWED: {
    coapCode: CoapCode.methodNotAllowed,
    message: (path, expected, actual) => `/${path} accepts ${expected}, got ${actual}`,
  },
  RATE_LIMITED: {
    coapCode: CoapCode.serviceUnavailable,
    message: (deviceId, ratePerMinute, retryAfterS) =>
      `device ${deviceId} sent more checks and reports than its limit of ${ratePerMinute} per minute allows; retry in ${retryAfterS} s (Max-Age)`,
  },
  INTERNAL: {
    coapCode: CoapCode.internal,
    message: () => 'internal server error; the server log has the details',
  },
} satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** A request fault that becomes a CoAP error response with a diagnostic payload. */
export class CoapError extends Error {
  readonly code: ErrorCode;
  readonly coapCode: CoapCodeValue;
  /** Seconds for the Max-Age option of the response, set on a 5.03 (RFC 7252 section 5.9.3.4). */
  maxAgeS?: number;

  constructor(code: ErrorCode, ...args: string[]) {
    const entry: CatalogueEntry = ERROR_CATALOGUE[code];
    super(entry.message(...args));
    this.name = 'CoapError';
    this.code = code;
    this.coapCode = entry.coapCode;
  }
}
