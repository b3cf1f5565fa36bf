// Scheduled releases without sockets: parsing start times, offer selection around the
// start time with an injected clock, and the store's rules for the startAt field.
import { afterEach, describe, expect, it } from 'vitest';
import { msUntilNextStart, selectOffer } from '../../src/releases/select.ts';
import { parseSemVer } from '../../src/releases/semver.ts';
import { isStoredStartAt, parseInstant } from '../../src/releases/start-time.ts';
import { Store, StoreError, type ReleaseRecord } from '../../src/storage/store.ts';
import { payloadOf, publish, tempDir } from '../server/helpers.ts';

const START = '2026-12-05T02:00:00.000Z';
const START_MS = Date.parse(START);

function record(version: string, extra: Partial<ReleaseRecord> = {}): ReleaseRecord {
  return {
    version,
    channel: 'stable',
    notes: '',
    encoding: 'raw',
    rollout: 100,
    size: 1,
    sha256: '00'.repeat(32),
    signature: '00'.repeat(64),
    downloadId: '000000000000',
    revoked: false,
    publishedAt: '2026-12-01T00:00:00.000Z',
    ...extra,
  };
}

describe('start time parsing', () => {
  const accepted: Array<[string, string]> = [
    ['2026-12-05T02:00:00Z', START],
    ['2026-12-05T03:00:00+01:00', START],
    ['2026-12-04T21:30:00-04:30', START],
    ['2026-12-05T02:00Z', START],
    ['2026-12-05t02:00:00z', START],
    ['2026-12-05T02:00:00.5Z', '2026-12-05T02:00:00.500Z'],
    ['2026-12-05T02:00:00.123456Z', '2026-12-05T02:00:00.123Z'],
    ['2028-02-29T00:00:00Z', '2028-02-29T00:00:00.000Z'],
  ];
  for (const [text, iso] of accepted) {
    it(`accepts ${text}`, () => {
      expect(parseInstant(text)).toEqual({ ok: true, ms: Date.parse(iso), iso });
    });
  }

  const rejected: Array<[string, RegExp]> = [
    ['2026-12-05T02:00:00', /is not an ISO 8601 instant with Z or a UTC offset/],
    ['2026-12-05', /is not an ISO 8601 instant/],
    ['2026-12-05 02:00:00Z', /is not an ISO 8601 instant/],
    ['tomorrow', /is not an ISO 8601 instant/],
    ['1712345678000', /is not an ISO 8601 instant/],
    ['2026-02-30T00:00:00Z', /names no calendar date/],
    ['2026-12-05T24:00:00Z', /names no calendar date/],
    ['2026-12-05T02:60:00Z', /names no calendar date/],
    ['2026-12-05T02:00:00+24:00', /UTC offset \+24:00/],
    ['1970-01-01T00:00:00Z', /year 1970, expected 2000..2999/],
    ['9999-12-31T23:59:59Z', /year 9999, expected 2000..2999/],
    ['2000-01-01T00:30:00+01:00', /year 1999 in UTC/],
  ];
  for (const [text, message] of rejected) {
    it(`rejects ${text}`, () => {
      const parsed = parseInstant(text);
      expect(parsed.ok).toBe(false);
      if (!parsed.ok) expect(parsed.problem).toMatch(message);
    });
  }

  it('stored form is the UTC string', () => {
    expect(isStoredStartAt(START)).toBe(true);
    expect(isStoredStartAt('2026-12-05T02:00:00Z')).toBe(false);
    expect(isStoredStartAt(START_MS)).toBe(false);
  });
});

describe('selection around the start time', () => {
  const device = { id: 'pico-001', version: parseSemVer('1.0.0')!, channel: 'stable' };

  it('not offered before the start', () => {
    expect(selectOffer([record('2.0.0', { startAt: START })], device, START_MS - 1)).toBeUndefined();
  });

  it('offered at the start', () => {
    expect(selectOffer([record('2.0.0', { startAt: START })], device, START_MS)?.version).toBe('2.0.0');
  });

  it('offered after the start', () => {
    expect(selectOffer([record('2.0.0', { startAt: START })], device, START_MS + 3_600_000)?.version).toBe('2.0.0');
  });

  it('older started release meanwhile', () => {
    const releases = [record('3.0.0', { startAt: START }), record('2.0.0')];
    expect(selectOffer(releases, device, START_MS - 1)?.version).toBe('2.0.0');
    expect(selectOffer(releases, device, START_MS)?.version).toBe('3.0.0');
  });

  it('revoked stays withheld after start', () => {
    expect(selectOffer([record('2.0.0', { startAt: START, revoked: true })], device, START_MS + 1)).toBeUndefined();
  });

  it('rollout still applies after start', () => {
    expect(selectOffer([record('2.0.0', { startAt: START, rollout: 0 })], device, START_MS + 1)).toBeUndefined();
  });
});

describe('time until next start', () => {
  it('earliest pending start in channel', () => {
    const releases = [
      record('2.0.0', { startAt: '2026-12-05T02:00:30.000Z' }),
      record('2.1.0', { startAt: '2026-12-05T02:00:10.000Z' }),
      record('2.2.0', { startAt: '2026-12-05T02:00:05.000Z', channel: 'beta' }),
      record('2.3.0', { startAt: '2026-12-05T02:00:01.000Z', revoked: true }),
      record('1.9.0', { startAt: '2026-12-05T01:00:00.000Z' }),
    ];
    expect(msUntilNextStart(releases, 'stable', START_MS)).toBe(10_000);
    expect(msUntilNextStart(releases, 'beta', START_MS)).toBe(5_000);
  });

  it('none without pending starts', () => {
    expect(msUntilNextStart([record('2.0.0'), record('2.1.0', { startAt: START })], 'stable', START_MS)).toBeUndefined();
  });
});

describe('store startAt field', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function openStore(): Promise<{ store: Store; dir: string }> {
    const temp = await tempDir();
    const store = await Store.open(temp.dir);
    cleanups.push(temp.remove, () => store.close());
    return { store, dir: temp.dir };
  }

  it('set and clear survive reopen', async () => {
    const { store, dir } = await openStore();
    await publish(store, '2.0.0', payloadOf(100));
    await store.updateRelease('2.0.0', { startAt: START });
    await store.close();
    const reopened = await Store.open(dir);
    cleanups.push(() => reopened.close());
    expect((await reopened.getRelease('2.0.0'))?.startAt).toBe(START);

    await reopened.updateRelease('2.0.0', { startAt: null });
    const cleared = await reopened.getRelease('2.0.0');
    expect(cleared).toBeDefined();
    expect('startAt' in cleared!).toBe(false);
  });

  it('record without field stays valid', async () => {
    const { store } = await openStore();
    const stored = await publish(store, '2.0.0', payloadOf(100));
    expect('startAt' in stored).toBe(false);
    const updated = await store.updateRelease('2.0.0', { rollout: 40 });
    expect(updated.rollout).toBe(40);
    expect('startAt' in updated).toBe(false);
  });

  it('rejects a non-UTC startAt', async () => {
    const { store } = await openStore();
    await publish(store, '2.0.0', payloadOf(100));
    for (const startAt of ['2026-12-05T03:00:00+01:00', '2026-12-05T02:00:00Z', 'soon']) {
      const error = await store.updateRelease('2.0.0', { startAt }).catch((err: unknown) => err);
      expect(error, startAt).toBeInstanceOf(StoreError);
      expect((error as StoreError).code).toBe('INVALID_RECORD');
      expect((error as StoreError).message).toContain('startAt must be');
    }
    expect('startAt' in (await store.getRelease('2.0.0'))!).toBe(false);
  });
});
