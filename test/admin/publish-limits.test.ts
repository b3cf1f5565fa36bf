// POST /api/releases at the edges a first-time user hit: a payload of several MiB,
// base64 that Buffer.from would silently repair, and a build suffix in the URL.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, test } from 'vitest';
import { call, releaseBody, startAdmin, type AdminHarness } from './helpers.ts';

let admin: AdminHarness;

afterEach(async () => {
  await admin.close();
});

describe('publish payload limits', () => {
  test('11 MiB payload is accepted', async () => {
    admin = await startAdmin();
    const payload = randomBytes(11 * 1024 * 1024);
    const response = await call(admin.baseUrl, 'POST', '/api/releases', { body: releaseBody('5.0.0', {}, { payload }) });
    expect(response.status).toBe(201);
    expect(response.body.size).toBe(payload.length);
  }, 60_000);

  test('base64 with foreign characters is 400', async () => {
    admin = await startAdmin();
    const payload = Buffer.from('PB\x01 abc', 'latin1');
    const good = payload.toString('base64');
    for (const text of [`${good} `, `${good.slice(0, 4)}\n${good.slice(4)}`, good.replace(/=+$/, ''), `-${good.slice(1)}`, `${good}====`]) {
      const response = await call(admin.baseUrl, 'POST', '/api/releases', { body: releaseBody('1.0.0', { payload: text }, { payload }) });
      expect(response.status, JSON.stringify(text)).toBe(400);
      expect(response.body.error.field).toBe('payload');
    }
  });
});

describe('release lookup', () => {
  test('build metadata lookup names twin', async () => {
    admin = await startAdmin();
    expect((await call(admin.baseUrl, 'POST', '/api/releases', { body: releaseBody('1.0.0') })).status).toBe(201);
    const response = await call(admin.baseUrl, 'GET', '/api/releases/1.0.0+meta');
    expect(response.status).toBe(404);
    expect(response.body.error.code).toBe('RELEASE_NOT_FOUND');
    expect(response.body.error.message).toContain('"1.0.0" has the same precedence');
  });

  test('rollout 1e1 is the number 10', async () => {
    admin = await startAdmin();
    expect((await call(admin.baseUrl, 'POST', '/api/releases', { body: releaseBody('1.0.0') })).status).toBe(201);
    const response = await call(admin.baseUrl, 'PATCH', '/api/releases/1.0.0', { rawBody: '{"rollout":1e1}' });
    expect(response.status).toBe(200);
    expect(response.body.rollout).toBe(10);
  });
});
