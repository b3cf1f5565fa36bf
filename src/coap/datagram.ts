// CoAP message framing (RFC 7252 section 3): a strict parser that runs on every
// datagram before node-coap parses it. node-coap's parser (coap-packet 1.1.1) accepts
// options that run past the end of the datagram and token lengths 9..12, so faults
// the RFC calls message format errors are caught here, where the answer is a Reset
// or silence rather than a response.

/** Message types (RFC 7252 section 3). */
export const MessageType = { con: 0, non: 1, ack: 2, rst: 3 } as const;

/** Option numbers this server reads (RFC 7252 section 12.2, RFC 7959 section 6). */
export const OptionNumber = {
  ifMatch: 1,
  uriHost: 3,
  etag: 4,
  ifNoneMatch: 5,
  observe: 6,
  uriPort: 7,
  uriPath: 11,
  contentFormat: 12,
  maxAge: 14,
  uriQuery: 15,
  accept: 17,
  block2: 23,
  block1: 27,
  size2: 28,
  proxyUri: 35,
  proxyScheme: 39,
  size1: 60,
} as const;

const HEADER_BYTES = 4;
const MAX_TOKEN_BYTES = 8;
const PAYLOAD_MARKER = 0xff;
/** "class.detail" for each code byte, built once so that parsing allocates no string. */
const CODE_STRINGS = Array.from({ length: 256 }, (_, byte) => `${byte >> 5}.${String(byte & 0x1f).padStart(2, '0')}`);
/** Payload of every datagram without one: a zero-length buffer has no bytes to change, so one instance serves all. */
const NO_PAYLOAD = Buffer.alloc(0);

export interface CoapOption {
  number: number;
  value: Buffer;
}

export interface Datagram {
  type: number;
  /** Code as "class.detail", such as "0.01" for GET. */
  code: string;
  mid: number;
  token: Buffer;
  /** Options in the order they appear, so by ascending number. */
  options: CoapOption[];
  payload: Buffer;
}

export type ParseResult =
  | { ok: true; datagram: Datagram }
  /** mid and type are set when the 4-byte header was readable, so a Reset can name the message. */
  | { ok: false; reason: string; mid?: number; type?: number };

export function parseDatagram(buffer: Buffer): ParseResult {
  if (buffer.length < HEADER_BYTES) {
    return { ok: false, reason: `datagram has ${buffer.length} bytes, the CoAP header needs ${HEADER_BYTES}` };
  }
  const first = buffer[0]!;
  const version = first >> 6;
  const type = (first >> 4) & 0x3;
  const tokenLength = first & 0x0f;
  const mid = buffer.readUInt16BE(2);
  if (version !== 1) return { ok: false, reason: `CoAP version must be 1, got ${version}` };
  if (tokenLength > MAX_TOKEN_BYTES) {
    return { ok: false, reason: `token length must be 0..${MAX_TOKEN_BYTES}, got ${tokenLength}`, mid, type };
  }
  if (buffer.length < HEADER_BYTES + tokenLength) {
    return { ok: false, reason: `token of ${tokenLength} bytes runs past the end of the datagram`, mid, type };
  }
  const codeByte = buffer[1]!;
  const code = CODE_STRINGS[codeByte]!;
  const token = buffer.subarray(HEADER_BYTES, HEADER_BYTES + tokenLength);

  if (code === '0.00') {
    // An Empty message is the header alone (RFC 7252 section 4.1).
    if (buffer.length !== HEADER_BYTES || tokenLength !== 0) {
      return { ok: false, reason: 'an Empty message must be the 4-byte header alone', mid, type };
    }
    return { ok: true, datagram: { type, code, mid, token, options: [], payload: NO_PAYLOAD } };
  }

  const options: CoapOption[] = [];
  let offset = HEADER_BYTES + tokenLength;
  let number = 0;
  while (offset < buffer.length) {
    const byte = buffer[offset]!;
    if (byte === PAYLOAD_MARKER) {
      if (offset + 1 === buffer.length) {
        return { ok: false, reason: 'payload marker 0xff with no payload after it (RFC 7252 section 3)', mid, type };
      }
      return { ok: true, datagram: { type, code, mid, token, options, payload: buffer.subarray(offset + 1) } };
    }
    offset += 1;
    const delta = readExtended(buffer, offset, byte >> 4);
    if (!delta) return { ok: false, reason: `option delta at byte ${offset - 1} is reserved or truncated`, mid, type };
    offset = delta.next;
    const length = readExtended(buffer, offset, byte & 0x0f);
    if (!length) return { ok: false, reason: `option length at byte ${offset - 1} is reserved or truncated`, mid, type };
    offset = length.next;
    if (offset + length.value > buffer.length) {
      return { ok: false, reason: `option ${number + delta.value} of ${length.value} bytes runs past the end of the datagram`, mid, type };
    }
    number += delta.value;
    options.push({ number, value: buffer.subarray(offset, offset + length.value) });
    offset += length.value;
  }
  return { ok: true, datagram: { type, code, mid, token, options, payload: NO_PAYLOAD } };
}

/** Reads an option delta or length nibble and its extended bytes (RFC 7252 section 3.1). */
function readExtended(buffer: Buffer, offset: number, nibble: number): { value: number; next: number } | undefined {
  if (nibble < 13) return { value: nibble, next: offset };
  if (nibble === 13) {
    if (offset + 1 > buffer.length) return undefined;
    return { value: buffer[offset]! + 13, next: offset + 1 };
  }
  if (nibble === 14) {
    if (offset + 2 > buffer.length) return undefined;
    return { value: buffer.readUInt16BE(offset) + 269, next: offset + 2 };
  }
  return undefined;
}

/** Builds a Reset for a message id (RFC 7252 section 4.2): the 4-byte header alone. */
export function resetFor(mid: number): Buffer {
  const reset = Buffer.alloc(HEADER_BYTES);
  reset[0] = 0x40 | (MessageType.rst << 4);
  reset.writeUInt16BE(mid, 2);
  return reset;
}

/**
 * Encodes a message (RFC 7252 section 3): header, token, options sorted by number
 * with delta and length nibbles, and the payload after a 0xff marker when there is one.
 * The bytes are the ones node-coap 1.5.0 (coap-packet 1.1.1) writes for the same parts.
 */
export function encodeMessage(type: number, code: string, mid: number, token: Buffer, options: readonly CoapOption[], payload: Buffer): Buffer {
  const [head, body] = encodeMessageParts(type, code, mid, token, options, payload);
  return Buffer.concat([head, body]);
}

/**
 * Encodes a message as two buffers: everything up to and including the payload marker,
 * and the payload itself, untouched. dgram.send takes both at once, so a block taken
 * from a cached chunk goes out without being copied.
 */
export function encodeMessageParts(type: number, code: string, mid: number, token: Buffer, options: readonly CoapOption[], payload: Buffer): [Buffer, Buffer] {
  const sorted = isSorted(options) ? options : [...options].sort((a, b) => a.number - b.number);
  let length = HEADER_BYTES + token.length + (payload.length > 0 ? 1 : 0);
  let previous = 0;
  for (const option of sorted) {
    length += 1 + extendedBytes(option.number - previous) + extendedBytes(option.value.length) + option.value.length;
    previous = option.number;
  }

  const out = Buffer.allocUnsafe(length);
  out[0] = 0x40 | (type << 4) | token.length;
  out[1] = codeByte(code);
  out.writeUInt16BE(mid, 2);
  let offset = HEADER_BYTES + token.copy(out, HEADER_BYTES);
  previous = 0;
  for (const option of sorted) {
    const delta = option.number - previous;
    const size = option.value.length;
    out[offset++] = (nibble(delta) << 4) | nibble(size);
    offset = writeExtended(out, offset, delta);
    offset = writeExtended(out, offset, size);
    offset += option.value.copy(out, offset);
    previous = option.number;
  }
  if (payload.length > 0) out[offset] = PAYLOAD_MARKER;
  return [out, payload];
}

function isSorted(options: readonly CoapOption[]): boolean {
  for (let i = 1; i < options.length; i++) if (options[i]!.number < options[i - 1]!.number) return false;
  return true;
}

const codeBytes = new Map<string, number>();

/** Converts "class.detail" to the code byte: class in the top 3 bits, detail in the low 5. */
function codeByte(code: string): number {
  let byte = codeBytes.get(code);
  if (byte === undefined) {
    const [codeClass, detail] = code.split('.').map(Number);
    byte = (codeClass! << 5) | detail!;
    codeBytes.set(code, byte);
  }
  return byte;
}

/** Option delta and length nibbles: 0..12 inline, 13 and 14 announce 1 or 2 extended bytes (RFC 7252 section 3.1). */
function nibble(value: number): number {
  if (value < 13) return value;
  return value < 269 ? 13 : 14;
}

function extendedBytes(value: number): number {
  if (value < 13) return 0;
  return value < 269 ? 1 : 2;
}

function writeExtended(out: Buffer, offset: number, value: number): number {
  if (value < 13) return offset;
  if (value < 269) {
    out[offset] = value - 13;
    return offset + 1;
  }
  out.writeUInt16BE(value - 269, offset);
  return offset + 2;
}

/** Encodes an unsigned integer option value in as few bytes as possible (RFC 7252 section 3.2). */
export function encodeUint(value: number): Buffer {
  const bytes: number[] = [];
  for (let rest = value; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return Buffer.from(bytes);
}

export function decodeUint(value: Buffer): number {
  let result = 0;
  for (const byte of value) result = result * 256 + byte;
  return result;
}

/** Returns the first value of an option, without building an array. */
export function firstOption(datagram: Datagram, number: number): Buffer | undefined {
  for (const option of datagram.options) if (option.number === number) return option.value;
  return undefined;
}

export function countOption(datagram: Datagram, number: number): number {
  let count = 0;
  for (const option of datagram.options) if (option.number === number) count++;
  return count;
}

export function optionValues(datagram: Datagram, number: number): Buffer[] {
  return datagram.options.filter((option) => option.number === number).map((option) => option.value);
}
