// Device-facing wire contract: resource paths, CBOR map keys, outcome codes and
// limits. The firmware (firmware/ota_proto.py) and docs/protocol.md mirror this file,
// and test/protocol tests check that they agree.

/** Short Uri-Path segments; each costs one byte per request on NB-IoT. */
export const PATH_CHECK = 'c';
export const PATH_DOWNLOAD = 'd';
export const PATH_REPORT = 'r';

/** CoAP Content-Format numbers (RFC 7252 section 12.3, RFC 8949 section 9.5). */
export const FORMAT_OCTET_STREAM = 42;
export const FORMAT_JSON = 50;
export const FORMAT_CBOR = 60;
export const FORMAT_LINK = 40;

/** Keys of the check request map (device to server). */
export const CheckKey = {
  deviceId: 0,
  version: 1,
  channel: 2,
  /**
   * SZX (RFC 7959 section 2.2) of the largest payload the device takes inline in the
   * answer, 0..6. Absent means DEFAULT_INLINE_SZX.
   */
  inlineSzx: 3,
} as const;

/** Keys of the manifest map that a check returns when an update is offered. */
export const ManifestKey = {
  version: 0,
  /** Download path below the server root, such as "d/3f2a9c01b7e4". */
  path: 1,
  /** Bytes of the payload as sent, after encoding. */
  size: 2,
  /** SHA-256 of the payload as sent (32 bytes). */
  sha256: 3,
  /** Ed25519 signature over signedMessage() (64 bytes). */
  signature: 4,
  encoding: 5,
  /** Largest block size in bytes the server suggests (16..1024). */
  blockSize: 6,
  /**
   * The whole payload as sent, present only when it fits the device's inline size,
   * so the device needs no Block2 request.
   */
  payload: 7,
} as const;

/** Keys of the report map (device to server). */
export const ReportKey = {
  deviceId: 0,
  /** Version the device runs when it sends the report. */
  version: 1,
  outcome: 2,
  /** Version the outcome concerns (the one offered, installed or rolled back). */
  target: 3,
  /** Free text for people, at most MAX_DETAIL_BYTES. */
  detail: 4,
} as const;

/** Update outcomes a device reports. */
export const Outcome = {
  installed: 0,
  confirmed: 1,
  verifyFailed: 2,
  rolledBack: 3,
  downloadFailed: 4,
  installFailed: 5,
} as const;
export type OutcomeName = keyof typeof Outcome;

/** Payload encodings. Deflate is a zlib stream (RFC 1950). */
export const Encoding = {
  raw: 0,
  deflate: 1,
} as const;
export type EncodingName = keyof typeof Encoding;

export const MAX_DEVICE_ID_BYTES = 64;
export const MAX_VERSION_BYTES = 32;
export const MAX_CHANNEL_BYTES = 32;
export const MAX_DETAIL_BYTES = 200;
export const DEFAULT_CHANNEL = 'stable';

/**
 * Device ids: letters, digits, dot, underscore, hyphen, but not "." or "..", which as a
 * URL path segment (/api/devices/<id>) would be resolved away before the admin API saw them.
 */
export const DEVICE_ID_PATTERN = /^(?!\.\.?$)[A-Za-z0-9._-]{1,64}$/;
/** Channels: lower-case letters, digits, hyphen. */
export const CHANNEL_PATTERN = /^[a-z0-9-]{1,32}$/;

/** Hex characters of the SHA-256 that name a download resource (48 bits). */
export const DOWNLOAD_ID_HEX_CHARS = 12;
/** Bytes of the SHA-256 used as the strong ETag (RFC 7252 allows 1..8). */
export const ETAG_BYTES = 8;
/** Max-Age of image blocks in seconds: the content under a digest never changes. */
export const IMAGE_MAX_AGE_S = 365 * 24 * 3600;

/** Inline size of a device whose check has no inlineSzx key: SZX 4, 256 bytes. */
export const DEFAULT_INLINE_SZX = 4;
/**
 * Largest inline size the server uses whatever the device requests: SZX 5, 512 bytes. With
 * a manifest of at most about 200 bytes, the answer stays under the 1152-byte message
 * size that RFC 7252 section 4.6 assumes.
 */
export const MAX_INLINE_SZX = 5;
