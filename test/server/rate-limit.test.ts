// TokenBuckets and DeviceLimiter on an injected clock: burst, refill, Max-Age seconds,
// idle buckets dropped, the size cap, and warnings throttled per device.
import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, test } from 'vitest';
import { DeviceLimiter, REJECTION_REPORT_INTERVAL_MS } from '../../src/coap/device-limit.ts';
import { CoapError } from '../../src/errors.ts';
import { TokenBuckets } from '../../src/rate-limit.ts';

function clock(): { nowMs: () => number; advance(ms: number): void } {
  let now = 1_000_000;
  return { nowMs: () => now, advance: (ms) => (now += ms) };
}

function buckets(nowMs: () => number, extra: { maxKeys?: number; onDropUnreported?: (key: string, rejected: number, source: string) => void } = {}): TokenBuckets {
  return new TokenBuckets({ burst: 3, ratePerMinute: 6, maxKeys: extra.maxKeys ?? 100, reportIntervalMs: 60_000, nowMs, ...extra });
}

describe('TokenBuckets', () => {
  test('burst then rejection', () => {
    const time = clock();
    const limiter = buckets(time.nowMs);
    for (let i = 0; i < 3; i++) expect(limiter.take('a', 'x').admitted).toBe(true);
    const rejected = limiter.take('a', 'x');
    expect(rejected.admitted).toBe(false);
    // 6 per minute is one token every 10 s.
    expect(rejected.admitted ? 0 : rejected.retryAfterS).toBe(10);
  });

  test('retry seconds round up', () => {
    const time = clock();
    const limiter = buckets(time.nowMs);
    for (let i = 0; i < 3; i++) limiter.take('a', 'x');
    time.advance(2_500);
    const rejected = limiter.take('a', 'x');
    expect(rejected.admitted ? 0 : rejected.retryAfterS).toBe(8);
    expect(limiter.waitS('a')).toBe(8);
  });

  test('refill admits again', () => {
    const time = clock();
    const limiter = buckets(time.nowMs);
    for (let i = 0; i < 3; i++) limiter.take('a', 'x');
    expect(limiter.take('a', 'x').admitted).toBe(false);
    time.advance(10_000);
    expect(limiter.take('a', 'x').admitted).toBe(true);
    expect(limiter.take('a', 'x').admitted).toBe(false);
  });

  test('keys independent', () => {
    const time = clock();
    const limiter = buckets(time.nowMs);
    for (let i = 0; i < 4; i++) limiter.take('a', 'x');
    expect(limiter.take('b', 'x').admitted).toBe(true);
    expect(limiter.waitS('b')).toBe(0);
    expect(limiter.waitS('never-seen')).toBe(0);
  });

  test('clock stepping back adds nothing', () => {
    const time = clock();
    const limiter = buckets(time.nowMs);
    for (let i = 0; i < 3; i++) limiter.take('a', 'x');
    time.advance(-60_000);
    expect(limiter.take('a', 'x').admitted).toBe(false);
  });

  test('refilled buckets dropped', () => {
    const time = clock();
    const limiter = buckets(time.nowMs);
    limiter.take('a', 'x');
    limiter.take('b', 'x');
    expect(limiter.size).toBe(2);
    // One token spent refills in 10 s; the sweep runs on the next take of any key.
    time.advance(10_000);
    limiter.take('c', 'x');
    expect(limiter.size).toBe(1);
  });

  test('size cap drops least recently used', () => {
    const time = clock();
    const limiter = buckets(time.nowMs, { maxKeys: 2 });
    for (let i = 0; i < 4; i++) limiter.take('a', 'x');
    limiter.take('b', 'x');
    limiter.take('c', 'x');
    expect(limiter.size).toBe(2);
    // 'a' was evicted with an empty bucket, so it starts full again.
    expect(limiter.waitS('a')).toBe(0);
  });

  test('reports first then summary', () => {
    const time = clock();
    const limiter = buckets(time.nowMs);
    for (let i = 0; i < 3; i++) limiter.take('a', 'x');
    const first = limiter.take('a', 'x');
    expect(first.admitted ? undefined : first.report).toEqual({ kind: 'first', rejected: 1 });
    for (let i = 0; i < 5; i++) {
      const quiet = limiter.take('a', 'x');
      expect(quiet.admitted ? 'admitted' : quiet.report).toBeUndefined();
      time.advance(1_000);
    }
    time.advance(55_000);
    // 60 s later: 6 tokens came back, capped at the burst of 3.
    for (let i = 0; i < 3; i++) limiter.take('a', 'x');
    const summary = limiter.take('a', 'x');
    expect(summary.admitted ? undefined : summary.report).toEqual({ kind: 'summary', rejected: 6 });
  });

  test('drop reports unreported rejections', () => {
    const time = clock();
    const dropped: Array<[string, number, string]> = [];
    const limiter = buckets(time.nowMs, { onDropUnreported: (key, rejected, source) => dropped.push([key, rejected, source]) });
    for (let i = 0; i < 6; i++) limiter.take('a', '192.0.2.1:5683');
    time.advance(30_000);
    limiter.take('b', 'y');
    expect(dropped).toEqual([['a', 2, '192.0.2.1:5683']]);
  });

  test('invalid settings rejected', () => {
    expect(() => new TokenBuckets({ burst: 0, ratePerMinute: 1, maxKeys: 1, reportIntervalMs: 1 })).toThrow(/burst must be an integer >= 1, got 0/);
    expect(() => new TokenBuckets({ burst: 1, ratePerMinute: 0, maxKeys: 1, reportIntervalMs: 1 })).toThrow(/ratePerMinute must be a finite number > 0, got 0/);
  });
});

describe('DeviceLimiter', () => {
  function capture(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
    const lines: Array<Record<string, unknown>> = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
        callback();
      },
    });
    return { logger: pino({ level: 'debug' }, stream), lines };
  }

  test('rejection carries Max-Age', () => {
    const time = clock();
    const { logger } = capture();
    const limiter = new DeviceLimiter({ burst: 1, ratePerMinute: 2, logger, nowMs: time.nowMs });
    limiter.admit('pico-1', '192.0.2.1:40000');
    let caught: unknown;
    try {
      limiter.admit('pico-1', '192.0.2.1:40000');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(CoapError);
    expect((caught as CoapError).code).toBe('RATE_LIMITED');
    expect((caught as CoapError).coapCode).toBe('5.03');
    expect((caught as CoapError).maxAgeS).toBe(30);
    expect((caught as CoapError).message).toBe('device pico-1 sent more checks and reports than its limit of 2 per minute allows; retry in 30 s (Max-Age)');
  });

  test('log throttled per device', async () => {
    const time = clock();
    const { logger, lines } = capture();
    const limiter = new DeviceLimiter({ burst: 1, ratePerMinute: 1, logger, nowMs: time.nowMs });
    limiter.admit('pico-1', '192.0.2.1:40000');
    for (let i = 0; i < 100; i++) {
      expect(() => limiter.admit('pico-1', '192.0.2.1:40000')).toThrow(CoapError);
      time.advance(100);
    }
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, deviceId: 'pico-1', address: '192.0.2.1:40000', burst: 1, ratePerMinute: 1 });

    time.advance(REJECTION_REPORT_INTERVAL_MS);
    // A minute later a token is back; the one after it is rejected and brings the summary.
    limiter.admit('pico-1', '192.0.2.1:40000');
    expect(() => limiter.admit('pico-1', '192.0.2.1:40000')).toThrow(CoapError);
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ level: 40, deviceId: 'pico-1', rejected: 100 });
  });
});
