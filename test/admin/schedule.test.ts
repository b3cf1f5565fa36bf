// Start times through the admin API on a real Store: publish with startAt, setting and
// clearing it with PATCH, the schedule event, and rejected values that change nothing.
import { afterEach, describe, expect, test } from 'vitest';
import { call, releaseBody, startAdmin, type AdminHarness } from './helpers.ts';

let admin: AdminHarness;

afterEach(async () => {
  await admin.close();
});

const INVALID_START_TIMES: unknown[] = [
  '2026-12-05T02:00:00',
  '2026-12-05',
  'next tuesday',
  '2026-13-01T00:00:00Z',
  '2026-02-30T02:00:00Z',
  '0001-01-01T00:00:00Z',
  '+275760-09-13T00:00:00Z',
  1764900000000,
  true,
  ['2026-12-05T02:00:00Z'],
];

describe('publish with startAt', () => {
  test('stores the start in UTC', async () => {
    admin = await startAdmin();
    const response = await call(admin.baseUrl, 'POST', '/api/releases', { body: releaseBody('2.0.0', { startAt: '2026-12-05T03:00:00+01:00' }) });
    expect(response.status).toBe(201);
    expect(response.body.startAt).toBe('2026-12-05T02:00:00.000Z');
    expect((await admin.store.getRelease('2.0.0'))?.startAt).toBe('2026-12-05T02:00:00.000Z');
    const [event] = await admin.store.listEvents({ limit: 1 });
    expect(event).toMatchObject({ type: 'publish', version: '2.0.0' });
    expect(event?.detail).toContain('starts 2026-12-05T02:00:00.000Z');
  });

  test('without startAt shows null', async () => {
    admin = await startAdmin();
    const response = await call(admin.baseUrl, 'POST', '/api/releases', { body: releaseBody('2.0.0') });
    expect(response.status).toBe(201);
    expect(response.body.startAt).toBeNull();
    expect((await call(admin.baseUrl, 'GET', '/api/releases/2.0.0')).body.startAt).toBeNull();
  });

  test('invalid startAt is 400', async () => {
    admin = await startAdmin();
    for (const startAt of INVALID_START_TIMES) {
      const response = await call(admin.baseUrl, 'POST', '/api/releases', { body: releaseBody('2.0.0', { startAt }) });
      expect(response.status, JSON.stringify(startAt)).toBe(400);
      expect(response.body.error.code).toBe('FIELD_INVALID');
      expect(response.body.error.field).toBe('startAt');
      expect(response.body.error.message).toContain('2026-12-05T02:00:00Z');
    }
    expect(await admin.store.listReleases()).toEqual([]);
    expect(await admin.store.listEvents({})).toEqual([]);
  });
});

describe('PATCH startAt', () => {
  test('set then clear records events', async () => {
    admin = await startAdmin();
    expect((await call(admin.baseUrl, 'POST', '/api/releases', { body: releaseBody('2.0.0') })).status).toBe(201);

    const set = await call(admin.baseUrl, 'PATCH', '/api/releases/2.0.0', { body: { startAt: '2026-12-05T02:00:00Z' } });
    expect(set.status).toBe(200);
    expect(set.body.startAt).toBe('2026-12-05T02:00:00.000Z');
    expect(set.body.rollout).toBe(100);
    const [setEvent] = await admin.store.listEvents({ limit: 1 });
    expect(setEvent).toMatchObject({ type: 'schedule', version: '2.0.0', detail: 'start none -> 2026-12-05T02:00:00.000Z' });

    const cleared = await call(admin.baseUrl, 'PATCH', '/api/releases/2.0.0', { body: { startAt: null } });
    expect(cleared.status).toBe(200);
    expect(cleared.body.startAt).toBeNull();
    const [clearEvent] = await admin.store.listEvents({ limit: 1 });
    expect(clearEvent).toMatchObject({ type: 'schedule', version: '2.0.0', detail: 'start 2026-12-05T02:00:00.000Z -> none' });
  });

  test('same start records nothing', async () => {
    admin = await startAdmin();
    await call(admin.baseUrl, 'POST', '/api/releases', { body: releaseBody('2.0.0', { startAt: '2026-12-05T02:00:00Z' }) });
    const response = await call(admin.baseUrl, 'PATCH', '/api/releases/2.0.0', { body: { startAt: '2026-12-05T03:00:00+01:00' } });
    expect(response.status).toBe(200);
    expect((await admin.store.listEvents({})).filter((e) => e.type === 'schedule')).toHaveLength(0);
  });

  test('rollout and start together', async () => {
    admin = await startAdmin();
    await call(admin.baseUrl, 'POST', '/api/releases', { body: releaseBody('2.0.0') });
    const response = await call(admin.baseUrl, 'PATCH', '/api/releases/2.0.0', { body: { rollout: 20, startAt: '2026-12-05T02:00:00Z' } });
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ rollout: 20, startAt: '2026-12-05T02:00:00.000Z' });
    const types = (await admin.store.listEvents({ limit: 2 })).map((e) => e.type).sort();
    expect(types).toEqual(['rollout', 'schedule']);
  });

  test('invalid startAt changes nothing', async () => {
    admin = await startAdmin();
    await call(admin.baseUrl, 'POST', '/api/releases', { body: releaseBody('2.0.0', { startAt: '2026-12-05T02:00:00Z' }) });
    const before = await admin.store.getRelease('2.0.0');
    for (const startAt of INVALID_START_TIMES) {
      const response = await call(admin.baseUrl, 'PATCH', '/api/releases/2.0.0', { body: { startAt, rollout: 10 } });
      expect(response.status, JSON.stringify(startAt)).toBe(400);
      expect(response.body.error.code).toBe('FIELD_INVALID');
      expect(response.body.error.field).toBe('startAt');
      expect(response.body.error.message).toMatch(/ISO 8601 instant with Z or a UTC offset/);
    }
    expect(await admin.store.getRelease('2.0.0')).toEqual(before);
    expect((await admin.store.listEvents({})).map((e) => e.type)).toEqual(['publish']);
  });

  test('empty body names both fields', async () => {
    admin = await startAdmin();
    await call(admin.baseUrl, 'POST', '/api/releases', { body: releaseBody('2.0.0') });
    const response = await call(admin.baseUrl, 'PATCH', '/api/releases/2.0.0', { body: {} });
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('FIELD_MISSING');
    expect(response.body.error.message).toContain('"rollout" or "startAt"');
  });

  test('start of unknown is 404', async () => {
    admin = await startAdmin();
    const response = await call(admin.baseUrl, 'PATCH', '/api/releases/9.0.0', { body: { startAt: null } });
    expect(response.status).toBe(404);
    expect(response.body.error.code).toBe('RELEASE_NOT_FOUND');
  });
});
