// The per-device limit on the real daemon over UDP. Checks and reports past the burst
// get 5.03 with Max-Age, and other devices and image blocks are still served. A
// rejected request stores nothing, warnings are throttled, and "off" lifts the limit.
import { Writable } from 'node:stream';
import { Encoder } from 'cbor-x';
import pino from 'pino';
import { afterEach, describe, expect, test } from 'vitest';
import { decodeUint } from '../../src/coap/datagram.ts';
import { startServer, type RunningServer } from '../../src/daemon/server.ts';
import { Outcome } from '../../src/protocol/constants.ts';
import type { RateLimit } from '../../src/rate-limit.ts';
import { Code, RawClient, TEST_TOKEN, block2, optionOf, path_, payloadOf, publish, query, tempDir, uintOption, type RequestSpec } from './helpers.ts';

const cbor = new Encoder({ useRecords: false, useTag259ForMaps: false } as object);
const CBOR_FORMAT = uintOption(12, 60);
const MAX_AGE = 14;
/** 2 requests at once, then one every 10 s: Max-Age 10 right after the burst. */
const TINY_LIMIT: RateLimit = { burst: 2, ratePerMinute: 6 };

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Harness {
  server: RunningServer;
  client: RawClient;
  lines: Array<Record<string, unknown>>;
}

async function start(deviceRate: RateLimit | 'off'): Promise<Harness> {
  const temp = await tempDir();
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
      callback();
    },
  });
  const server = await startServer({
    dataDir: temp.dir,
    logger: pino({ level: 'info' }, stream),
    coapPort: 0,
    bind: '127.0.0.1',
    adminPort: 0,
    adminToken: TEST_TOKEN,
    deviceRate,
  });
  const client = new RawClient(server.coapPort);
  cleanups.push(() => temp.remove(), () => server.close(), () => client.close());
  return { server, client, lines };
}

function check(deviceId: string): RequestSpec {
  return { code: Code.POST, options: [...path_('c'), CBOR_FORMAT], payload: cbor.encode(new Map<number, unknown>([[0, deviceId], [1, '1.0.0']])) };
}

function report(deviceId: string): RequestSpec {
  const body = new Map<number, unknown>([[0, deviceId], [1, '1.0.0'], [2, Outcome.confirmed], [3, '1.0.0']]);
  return { code: Code.POST, options: [...path_('r'), CBOR_FORMAT], payload: cbor.encode(body) };
}

describe('device rate limit', () => {
  test('over the limit gets 5.03', async () => {
    const { client } = await start(TINY_LIMIT);
    expect((await client.request(check('pico-a'))).code).toBe('2.05');
    expect((await client.request(check('pico-a'))).code).toBe('2.05');

    const rejected = await client.request(check('pico-a'));
    expect(rejected.code).toBe('5.03');
    expect(decodeUint(optionOf(rejected, MAX_AGE)!)).toBe(10);
    expect(rejected.payload.toString('utf8')).toBe('device pico-a sent more checks and reports than its limit of 6 per minute allows; retry in 10 s (Max-Age)');

    const query_ = await client.request({ code: Code.GET, options: [...path_('c'), ...query('d=pico-a', 'v=1.0.0')] });
    expect(query_.code).toBe('5.03');
    const reported = await client.request(report('pico-a'));
    expect(reported.code).toBe('5.03');
    expect(decodeUint(optionOf(reported, MAX_AGE)!)).toBeGreaterThanOrEqual(9);
  });

  test('other device unaffected', async () => {
    const { client } = await start(TINY_LIMIT);
    for (let i = 0; i < 4; i++) await client.request(check('pico-a'));
    expect((await client.request(check('pico-b'))).code).toBe('2.05');
    expect((await client.request(report('pico-b'))).code).toBe('2.04');
  });

  test('rejected request stores nothing', async () => {
    const { server, client } = await start(TINY_LIMIT);
    await client.request(check('pico-a'));
    await client.request(check('pico-a'));
    const before = await server.store.dumpRaw();
    expect((await client.request(check('pico-a'))).code).toBe('5.03');
    expect((await client.request(report('pico-a'))).code).toBe('5.03');
    expect(await server.store.dumpRaw()).toEqual(before);
  });

  test('blocks never limited', async () => {
    const { server, client } = await start({ burst: 1, ratePerMinute: 1 });
    const release = await publish(server.store, '2.0.0', payloadOf(64 * 16));
    await client.request(check('pico-a'));
    expect((await client.request(check('pico-a'))).code).toBe('5.03');
    for (let num = 0; num < 64; num++) {
      const reply = await client.request({ code: Code.GET, type: 0, options: [...path_('d', release.downloadId), block2(num, 0)] });
      expect(reply.code, `block ${num}`).toBe('2.05');
    }
  });

  test('warnings throttled', async () => {
    const { client, lines } = await start(TINY_LIMIT);
    for (let i = 0; i < 20; i++) await client.request(check('pico-a'));
    const warnings = lines.filter((line) => line.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ deviceId: 'pico-a', retryAfterS: 10, msg: 'device over its rate limit; answering 5.03' });
    expect(String(warnings[0]!.address)).toMatch(/^127\.0\.0\.1:[0-9]+$/);
  });

  test('off never answers 5.03', async () => {
    const { client, lines } = await start('off');
    for (let i = 0; i < 40; i++) {
      const reply = await client.request(i % 2 === 0 ? check('pico-a') : report('pico-a'));
      expect(reply.code, `request ${i}`).toMatch(/^2\.0[45]$/);
    }
    expect(lines.find((line) => line.msg === 'listening')).toMatchObject({ deviceRate: 'off' });
  });
});
