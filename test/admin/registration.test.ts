// Device registration over the admin API on a real Store: create, replace, list,
// remove, and bad input that must leave the stored registrations and events unchanged.
import { afterEach, describe, expect, test } from 'vitest';
import type { DeviceRecord } from '../../src/storage/store.ts';
import { call, startAdmin, type AdminHarness } from './helpers.ts';

let admin: AdminHarness;

afterEach(async () => {
  await admin.close();
});

const seen: DeviceRecord = {
  id: 'pico-010',
  channel: 'beta',
  version: '1.2.0',
  lastSeen: '2025-03-04T05:06:07.000Z',
  address: '127.0.0.1:40010',
  status: 'up-to-date',
};

const registrationPath = (id: string) => `/api/devices/${encodeURIComponent(id)}/registration`;

describe('device registration', () => {
  test('put creates with 201', async () => {
    admin = await startAdmin();
    const response = await call(admin.baseUrl, 'PUT', registrationPath('pico-001'), { body: { channel: 'beta', label: 'greenhouse 3' } });
    expect(response.status).toBe(201);
    expect(response.body).toMatchObject({ id: 'pico-001', channel: 'beta', label: 'greenhouse 3' });
    expect(Date.parse(response.body.registeredAt)).not.toBeNaN();

    const read = await call(admin.baseUrl, 'GET', registrationPath('pico-001'), { token: null });
    expect(read.status).toBe(200);
    expect(read.body).toEqual(response.body);
  });

  test('put defaults channel and label', async () => {
    admin = await startAdmin();
    const response = await call(admin.baseUrl, 'PUT', registrationPath('pico-001'), { body: {} });
    expect(response.status).toBe(201);
    expect(response.body.channel).toBe('stable');
    expect(response.body.label).toBe('');
  });

  test('put again is idempotent', async () => {
    admin = await startAdmin();
    const first = await call(admin.baseUrl, 'PUT', registrationPath('pico-001'), { body: { label: 'shed' } });
    const second = await call(admin.baseUrl, 'PUT', registrationPath('pico-001'), { body: { label: 'shed' } });
    expect(second.status).toBe(200);
    expect(second.body).toEqual(first.body);
    const events = await call(admin.baseUrl, 'GET', '/api/events?device=pico-001');
    expect(events.body.events.map((event: { type: string }) => event.type)).toEqual(['register']);
  });

  test('put replaces and keeps registeredAt', async () => {
    admin = await startAdmin();
    const first = await call(admin.baseUrl, 'PUT', registrationPath('pico-001'), { body: { label: 'shed' } });
    const second = await call(admin.baseUrl, 'PUT', registrationPath('pico-001'), { body: { channel: 'beta', label: 'barn' } });
    expect(second.status).toBe(200);
    expect(second.body).toEqual({ id: 'pico-001', channel: 'beta', label: 'barn', registeredAt: first.body.registeredAt });
    const events = await call(admin.baseUrl, 'GET', '/api/events?device=pico-001');
    expect(events.body.events).toHaveLength(2);
    expect(events.body.events[0]).toMatchObject({ type: 'register', device: 'pico-001', detail: 'updated: channel beta, label "barn"' });
  });

  test('list merges seen and registered', async () => {
    admin = await startAdmin();
    await admin.store.putDevice(seen);
    await call(admin.baseUrl, 'PUT', registrationPath('pico-010'), { body: { channel: 'beta', label: 'roof' } });
    await call(admin.baseUrl, 'PUT', registrationPath('pico-002'), { body: { channel: 'canary' } });
    await admin.store.putDevice({ ...seen, id: 'pico-099' });

    const response = await call(admin.baseUrl, 'GET', '/api/devices', { token: null });
    expect(response.status).toBe(200);
    const devices = response.body.devices;
    expect(devices.map((device: { id: string }) => device.id)).toEqual(['pico-002', 'pico-010', 'pico-099']);
    expect(devices[0]).toMatchObject({ channel: 'canary', version: null, lastSeen: null, address: null, status: 'not-seen', lastReport: null, registered: true, label: '' });
    expect(devices[1]).toMatchObject({ ...seen, registered: true, label: 'roof' });
    expect(devices[2]).toMatchObject({ registered: false, label: null, registeredAt: null });
  });

  test('get one registered device', async () => {
    admin = await startAdmin();
    await call(admin.baseUrl, 'PUT', registrationPath('pico-002'), { body: { label: 'cellar' } });
    const response = await call(admin.baseUrl, 'GET', '/api/devices/pico-002');
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ id: 'pico-002', registered: true, label: 'cellar', status: 'not-seen' });
  });

  test('delete keeps device and events', async () => {
    admin = await startAdmin();
    await admin.store.putDevice(seen);
    await admin.store.appendEvent({ time: seen.lastSeen, type: 'check', device: seen.id, version: seen.version });
    const created = await call(admin.baseUrl, 'PUT', registrationPath(seen.id), { body: { label: 'roof' } });

    const removed = await call(admin.baseUrl, 'DELETE', registrationPath(seen.id));
    expect(removed.status).toBe(200);
    expect(removed.body).toEqual(created.body);

    const device = await call(admin.baseUrl, 'GET', `/api/devices/${seen.id}`);
    expect(device.status).toBe(200);
    expect(device.body).toMatchObject({ ...seen, registered: false, label: null });
    const events = await call(admin.baseUrl, 'GET', `/api/events?device=${seen.id}`);
    expect(events.body.events.map((event: { type: string }) => event.type)).toEqual(['unregister', 'register', 'check']);
    expect(await admin.store.getRegistration(seen.id)).toBeUndefined();
  });

  test('delete unknown gets 404', async () => {
    admin = await startAdmin();
    const response = await call(admin.baseUrl, 'DELETE', registrationPath('pico-404'));
    expect(response.status).toBe(404);
    expect(response.body.error.code).toBe('DEVICE_NOT_FOUND');
    expect(response.body.error.message).toContain('"pico-404" is not registered');
  });

  test('mutations need the token', async () => {
    admin = await startAdmin();
    const put = await call(admin.baseUrl, 'PUT', registrationPath('pico-001'), { body: {}, token: null });
    expect(put.status).toBe(401);
    const wrong = await call(admin.baseUrl, 'DELETE', registrationPath('pico-001'), { token: 'not-the-admin-token' });
    expect(wrong.status).toBe(403);
    expect(await admin.store.listRegistrations()).toEqual([]);
  });

  const badInputs: Array<{ name: string; id: string; body: unknown; field: string; message: string }> = [
    { name: 'id with a space', id: 'pico 1', body: {}, field: 'id', message: 'device id "pico 1" must be 1..64' },
    { name: 'id of 65 characters', id: 'p'.repeat(65), body: {}, field: 'id', message: 'must be 1..64' },
    { name: 'upper-case channel', id: 'pico-001', body: { channel: 'Beta' }, field: 'channel', message: 'channel "Beta" must be' },
    { name: 'numeric label', id: 'pico-001', body: { label: 7 }, field: 'label', message: 'label must be a string, got 7' },
    { name: 'label of 201 bytes', id: 'pico-001', body: { label: 'x'.repeat(201) }, field: 'label', message: 'label has 201 bytes of UTF-8, at most 200' },
    { name: 'label of 101 two-byte characters', id: 'pico-001', body: { label: 'é'.repeat(101) }, field: 'label', message: 'label has 202 bytes' },
    { name: 'label with a line break', id: 'pico-001', body: { label: 'a\nb' }, field: 'label', message: 'control character' },
    { name: 'label with NEL', id: 'pico-001', body: { label: 'a\u0085b' }, field: 'label', message: 'control character' },
    { name: 'label with a line separator', id: 'pico-001', body: { label: 'a\u2028b' }, field: 'label', message: 'control character' },
    { name: 'label with a direction override', id: 'pico-001', body: { label: '\u202egnp.exe' }, field: 'label', message: 'text-direction mark' },
    { name: 'label with a lone surrogate', id: 'pico-001', body: { label: 'a\ud800' }, field: 'label', message: 'lone surrogate' },
    { name: 'unknown field', id: 'pico-001', body: { lable: 'typo' }, field: 'lable', message: 'field "lable" is unknown' },
  ];

  test.each(badInputs)('rejects $name', async ({ id, body, field, message }) => {
    admin = await startAdmin();
    await call(admin.baseUrl, 'PUT', registrationPath('pico-001'), { body: { label: 'kept' } });
    const before = await admin.store.dumpRaw();

    const response = await call(admin.baseUrl, 'PUT', registrationPath(id), { body });
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('FIELD_INVALID');
    expect(response.body.error.field).toBe(field);
    expect(response.body.error.message).toContain(message);
    expect(await admin.store.dumpRaw()).toEqual(before);
  });

  test('label of 200 bytes is accepted', async () => {
    admin = await startAdmin();
    const response = await call(admin.baseUrl, 'PUT', registrationPath('pico-001'), { body: { label: 'é'.repeat(100) } });
    expect(response.status).toBe(201);
    expect(response.body.label).toBe('é'.repeat(100));
  });
});
