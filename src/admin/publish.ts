// Validation of a publish request: every field's type and range, the payload against
// its declared size and SHA-256, and the Ed25519 signature when a public key is set.
// Everything is checked before the store is touched, so a rejected request changes
// nothing.
import { createPrivateKey, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { CHANNEL_PATTERN, DEFAULT_CHANNEL, Encoding, MAX_VERSION_BYTES, type EncodingName } from '../protocol/constants.ts';
import { downloadId, sha256, signedMessage } from '../protocol/manifest.ts';
import { AdminError } from './errors.ts';
import { parseSemVer } from '../releases/semver.ts';
import { parseInstant, START_AT_FORMAT } from '../releases/start-time.ts';

/** Largest payload the signed message can describe (size is a uint32 there). */
const MAX_PAYLOAD_BYTES = 0xffffffff;
const MAX_NOTES_BYTES = 4096;
const PUBLISH_FIELDS = ['version', 'channel', 'notes', 'encoding', 'rollout', 'size', 'sha256', 'signature', 'payload', 'startAt'];

/** A publish request that passed every check, ready for Store.putRelease. */
export interface ValidRelease {
  version: string;
  channel: string;
  notes: string;
  encoding: EncodingName;
  rollout: number;
  size: number;
  sha256: string;
  signature: string;
  downloadId: string;
  payload: Buffer;
  /** Start time in its stored UTC form, absent when the release is offered at once. */
  startAt?: string;
}

/** Parses a PEM public key and checks that it is an Ed25519 key. */
export function loadPublicKey(pem: string): KeyObject {
  let privateKey: KeyObject | undefined;
  try {
    privateKey = createPrivateKey(pem);
  } catch {
    privateKey = undefined;
  }
  // createPublicKey would derive the public half, leaving the signing key on the server.
  if (privateKey) throw new Error('public key PEM contains a private key; pass the .pub file that ota-tool keygen wrote and keep the private key off the server');
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new Error(`public key is not a valid PEM key (${(err as Error).message}); pass the file that ota-tool keygen wrote`);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new Error(`public key is of type ${key.asymmetricKeyType}, expected ed25519; pass the release signing public key`);
  }
  return key;
}

/** Checks a publish body field by field and returns the release it describes. */
export function validatePublish(body: Record<string, unknown>, publicKey: KeyObject | null): ValidRelease {
  rejectUnknownFields(body, PUBLISH_FIELDS);

  const version = requireString(body, 'version');
  checkVersion(version);
  const channel = optionalString(body, 'channel') ?? DEFAULT_CHANNEL;
  if (!CHANNEL_PATTERN.test(channel)) {
    throw new AdminError('FIELD_INVALID', `channel "${channel}" must be 1..32 of a-z, 0-9 and "-", such as "stable"`, { field: 'channel' });
  }
  const notes = optionalString(body, 'notes') ?? '';
  if (Buffer.byteLength(notes, 'utf8') > MAX_NOTES_BYTES) {
    throw new AdminError('FIELD_INVALID', `notes must be at most ${MAX_NOTES_BYTES} bytes of UTF-8; shorten them`, { field: 'notes' });
  }
  const encoding = requireString(body, 'encoding');
  if (!Object.hasOwn(Encoding, encoding)) {
    throw new AdminError('FIELD_INVALID', `encoding "${encoding}" must be "raw" or "deflate"`, { field: 'encoding' });
  }
  const rollout = body.rollout === undefined ? 100 : checkRollout(body.rollout);
  const startAt = body.startAt === undefined ? null : checkStartAt(body.startAt);
  const size = requireInteger(body, 'size', 1, MAX_PAYLOAD_BYTES);
  const digestHex = requireHex(body, 'sha256', 64);
  const signatureHex = requireHex(body, 'signature', 128);
  const payloadText = requireString(body, 'payload');
  const payload = decodeBase64(payloadText);
  // NOTE: the payload is not unpacked here, so a malformed bundle or zlib stream is
  // caught only by the device, which reports an install failure.

  if (payload.length !== size) {
    throw new AdminError('SIZE_MISMATCH', `size is ${size} but the payload has ${payload.length} bytes; send the size of the payload as sent`, { field: 'size' });
  }
  const digest = sha256(payload);
  if (digest.toString('hex') !== digestHex) {
    throw new AdminError(
      'DIGEST_MISMATCH',
      `sha256 is ${digestHex} but the payload hashes to ${digest.toString('hex')}; hash the payload as sent, after encoding`,
      { field: 'sha256' },
    );
  }

  const encodingName = encoding as EncodingName;
  if (publicKey) {
    const message = signedMessage({ version, size, sha256: digest, encoding: Encoding[encodingName] });
    if (!verify(null, message, publicKey, Buffer.from(signatureHex, 'hex'))) {
      throw new AdminError(
        'BAD_SIGNATURE',
        `signature of ${version} does not verify with the server's public key; sign with the matching private key over this version, size, sha256 and encoding`,
        { field: 'signature' },
      );
    }
  }

  return {
    version,
    channel,
    notes,
    encoding: encodingName,
    rollout,
    size,
    sha256: digestHex,
    signature: signatureHex,
    downloadId: downloadId(digest),
    payload,
    ...(startAt === null ? {} : { startAt }),
  };
}

/**
 * Checks a startAt value: an ISO 8601 instant with Z or an offset, returned in its
 * stored UTC form, or null, which means no start time.
 */
export function checkStartAt(value: unknown): string | null {
  if (value === null) return null;
  if (typeof value !== 'string') {
    throw new AdminError('FIELD_INVALID', `startAt must be ${START_AT_FORMAT}, or null for none; got ${JSON.stringify(value).slice(0, 60)}`, { field: 'startAt' });
  }
  const parsed = parseInstant(value);
  if (!parsed.ok) {
    const fix = parsed.problem.includes(START_AT_FORMAT) ? 'or null for none' : `send ${START_AT_FORMAT}, or null for none`;
    throw new AdminError('FIELD_INVALID', `startAt ${parsed.problem}; ${fix}`, { field: 'startAt' });
  }
  return parsed.iso;
}

/** Checks a rollout value: an integer percentage of devices, 0..100. */
export function checkRollout(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 100) {
    throw new AdminError('FIELD_INVALID', `rollout must be an integer percentage 0..100, got ${JSON.stringify(value)}`, { field: 'rollout' });
  }
  return value;
}

/** Rejects fields the request does not define, so a misspelt "rollout" cannot silently mean 100. */
export function rejectUnknownFields(body: Record<string, unknown>, known: string[]): void {
  for (const name of Object.keys(body)) {
    if (!known.includes(name)) {
      throw new AdminError('FIELD_INVALID', `field "${name}" is unknown; the accepted fields are ${known.join(', ')}`, { field: name });
    }
  }
}

function checkVersion(version: string): void {
  const bytes = Buffer.byteLength(version, 'utf8');
  if (bytes > MAX_VERSION_BYTES) {
    throw new AdminError('INVALID_VERSION', `version "${version}" has ${bytes} bytes, at most ${MAX_VERSION_BYTES} fit the device protocol`, { field: 'version' });
  }
  if (!parseSemVer(version)) {
    throw new AdminError('INVALID_VERSION', `version "${version}" is not a semantic version 2.0.0; use MAJOR.MINOR.PATCH such as 2.1.0 or 2.1.0-rc.1`, { field: 'version' });
  }
}

function requireString(body: Record<string, unknown>, field: string): string {
  const value = body[field];
  if (value === undefined) throw missing(field);
  if (typeof value !== 'string') throw wrongType(field, 'a string', value);
  return value;
}

function optionalString(body: Record<string, unknown>, field: string): string | undefined {
  const value = body[field];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw wrongType(field, 'a string', value);
  return value;
}

function requireInteger(body: Record<string, unknown>, field: string, min: number, max: number): number {
  const value = body[field];
  if (value === undefined) throw missing(field);
  if (typeof value !== 'number' || !Number.isInteger(value)) throw wrongType(field, 'an integer', value);
  if (value < min || value > max) {
    throw new AdminError('FIELD_INVALID', `${field} must be in ${min}..${max}, got ${value}`, { field });
  }
  return value;
}

function requireHex(body: Record<string, unknown>, field: string, length: number): string {
  const value = requireString(body, field);
  if (value.length !== length || !/^[0-9a-fA-F]*$/.test(value)) {
    const preview = value.length > 16 ? `${value.slice(0, 16)}…` : value;
    throw new AdminError('FIELD_INVALID', `${field} must be ${length} hex characters, got ${value.length} characters "${preview}"`, { field });
  }
  return value.toLowerCase();
}

/**
 * Decodes standard padded base64 (RFC 4648 section 4). Buffer.from skips characters
 * outside the alphabet, so the text must re-encode to itself; a regular expression over
 * a payload of several MiB overflows V8's stack.
 */
function decodeBase64(text: string): Buffer {
  const payload = Buffer.from(text, 'base64');
  if (text.length % 4 !== 0 || payload.toString('base64') !== text) {
    throw new AdminError('FIELD_INVALID', 'payload must be standard padded base64 (RFC 4648 section 4) of the payload as sent', { field: 'payload' });
  }
  return payload;
}

function missing(field: string): AdminError {
  return new AdminError('FIELD_MISSING', `field "${field}" is required`, { field });
}

function wrongType(field: string, expected: string, value: unknown): AdminError {
  const actual = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
  return new AdminError('FIELD_INVALID', `field "${field}" must be ${expected}, got ${actual}`, { field });
}
