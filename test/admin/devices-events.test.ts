// Device and event listings of the admin API over records written straight into a
// real Store, the way the CoAP side writes them.
import { afterEach, describe, expect, test } from 'vitest';
import type { DeviceRecord } from '../../src/storage/store.ts';
import { call, startAdmin, type AdminHarness } from './helpers.ts';

let admin: AdminHarness;

afterEach(async () => {
  await admin.close();
});

const pico1: DeviceRecord = {
  id: 'pico-001',
  channel: 'stable',
  version: '2.0.0',
  lastSeen: '2025-01-02T03:04:05.000Z',
  address: '127.0.0.1:40001',
  status: 'confirmed',
  lastReport: { outcome: 'confirmed', target: '2.0.0', time: '2025-01-02T03:04:05.000Z' },
};
const pico2: DeviceRecord = {
  id: 'pico-002',
  channel: 'beta',
  version: '1.0.0',
  lastSeen: '2025-01-02T03:05:00.000Z',
  address: '127.0.0.1:40002',
  status: 'idle',
};

describe('devices', () => {
  test('list shows every device', async () => {
    admin = await startAdmin();
    await admin.store.putDevice(pico1);
    await admin.store.putDevice(pico2);
    const response = await call(admin.baseUrl, 'GET', '/api/devices', { token: null });
    expect(response.status).toBe(200);
    const byId = new Map(response.body.devices.map((d: DeviceRecord) => [d.id, d]));
    const unregistered = { registered: false, label: null, registeredAt: null };
    expect(byId.get('pico-001')).toEqual({ ...pico1, ...unregistered });
    expect(byId.get('pico-002')).toEqual({ ...pico2, lastReport: null, ...unregistered });
  });

  test('devices alias equals list', async () => {
    admin = await startAdmin();
    await admin.store.putDevice(pico1);
    const api = await call(admin.baseUrl, 'GET', '/api/devices');
    const alias = await call(admin.baseUrl, 'GET', '/devices');
    expect(alias.status).toBe(200);
    expect(alias.body).toEqual(api.body);
    expect(alias.body.devices).toHaveLength(1);
  });

  test('get one device', async () => {
    admin = await startAdmin();
    await admin.store.putDevice(pico2);
    const response = await call(admin.baseUrl, 'GET', '/api/devices/pico-002');
    expect(response.status).toBe(200);
    expect(response.body.id).toBe('pico-002');
    expect(response.body.channel).toBe('beta');
  });

  test('unknown device is 404', async () => {
    admin = await startAdmin();
    const response = await call(admin.baseUrl, 'GET', '/api/devices/pico-404');
    expect(response.status).toBe(404);
    expect(response.body.error.code).toBe('DEVICE_NOT_FOUND');
    expect(response.body.error.message).toContain('pico-404');
  });
});

describe('events', () => {
  async function seedEvents(): Promise<void> {
    for (let i = 0; i < 6; i++) {
      await admin.store.appendEvent({
        time: new Date(Date.UTC(2025, 0, 1, 0, 0, i)).toISOString(),
        type: 'check',
        device: i % 2 === 0 ? 'pico-001' : 'pico-002',
        version: '1.0.0',
        detail: `event ${i}`,
      });
    }
  }

  test('list is newest first', async () => {
    admin = await startAdmin();
    await seedEvents();
    const response = await call(admin.baseUrl, 'GET', '/api/events');
    expect(response.status).toBe(200);
    expect(response.body.events.map((e: { detail: string }) => e.detail)).toEqual(['event 5', 'event 4', 'event 3', 'event 2', 'event 1', 'event 0']);
  });

  test('device filter', async () => {
    admin = await startAdmin();
    await seedEvents();
    const response = await call(admin.baseUrl, 'GET', '/api/events?device=pico-002');
    expect(response.body.events.map((e: { detail: string }) => e.detail)).toEqual(['event 5', 'event 3', 'event 1']);
    expect(response.body.events.every((e: { device: string }) => e.device === 'pico-002')).toBe(true);
  });

  test('limit', async () => {
    admin = await startAdmin();
    await seedEvents();
    const response = await call(admin.baseUrl, 'GET', '/api/events?limit=2');
    expect(response.body.events.map((e: { detail: string }) => e.detail)).toEqual(['event 5', 'event 4']);
  });

  test('device filter with limit', async () => {
    admin = await startAdmin();
    await seedEvents();
    const response = await call(admin.baseUrl, 'GET', '/api/events?device=pico-001&limit=2');
    expect(response.body.events.map((e: { detail: string }) => e.detail)).toEqual(['event 4', 'event 2']);
  });

  test('invalid query is 400', async () => {
    admin = await startAdmin();
    for (const query of ['limit=0', 'limit=-1', 'limit=abc', 'limit=1001', 'limit=2.5', 'device=a%2Fb', 'device=']) {
      const response = await call(admin.baseUrl, 'GET', `/api/events?${query}`);
      expect(response.status, query).toBe(400);
      expect(response.body.error.code).toBe('INVALID_QUERY');
    }
  });

  test('report event round-trips', async () => {
    admin = await startAdmin();
    await admin.store.appendEvent({ time: '2025-01-01T00:00:00.000Z', type: 'report', device: 'pico-001', outcome: 'installed', version: '2.0.0' });
    const response = await call(admin.baseUrl, 'GET', '/api/events?device=pico-001');
    expect(response.body.events).toEqual([{ time: '2025-01-01T00:00:00.000Z', type: 'report', device: 'pico-001', outcome: 'installed', version: '2.0.0' }]);
  });
});
