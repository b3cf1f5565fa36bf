// Event retention: the store deletes old events with their per-device index keys, the
// daemon prunes at start, and --event-retention-days is checked like the other options.
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseCli, UsageError } from '../../src/daemon/cli.ts';
import { startEventRetention } from '../../src/daemon/event-retention.ts';
import { startServer } from '../../src/daemon/server.ts';
import { Store, type EventRecord } from '../../src/storage/store.ts';
import { TEST_TOKEN, tempDir } from './helpers.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
const NOW = Date.parse('2026-12-04T12:00:00Z');
const quiet = pino({ level: 'silent' });

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function openStore(): Promise<{ store: Store; dir: string }> {
  const dir = await tempDir();
  cleanups.push(dir.remove);
  const store = await Store.open(dir.dir);
  cleanups.push(() => store.close());
  return { store, dir: dir.dir };
}

/** Appends one check event per age in days, for device pico-<age>, oldest first. */
async function appendChecks(store: Store, agesInDays: number[]): Promise<void> {
  for (const age of agesInDays) {
    const event: EventRecord = { time: new Date(NOW - age * DAY_MS).toISOString(), type: 'check', device: `pico-${age}`, version: '1.0.0' };
    await store.appendEvent(event);
  }
}

/** Keys of the per-device event index, decoded from the raw dump. */
async function deviceIndexKeys(store: Store): Promise<string[]> {
  const prefix = '!device-event!';
  return (await store.dumpRaw())
    .map(([key]) => Buffer.from(key, 'hex').toString('utf8'))
    .filter((key) => key.startsWith(prefix))
    .map((key) => key.slice(prefix.length));
}

describe('store event pruning', () => {
  it('deletes events before the cutoff', async () => {
    const { store } = await openStore();
    await appendChecks(store, [200, 120, 91, 89, 1]);

    const pruned = await store.pruneEvents(new Date(NOW - 90 * DAY_MS));

    expect(pruned).toBe(3);
    const left = await store.listEvents({ limit: 100 });
    expect(left.map((event) => event.device)).toEqual(['pico-1', 'pico-89']);
  });

  it('deletes the device index too', async () => {
    const { store } = await openStore();
    await appendChecks(store, [120, 1]);

    await store.pruneEvents(new Date(NOW - 90 * DAY_MS));

    expect(await store.listEvents({ device: 'pico-120' })).toEqual([]);
    expect(await store.listEvents({ device: 'pico-1' })).toHaveLength(1);
    expect((await deviceIndexKeys(store)).map((key) => key.split('/')[0])).toEqual(['pico-1']);
  });

  it('prunes across several batches', async () => {
    const { store } = await openStore();
    // 2500 old events need three batches of 1000.
    for (let i = 0; i < 2500; i++) await store.appendEvent({ time: new Date(NOW - 100 * DAY_MS + i).toISOString(), type: 'publish', version: '1.0.0' });
    await appendChecks(store, [1]);

    expect(await store.pruneEvents(new Date(NOW - 90 * DAY_MS))).toBe(2500);
    expect(await store.listEvents({ limit: 10_000 })).toHaveLength(1);
  });

  it('events after a full prune listed', async () => {
    const { store, dir } = await openStore();
    await appendChecks(store, [120, 100]);
    await store.pruneEvents(new Date(NOW - 90 * DAY_MS));
    await store.close();

    const reopened = await Store.open(dir);
    cleanups.push(() => reopened.close());
    await appendChecks(reopened, [0]);
    // With every old event gone the sequence restarts at 0, and the new event is listed.
    expect((await reopened.listEvents({})).map((event) => event.device)).toEqual(['pico-0']);
  });

  it('nothing old means nothing pruned', async () => {
    const { store } = await openStore();
    await appendChecks(store, [10, 1]);

    expect(await store.pruneEvents(new Date(NOW - 90 * DAY_MS))).toBe(0);
    expect(await store.listEvents({})).toHaveLength(2);
  });
});

describe('retention schedule', () => {
  it('prunes at start with the retention period', async () => {
    const { store } = await openStore();
    await appendChecks(store, [31, 29]);

    const retention = startEventRetention(store, quiet, 30, () => NOW);
    await retention.firstPrune;
    await retention.stop();

    expect((await store.listEvents({})).map((event) => event.device)).toEqual(['pico-29']);
  });

  it('zero days keeps every event', async () => {
    const { store } = await openStore();
    await appendChecks(store, [5000]);

    const retention = startEventRetention(store, quiet, 0, () => NOW);
    await retention.firstPrune;
    await retention.stop();

    expect(await store.listEvents({})).toHaveLength(1);
  });

  it('daemon prunes at start', async () => {
    const { store, dir } = await openStore();
    await store.appendEvent({ time: new Date(Date.now() - 10 * DAY_MS).toISOString(), type: 'check', device: 'pico-old' });
    await store.appendEvent({ time: new Date(Date.now() - DAY_MS).toISOString(), type: 'check', device: 'pico-new' });
    await store.close();

    const server = await startServer({ dataDir: dir, logger: quiet, coapPort: 0, bind: '127.0.0.1', adminPort: 0, adminToken: TEST_TOKEN, eventRetentionDays: 7 });
    cleanups.push(() => server.close());

    await expect.poll(async () => (await server.store.listEvents({})).map((event) => event.device), { timeout: 5000 }).toEqual(['pico-new']);
  });
});

describe('retention option', () => {
  it('defaults to 90 days', async () => {
    expect((await parseCli([]))?.eventRetentionDays).toBe(90);
    expect((await parseCli(['--event-retention-days', '0']))?.eventRetentionDays).toBe(0);
  });

  it('bad values rejected', async () => {
    for (const value of ['-1', '1.5', 'abc', '', '36501', '1e3']) {
      const failure = await parseCli(['--event-retention-days', value]).then(() => undefined, (err: unknown) => err);
      expect(failure, value).toBeInstanceOf(UsageError);
      expect((failure as Error).message, value).toContain(`--event-retention-days must be a whole number of days 0..36500 (0 keeps every event), got "${value}"`);
    }
  });
});
