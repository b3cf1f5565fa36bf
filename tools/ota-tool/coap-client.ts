// Minimal CoAP client for ota-tool's check and download: message codec (RFC 7252
// section 3), confirmable exchange with retransmission (section 4.2), and Block2
// option values (RFC 7959 section 2.2). It is not a general CoAP stack: no observe,
// no Block1, no DTLS. node-coap's agent follows Block2 by itself (coap 1.5.0,
// lib/agent.js), so download needs this client to send one request per block.
import { randomBytes, randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

/** Option numbers used here (RFC 7252 section 12.2, RFC 7959 section 2.1). */
export const OptionNumber = {
  etag: 4,
  uriPort: 7,
  uriPath: 11,
  contentFormat: 12,
  maxAge: 14,
  uriQuery: 15,
  accept: 17,
  block2: 23,
  size2: 28,
} as const;

/** Message types (RFC 7252 section 3). */
export const MessageType = { con: 0, non: 1, ack: 2, rst: 3 } as const;

export const DEFAULT_COAP_PORT = 5683;

/** Transmission parameters (RFC 7252 section 4.8) with their default values. */
export const ACK_TIMEOUT_MS = 2000;
export const ACK_RANDOM_FACTOR = 1.5;
export const MAX_RETRANSMIT = 4;
/**
 * MAX_TRANSMIT_WAIT (RFC 7252 section 4.8.2): ACK_TIMEOUT * (2 ** (MAX_RETRANSMIT + 1) - 1)
 * * ACK_RANDOM_FACTOR = 93 s, the longest a confirmable request keeps being retransmitted.
 */
export const MAX_TRANSMIT_WAIT_MS = ACK_TIMEOUT_MS * (2 ** (MAX_RETRANSMIT + 1) - 1) * ACK_RANDOM_FACTOR;
/**
 * Maximum wait for a separate response after an empty ACK. RFC 7252 leaves this open
 * (section 5.2.2); one MAX_TRANSMIT_WAIT bounds it here.
 */
export const SEPARATE_RESPONSE_WAIT_MS = MAX_TRANSMIT_WAIT_MS;

export interface CoapOption {
  number: number;
  value: Buffer;
}

export interface CoapMessage {
  type: number;
  /** Code as class * 32 + detail, so 2.05 is 69. */
  code: number;
  mid: number;
  token: Buffer;
  /** Options sorted by number, repeated options in their order on the wire. */
  options: CoapOption[];
  payload: Buffer;
}

/** Formats a code as "c.dd", such as 2.05 or 4.04. */
export function formatCode(code: number): string {
  return `${code >> 5}.${String(code & 0x1f).padStart(2, '0')}`;
}

export function codeOf(text: string): number {
  const [cls, detail] = text.split('.').map(Number);
  return ((cls ?? 0) << 5) | (detail ?? 0);
}

/** Encodes an unsigned integer option value in the fewest bytes (RFC 7252 section 3.2). */
export function encodeUint(value: number): Buffer {
  const bytes: number[] = [];
  let rest = value;
  while (rest > 0) {
    bytes.unshift(rest & 0xff);
    rest = Math.floor(rest / 256);
  }
  return Buffer.from(bytes);
}

export function decodeUint(value: Buffer): number {
  let result = 0;
  for (const byte of value) result = result * 256 + byte;
  return result;
}

export interface BlockValue {
  num: number;
  more: boolean;
  /** Size exponent: the block size is 2 ** (szx + 4) bytes. */
  szx: number;
}

/** Encodes a Block1/Block2 value: NUM << 4 | M << 3 | SZX (RFC 7959 section 2.2). */
export function encodeBlock(block: BlockValue): Buffer {
  return encodeUint(block.num * 16 + (block.more ? 8 : 0) + block.szx);
}

export function decodeBlock(value: Buffer): BlockValue {
  if (value.length > 3) throw new Error(`Block option must be 0..3 bytes, got ${value.length}`);
  const raw = decodeUint(value);
  return { num: Math.floor(raw / 16), more: (raw & 8) !== 0, szx: raw & 7 };
}

/** Converts a block size in bytes (16..1024, a power of two) to its SZX. */
export function szxOf(blockSize: number): number {
  const szx = Math.log2(blockSize) - 4;
  if (!Number.isInteger(szx) || szx < 0 || szx > 6) {
    throw new Error(`block size must be a power of two in 16..1024, got ${blockSize}`);
  }
  return szx;
}

function writeOptionNibble(value: number): { nibble: number; extended: Buffer } {
  if (value < 13) return { nibble: value, extended: Buffer.alloc(0) };
  if (value < 269) return { nibble: 13, extended: Buffer.from([value - 13]) };
  const extended = Buffer.alloc(2);
  extended.writeUInt16BE(value - 269);
  return { nibble: 14, extended };
}

export function encodeMessage(message: CoapMessage): Buffer {
  if (message.token.length > 8) throw new Error(`token must be 0..8 bytes, got ${message.token.length}`);
  const parts: Buffer[] = [];
  const header = Buffer.alloc(4);
  header.writeUInt8(0x40 | (message.type << 4) | message.token.length, 0);
  header.writeUInt8(message.code, 1);
  header.writeUInt16BE(message.mid, 2);
  parts.push(header, message.token);

  const options = [...message.options].sort((a, b) => a.number - b.number);
  let previous = 0;
  for (const option of options) {
    const delta = writeOptionNibble(option.number - previous);
    const length = writeOptionNibble(option.value.length);
    parts.push(Buffer.from([(delta.nibble << 4) | length.nibble]), delta.extended, length.extended, option.value);
    previous = option.number;
  }
  if (message.payload.length > 0) parts.push(Buffer.from([0xff]), message.payload);
  return Buffer.concat(parts);
}

function readOptionNibble(nibble: number, data: Buffer, offset: number): { value: number; offset: number } {
  if (nibble < 13) return { value: nibble, offset };
  if (nibble === 13) {
    if (offset + 1 > data.length) throw new Error('CoAP message truncated in an option header');
    return { value: data.readUInt8(offset) + 13, offset: offset + 1 };
  }
  if (nibble === 14) {
    if (offset + 2 > data.length) throw new Error('CoAP message truncated in an option header');
    return { value: data.readUInt16BE(offset) + 269, offset: offset + 2 };
  }
  throw new Error('CoAP option nibble 15 is reserved (RFC 7252 section 3.1)');
}

export function decodeMessage(data: Buffer): CoapMessage {
  if (data.length < 4) throw new Error(`CoAP message must be at least 4 bytes, got ${data.length}`);
  const first = data.readUInt8(0);
  if (first >> 6 !== 1) throw new Error(`CoAP version must be 1, got ${first >> 6}`);
  const tokenLength = first & 0x0f;
  if (tokenLength > 8) throw new Error(`CoAP token length must be 0..8, got ${tokenLength}`);
  if (4 + tokenLength > data.length) throw new Error('CoAP message truncated in the token');
  const message: CoapMessage = {
    type: (first >> 4) & 0x03,
    code: data.readUInt8(1),
    mid: data.readUInt16BE(2),
    token: Buffer.from(data.subarray(4, 4 + tokenLength)),
    options: [],
    payload: Buffer.alloc(0),
  };

  let offset = 4 + tokenLength;
  let number = 0;
  while (offset < data.length) {
    const byte = data.readUInt8(offset);
    offset += 1;
    if (byte === 0xff) {
      if (offset === data.length) throw new Error('CoAP payload marker followed by no payload');
      message.payload = Buffer.from(data.subarray(offset));
      break;
    }
    const delta = readOptionNibble(byte >> 4, data, offset);
    const length = readOptionNibble(byte & 0x0f, data, delta.offset);
    offset = length.offset;
    if (offset + length.value > data.length) throw new Error(`CoAP option ${number + delta.value} truncated`);
    number += delta.value;
    message.options.push({ number, value: Buffer.from(data.subarray(offset, offset + length.value)) });
    offset += length.value;
  }
  return message;
}

export function findOption(message: CoapMessage, number: number): Buffer | undefined {
  return message.options.find((option) => option.number === number)?.value;
}

export interface CoapTarget {
  host: string;
  port: number;
  /** Uri-Path segments, without the leading slash. */
  path: string[];
  query: string[];
}

/** Parses coap://host[:port]/path?query into its parts; percent-escapes are decoded. */
export function parseCoapUri(uri: string): CoapTarget {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new Error(`"${uri}" is not a URI; write it as coap://HOST[:PORT][/PATH]`);
  }
  if (url.protocol !== 'coap:') {
    throw new Error(`"${uri}" must use the coap:// scheme (DTLS is not supported); write it as coap://HOST[:PORT][/PATH]`);
  }
  if (!url.hostname) throw new Error(`"${uri}" has no host; write it as coap://HOST[:PORT][/PATH]`);
  const path = url.pathname
    .split('/')
    .filter((segment) => segment.length > 0)
    .map((segment) => decodeURIComponent(segment));
  const query = url.search
    .replace(/^\?/, '')
    .split('&')
    .filter((part) => part.length > 0)
    .map((part) => decodeURIComponent(part));
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return { host, port: url.port ? Number(url.port) : DEFAULT_COAP_PORT, path, query };
}

export interface RequestOptions {
  code: number;
  options?: CoapOption[];
  payload?: Buffer;
}

export interface ClientTiming {
  ackTimeoutMs: number;
  maxRetransmit: number;
  separateResponseWaitMs: number;
  /** Time from the first transmission of a request to giving up on it, retransmissions and separate response included. */
  requestTimeoutMs: number;
  /** Called before each retransmission with its number (1..maxRetransmit) and the time since the first transmission. */
  onRetransmit?: (retransmission: number, elapsedMs: number) => void;
}

export const DEFAULT_TIMING: ClientTiming = {
  ackTimeoutMs: ACK_TIMEOUT_MS,
  maxRetransmit: MAX_RETRANSMIT,
  separateResponseWaitMs: SEPARATE_RESPONSE_WAIT_MS,
  requestTimeoutMs: MAX_TRANSMIT_WAIT_MS,
};

/**
 * Returns the timing of check and download: --timeout in seconds (default
 * MAX_TRANSMIT_WAIT) and a progress line on stderr before each retransmission, so a
 * dead server is visible long before the request gives up.
 */
export function commandTiming(timeoutS: number | undefined, where: string, writeStderr: (text: string) => void): Partial<ClientTiming> {
  return {
    requestTimeoutMs: timeoutS === undefined ? MAX_TRANSMIT_WAIT_MS : timeoutS * 1000,
    onRetransmit: (retransmission, elapsedMs) => {
      writeStderr(`no reply from ${where} after ${(elapsedMs / 1000).toFixed(1)} s; retransmission ${retransmission} of ${MAX_RETRANSMIT}\n`);
    },
  };
}

/**
 * One UDP socket bound to one server endpoint, sending confirmable requests one at a
 * time. Replies are matched by mid (ACK, RST) and by token (response).
 */
export class CoapClient {
  private readonly socket: dgram.Socket;
  private nextMid = randomInt(0, 0x10000);
  /** Retransmissions sent over the client's lifetime, for reporting. */
  retransmits = 0;
  /** Rejects of the requests in flight, so close() can end them at once. */
  private readonly pending = new Set<(error: Error) => void>();
  private closed = false;

  private constructor(
    private readonly address: string,
    private readonly port: number,
    private readonly timing: ClientTiming,
  ) {
    this.socket = dgram.createSocket(isIP(address) === 6 ? 'udp6' : 'udp4');
  }

  static async connect(host: string, port: number, timing: Partial<ClientTiming> = {}): Promise<CoapClient> {
    const address = isIP(host) ? host : (await lookup(host)).address;
    const client = new CoapClient(address, port, { ...DEFAULT_TIMING, ...timing });
    await new Promise<void>((resolve, reject) => {
      client.socket.once('error', reject);
      client.socket.bind(0, () => {
        client.socket.off('error', reject);
        resolve();
      });
    });
    return client;
  }

  /** Closes the socket and rejects the requests in flight; a second call does nothing. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const cancel of [...this.pending]) cancel(new Error('the request was cancelled because the client closed'));
    this.socket.close();
  }

  /** Sends a confirmable request and resolves with the response; rejects after the last retransmission. */
  request(target: Pick<CoapTarget, 'path' | 'query'>, request: RequestOptions): Promise<CoapMessage> {
    const mid = this.nextMid;
    this.nextMid = (this.nextMid + 1) & 0xffff;
    const token = randomBytes(4);
    const options: CoapOption[] = [
      ...target.path.map((segment) => ({ number: OptionNumber.uriPath, value: Buffer.from(segment, 'utf8') })),
      ...target.query.map((part) => ({ number: OptionNumber.uriQuery, value: Buffer.from(part, 'utf8') })),
      ...(request.options ?? []),
    ];
    const datagram = encodeMessage({
      type: MessageType.con,
      code: request.code,
      mid,
      token,
      options,
      payload: request.payload ?? Buffer.alloc(0),
    });

    return new Promise<CoapMessage>((resolve, reject) => {
      let attempts = 0;
      let timeoutMs = this.timing.ackTimeoutMs * (1 + Math.random() * (ACK_RANDOM_FACTOR - 1));
      let timer: NodeJS.Timeout | undefined;
      const where = `coap://${this.address}:${this.port}/${target.path.join('/')}`;
      const started = performance.now();
      const remainingMs = (): number => Math.max(0, this.timing.requestTimeoutMs - (performance.now() - started));

      const finish = (error: Error | null, response?: CoapMessage): void => {
        clearTimeout(timer);
        this.pending.delete(onError);
        this.socket.off('message', onMessage);
        this.socket.off('error', onError);
        if (error) reject(error);
        else resolve(response as CoapMessage);
      };
      const onError = (error: Error): void => finish(error);
      const transmit = (): void => {
        this.socket.send(datagram, this.port, this.address);
        timer = setTimeout(() => {
          if (attempts >= this.timing.maxRetransmit || remainingMs() === 0) {
            const waitedS = ((performance.now() - started) / 1000).toFixed(1);
            finish(new Error(`no reply from ${where} after ${attempts + 1} transmissions in ${waitedS} s; check the host and port`));
            return;
          }
          attempts += 1;
          this.retransmits += 1;
          timeoutMs *= 2;
          this.timing.onRetransmit?.(attempts, performance.now() - started);
          transmit();
        }, Math.min(timeoutMs, remainingMs()));
      };
      const onMessage = (data: Buffer, remote: dgram.RemoteInfo): void => {
        if (remote.port !== this.port) return;
        let reply: CoapMessage;
        try {
          reply = decodeMessage(data);
        } catch {
          return;
        }
        if (reply.type === MessageType.rst && reply.mid === mid) {
          finish(new Error(`${where} reset the request (RST); the server could not process it`));
          return;
        }
        if (reply.type === MessageType.ack && reply.mid === mid && reply.code === 0) {
          // Empty ACK (RFC 7252 section 5.2.2): the response follows in its own message.
          clearTimeout(timer);
          const waitMs = Math.min(this.timing.separateResponseWaitMs, remainingMs());
          timer = setTimeout(() => finish(new Error(`${where} acknowledged but sent no response within ${Math.round(waitMs)} ms`)), waitMs);
          return;
        }
        if (reply.code === 0 || !reply.token.equals(token)) return;
        if (reply.type === MessageType.con) {
          this.socket.send(
            encodeMessage({ type: MessageType.ack, code: 0, mid: reply.mid, token: Buffer.alloc(0), options: [], payload: Buffer.alloc(0) }),
            this.port,
            this.address,
          );
        }
        finish(null, reply);
      };

      if (this.closed) {
        reject(new Error('the client is closed'));
        return;
      }
      this.pending.add(onError);
      this.socket.on('message', onMessage);
      this.socket.on('error', onError);
      transmit();
    });
  }
}
