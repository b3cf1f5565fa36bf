// Shared fixtures of the server suites: a daemon in a temporary folder, releases put
// straight into the store, and a raw UDP CoAP client. The client builds each request
// byte by byte, so the tests see exactly what a device sends and receives.
import { createHash, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { encodeUint, parseDatagram, type Datagram } from '../../src/coap/datagram.ts';
import { startServer, type RunningServer } from '../../src/daemon/server.ts';
import { downloadId } from '../../src/protocol/manifest.ts';
import type { ReleaseRecord, Store } from '../../src/storage/store.ts';

export const TEST_TOKEN = 'test-admin-token-0123456789abcdef';

export async function tempDir(): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ota-server-test-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

export async function startTestServer(dataDir: string): Promise<RunningServer> {
  return startServer({
    dataDir,
    logger: pino({ level: 'silent' }),
    coapPort: 0,
    bind: '127.0.0.1',
    adminPort: 0,
    adminToken: TEST_TOKEN,
  });
}

/** Deterministic payload bytes, so a failure shows the same data on every run. */
export function payloadOf(size: number, seed = 1): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(`seed ${seed}`).digest();
  for (let offset = 0; offset < size; offset += 32) {
    block.copy(out, offset, 0, Math.min(32, size - offset));
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

export async function publish(
  store: Store,
  version: string,
  payload: Buffer,
  extra: Partial<Pick<ReleaseRecord, 'channel' | 'rollout' | 'encoding' | 'revoked'>> = {},
): Promise<ReleaseRecord> {
  const digest = createHash('sha256').update(payload).digest();
  const record: ReleaseRecord = {
    version,
    channel: extra.channel ?? 'stable',
    notes: `test release ${version}`,
    encoding: extra.encoding ?? 'raw',
    rollout: extra.rollout ?? 100,
    size: payload.length,
    sha256: digest.toString('hex'),
    // Tests of the CoAP side never verify it; 64 recognizable bytes stand in.
    signature: Buffer.alloc(64, 0x5a).toString('hex'),
    downloadId: downloadId(digest),
    revoked: extra.revoked ?? false,
    publishedAt: '2026-01-01T00:00:00.000Z',
  };
  await store.putRelease(record, payload);
  return record;
}

export const Code = { GET: 1, POST: 2, PUT: 3, DELETE: 4 } as const;

export interface RequestSpec {
  code: number;
  /** Option number and encoded value; sorted by number before encoding. */
  options?: Array<[number, Buffer]>;
  payload?: Buffer;
  type?: number;
  mid?: number;
  token?: Buffer;
}

/** Encodes a CoAP request (RFC 7252 section 3) from its parts. */
export function encodeRequest(spec: RequestSpec): Buffer {
  const token = spec.token ?? randomBytes(4);
  const header = Buffer.alloc(4);
  header[0] = 0x40 | ((spec.type ?? 0) << 4) | token.length;
  header[1] = spec.code;
  header.writeUInt16BE(spec.mid ?? randomBytes(2).readUInt16BE(0), 2);
  const parts = [header, token];
  let previous = 0;
  const options = [...(spec.options ?? [])].sort((a, b) => a[0] - b[0]);
  for (const [number, value] of options) {
    parts.push(optionHeader(number - previous, value.length), value);
    previous = number;
  }
  if (spec.payload && spec.payload.length > 0) parts.push(Buffer.from([0xff]), spec.payload);
  return Buffer.concat(parts);
}

function optionHeader(delta: number, length: number): Buffer {
  const bytes = [0];
  const nibble = (value: number): number => {
    if (value < 13) return value;
    if (value < 269) {
      bytes.push(value - 13);
      return 13;
    }
    bytes.push((value - 269) >> 8, (value - 269) & 0xff);
    return 14;
  };
  const deltaNibble = nibble(delta);
  const lengthNibble = nibble(length);
  bytes[0] = (deltaNibble << 4) | lengthNibble;
  return Buffer.from(bytes);
}

export const path_ = (...segments: string[]): Array<[number, Buffer]> => segments.map((s) => [11, Buffer.from(s)]);
export const query = (...items: string[]): Array<[number, Buffer]> => items.map((s) => [15, Buffer.from(s)]);
export const uintOption = (number: number, value: number): [number, Buffer] => [number, encodeUint(value)];
export const block2 = (num: number, szx: number): [number, Buffer] => {
  const value = encodeUint((num << 4) | szx);
  return [23, value.length === 0 ? Buffer.from([0]) : value];
};

/** A UDP client socket on 127.0.0.1 that sends datagrams and waits for replies. */
export class RawClient {
  private readonly socket = dgram.createSocket('udp4');
  private readonly queue: Buffer[] = [];
  private waiter: ((msg: Buffer) => void) | undefined;

  constructor(private readonly port: number) {
    this.socket.on('message', (msg) => {
      const waiter = this.waiter;
      if (waiter) {
        this.waiter = undefined;
        waiter(msg);
      } else {
        this.queue.push(msg);
      }
    });
  }

  send(datagram: Buffer): void {
    this.socket.send(datagram, this.port, '127.0.0.1');
  }

  /** Waits for the next datagram; rejects after timeoutMs. */
  next(timeoutMs = 5000): Promise<Buffer> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`no datagram within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = (msg) => {
        clearTimeout(timer);
        resolve(msg);
      };
    });
  }

  /** Returns true when nothing arrives within waitMs. */
  async silent(waitMs: number): Promise<boolean> {
    try {
      await this.next(waitMs);
      return false;
    } catch {
      return true;
    }
  }

  /** Sends a request and returns the parsed response. */
  async request(spec: RequestSpec): Promise<Datagram> {
    this.send(encodeRequest(spec));
    const parsed = parseDatagram(await this.next());
    if (!parsed.ok) throw new Error(`response is not a CoAP message: ${parsed.reason}`);
    return parsed.datagram;
  }

  close(): void {
    this.socket.close();
  }
}

export function optionOf(datagram: Datagram, number: number): Buffer | undefined {
  return datagram.options.find((option) => option.number === number)?.value;
}
