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
  const code = `${codeByte >> 5}.${String(codeByte & 0x1f).padStart(2, '0')}`;
  const token = buffer.subarray(HEADER_BYTES, HEADER_BYTES + tokenLength);

  if (code === '0.00') {
    // An Empty message is the header alone (RFC 7252 section 4.1).
    if (buffer.length !== HEADER_BYTES || tokenLength !== 0) {
      return { ok: false, reason: 'an Empty message must be the 4-byte header alone', mid, type };
    }
    return { ok: true, datagram: { type, code, mid, token, options: [], payload: Buffer.alloc(0) } };
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
  return { ok: true, datagram: { type, code, mid, token, options, payload: Buffer.alloc(0) } };
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

export function optionValues(datagram: Datagram, number: number): Buffer[] {
  return datagram.options.filter((option) => option.number === number).map((option) => option.value);
}
