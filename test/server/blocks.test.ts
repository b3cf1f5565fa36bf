// Block2 serving and the resources' option handling on the real daemon over real UDP.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Encoder } from 'cbor-x';
import { decodeUint } from '../../src/coap/datagram.ts';
import type { RunningServer } from '../../src/daemon/server.ts';
import type { ReleaseRecord } from '../../src/storage/store.ts';
import { Code, RawClient, block2, encodeRequest, optionOf, path_, payloadOf, publish, startTestServer, tempDir, uintOption } from './helpers.ts';

const cbor = new Encoder({ useRecords: false, useTag259ForMaps: false } as object);
const IMAGE_SIZE = 5000;

let temp: Awaited<ReturnType<typeof tempDir>>;
let server: RunningServer;
let client: RawClient;
let release: ReleaseRecord;
let image: Buffer;

beforeAll(async () => {
  temp = await tempDir();
  server = await startTestServer(temp.dir);
  image = payloadOf(IMAGE_SIZE);
  release = await publish(server.store, '1.1.0', image);
  client = new RawClient(server.coapPort);
});

afterAll(async () => {
  client.close();
  await server.close();
  await temp.remove();
});

function getBlock(num: number, szx: number, extra: Array<[number, Buffer]> = []) {
  return client.request({ code: Code.GET, options: [...path_('d', release.downloadId), block2(num, szx), ...extra] });
}

function blockOption(value: Buffer | undefined): { num: number; more: boolean; szx: number } {
  const raw = decodeUint(value ?? Buffer.alloc(0));
  return { num: raw >> 4, more: (raw & 8) !== 0, szx: raw & 7 };
}

describe('block serving', () => {
  for (let szx = 0; szx <= 6; szx++) {
    it(`whole image at SZX ${szx}`, async () => {
      const blockSize = 1 << (szx + 4);
      const parts: Buffer[] = [];
      for (let num = 0; ; num++) {
        const response = await getBlock(num, szx);
        expect(response.code).toBe('2.05');
        const block = blockOption(optionOf(response, 23));
        expect(block).toEqual({ num, more: block.more, szx });
        expect(response.payload.length).toBe(block.more ? blockSize : IMAGE_SIZE - num * blockSize);
        parts.push(response.payload);
        if (!block.more) break;
      }
      expect(Buffer.concat(parts).equals(image)).toBe(true);
    });
  }

  it('size change mid-transfer', async () => {
    // Blocks 0..1 at 1024 bytes cover bytes 0..2047; at 64 bytes that is NUM 32 onwards.
    const first = [await getBlock(0, 6), await getBlock(1, 6)].map((r) => r.payload);
    const rest: Buffer[] = [];
    for (let num = 32; ; num++) {
      const response = await getBlock(num, 2);
      rest.push(response.payload);
      if (!blockOption(optionOf(response, 23)).more) break;
    }
    expect(Buffer.concat([...first, ...rest]).equals(image)).toBe(true);
  });

  it('ETag stable and 8 bytes', async () => {
    const etags = [await getBlock(0, 6), await getBlock(3, 4), await getBlock(4, 6)].map((r) => optionOf(r, 4));
    const expected = createHash('sha256').update(image).digest().subarray(0, 8);
    for (const etag of etags) expect(etag?.equals(expected)).toBe(true);
  });

  it('Size2 on block 0 and on request', async () => {
    expect(decodeUint(optionOf(await getBlock(0, 2), 28)!)).toBe(IMAGE_SIZE);
    expect(optionOf(await getBlock(1, 2), 28)).toBeUndefined();
    expect(decodeUint(optionOf(await getBlock(1, 2, [[28, Buffer.alloc(0)]]), 28)!)).toBe(IMAGE_SIZE);
  });

  it('Max-Age one year and Content-Format 42', async () => {
    const response = await getBlock(0, 6);
    expect(decodeUint(optionOf(response, 14)!)).toBe(31536000);
    expect(decodeUint(optionOf(response, 12)!)).toBe(42);
  });

  it('2.03 on matching ETag', async () => {
    const etag = Buffer.from(release.sha256, 'hex').subarray(0, 8);
    const response = await getBlock(2, 6, [[4, etag]]);
    expect(response.code).toBe('2.03');
    expect(response.payload.length).toBe(0);
    expect(optionOf(response, 4)?.equals(etag)).toBe(true);
  });

  it('other ETag gets the block', async () => {
    const response = await getBlock(2, 6, [[4, Buffer.alloc(8, 1)]]);
    expect(response.code).toBe('2.05');
    expect(response.payload.equals(image.subarray(2048, 3072))).toBe(true);
  });

  it('no Block2 gives block 0 at 1024', async () => {
    const response = await client.request({ code: Code.GET, options: path_('d', release.downloadId) });
    expect(blockOption(optionOf(response, 23))).toEqual({ num: 0, more: true, szx: 6 });
    expect(response.payload.equals(image.subarray(0, 1024))).toBe(true);
  });

  it('last block has M = 0', async () => {
    const response = await getBlock(4, 6);
    expect(blockOption(optionOf(response, 23)).more).toBe(false);
    expect(response.payload.equals(image.subarray(4096))).toBe(true);
  });

  it('download events at first and last block', async () => {
    const before = await server.store.listEvents({ limit: 1000 });
    await getBlock(0, 5);
    await getBlock(9, 5);
    const after = await server.store.listEvents({ limit: 1000 });
    const added = after.slice(0, after.length - before.length).map((e) => e.type);
    expect(added).toEqual(['download-finished', 'download-started']);
  });
});

describe('deduplication', () => {
  it('retransmitted report recorded once', async () => {
    const report = cbor.encode(new Map<number, unknown>([[0, 'pico-dedup'], [1, '1.1.0'], [2, 1], [3, '1.1.0']]));
    const spec = { code: Code.POST, options: [...path_('r'), uintOption(12, 60)], payload: report, mid: 0x4242, token: Buffer.from([9, 9]) };
    const first = await client.request(spec);
    const second = await client.request(spec);
    expect(first.code).toBe('2.04');
    expect(second.code).toBe('2.04');
    expect(second.mid).toBe(0x4242);
    const events = await server.store.listEvents({ device: 'pico-dedup' });
    expect(events.filter((e) => e.type === 'report')).toHaveLength(1);
  });

  it('retransmission sent back to back', async () => {
    const report = cbor.encode(new Map<number, unknown>([[0, 'pico-burst'], [1, '1.0.0'], [2, 3], [3, '1.1.0']]));
    const datagram = { code: Code.POST, options: path_('r'), payload: report, mid: 0x1717, token: Buffer.from([7]) };
    const bytes = encodeRequest(datagram);
    client.send(bytes);
    client.send(bytes);
    const reply = await client.next();
    expect(reply[1]).toBe(0x44); // 2.04
    await client.silent(300);
    const events = await server.store.listEvents({ device: 'pico-burst' });
    expect(events.filter((e) => e.type === 'report')).toHaveLength(1);
  });
});

describe('link format', () => {
  it('/.well-known/core lists resources', async () => {
    const response = await client.request({ code: Code.GET, options: path_('.well-known', 'core') });
    expect(response.code).toBe('2.05');
    expect(decodeUint(optionOf(response, 12)!)).toBe(40);
    const text = response.payload.toString('utf8');
    expect(text).toContain('</c>;');
    expect(text).toContain('</r>;');
    expect(text).toContain(`</d/${release.downloadId}>;`);
  });

  it('/.well-known/core in 16-byte blocks', async () => {
    const parts: Buffer[] = [];
    for (let num = 0; ; num++) {
      const response = await client.request({ code: Code.GET, options: [...path_('.well-known', 'core'), block2(num, 0)] });
      parts.push(response.payload);
      if (!blockOption(optionOf(response, 23)).more) break;
    }
    expect(Buffer.concat(parts).toString('utf8')).toContain(`</d/${release.downloadId}>;`);
  });
});

describe('shared payload', () => {
  it('served while one sharer is not revoked', async () => {
    // 1.2.0 republishes the bytes of 1.1.0, as a fleet going back to known-good code would.
    const again = await publish(server.store, '1.2.0', image);
    expect(again.downloadId).toBe(release.downloadId);
    const links = (await client.request({ code: Code.GET, options: path_('.well-known', 'core') })).payload.toString('utf8');
    expect(links.split(`</d/${release.downloadId}>`)).toHaveLength(2);
    expect(links).toContain('title="Image 1.2.0 (stable)"');

    await server.store.updateRelease('1.1.0', { revoked: true });
    expect((await getBlock(0, 6)).code).toBe('2.05');

    await server.store.updateRelease('1.2.0', { revoked: true });
    expect((await getBlock(0, 6)).code).toBe('4.04');
  });
});
