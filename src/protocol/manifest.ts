// The signed part of a release: the exact bytes an Ed25519 signature covers, built
// the same way by ota-tool (signing), the server (checking on publish) and the
// firmware (verifying before install).
import { createHash } from 'node:crypto';
import { DOWNLOAD_ID_HEX_CHARS, ETAG_BYTES, Encoding } from './constants.ts';

/** Domain separation prefix, so a signature over a manifest means nothing elsewhere. */
export const SIGNATURE_CONTEXT = 'pico-ota manifest v1\0';

export interface SignedFields {
  version: string;
  size: number;
  sha256: Buffer;
  encoding: number;
}

/**
 * Builds the signed message: context, SHA-256 (32 bytes), size (uint32 big-endian),
 * encoding (uint8), version (UTF-8). Fixed-width fields keep the firmware side a
 * few lines of struct.pack with no canonical-CBOR rules to match.
 */
export function signedMessage(fields: SignedFields): Buffer {
  if (fields.sha256.length !== 32) {
    throw new Error(`sha256 must be 32 bytes, got ${fields.sha256.length}`);
  }
  if (!Number.isInteger(fields.size) || fields.size < 0 || fields.size > 0xffffffff) {
    throw new Error(`size must be an integer in 0..4294967295, got ${fields.size}`);
  }
  const fixed = Buffer.alloc(32 + 4 + 1);
  fields.sha256.copy(fixed, 0);
  fixed.writeUInt32BE(fields.size, 32);
  fixed.writeUInt8(fields.encoding, 36);
  return Buffer.concat([Buffer.from(SIGNATURE_CONTEXT, 'latin1'), fixed, Buffer.from(fields.version, 'utf8')]);
}

export function sha256(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

/** Download resource id: the first DOWNLOAD_ID_HEX_CHARS hex characters of the digest. */
export function downloadId(digest: Buffer): string {
  return digest.toString('hex').slice(0, DOWNLOAD_ID_HEX_CHARS);
}

export function etagOf(digest: Buffer): Buffer {
  return digest.subarray(0, ETAG_BYTES);
}

export function encodingName(code: number): string {
  const entry = Object.entries(Encoding).find(([, value]) => value === code);
  if (!entry) throw new Error(`unknown encoding ${code}: expected 0 (raw) or 1 (deflate)`);
  return entry[0];
}
