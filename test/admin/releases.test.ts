// Release listing, revoke and rollout changes, routing errors and the health check
// on the real admin server and a real Store.
import http from 'node:http';
import { afterEach, describe, expect, test } from 'vitest';
import { call, releaseBody, startAdmin, TOKEN, type AdminHarness } from './helpers.ts';

let admin: AdminHarness;

afterEach(async () => {
  await admin.close();
});

async function publishAll(versions: string[]): Promise<void> {
  for (const version of versions) {
    const response = await call(admin.baseUrl, 'POST', '/api/releases', { body: releaseBody(version) });
    expect(response.status, `publish ${version}`).toBe(201);
  }
}

describe('release listing', () => {
  test('list is highest first', async () => {
    admin = await startAdmin();
    await publishAll(['1.0.0', '2.0.0', '2.0.0-rc.1', '1.10.0']);
    const response = await call(admin.baseUrl, 'GET', '/api/releases', { token: null });
    expect(response.status).toBe(200);
    expect(response.body.releases.map((r: { version: string }) => r.version)).toEqual(['2.0.0', '2.0.0-rc.1', '1.10.0', '1.0.0']);
  });

  test('list has the API fields', async () => {
    admin = await startAdmin();
    await publishAll(['1.0.0']);
    const [release] = (await call(admin.baseUrl, 'GET', '/api/releases')).body.releases;
    expect(Object.keys(release).sort()).toEqual(
      ['channel', 'encoding', 'notes', 'path', 'publishedAt', 'revoked', 'rollout', 'sha256', 'signature', 'size', 'startAt', 'version'].sort(),
    );
    expect(release.path).toMatch(/^\/d\/[0-9a-f]{12}$/);
  });

  test('updates alias equals list', async () => {
    admin = await startAdmin();
    await publishAll(['1.0.0', '1.1.0']);
    const api = await call(admin.baseUrl, 'GET', '/api/releases');
    const alias = await call(admin.baseUrl, 'GET', '/updates');
    expect(alias.status).toBe(200);
    expect(alias.body).toEqual(api.body);
  });

  test('get one release', async () => {
    admin = await startAdmin();
    await publishAll(['1.0.0', '1.1.0-beta.2']);
    const response = await call(admin.baseUrl, 'GET', `/api/releases/${encodeURIComponent('1.1.0-beta.2')}`);
    expect(response.status).toBe(200);
    expect(response.body.version).toBe('1.1.0-beta.2');
  });

  test('unknown release is 404', async () => {
    admin = await startAdmin();
    const response = await call(admin.baseUrl, 'GET', '/api/releases/9.9.9');
    expect(response.status).toBe(404);
    expect(response.body.error.code).toBe('RELEASE_NOT_FOUND');
    expect(response.body.error.message).toContain('9.9.9');
  });

  test('empty list is empty array', async () => {
    admin = await startAdmin();
    const response = await call(admin.baseUrl, 'GET', '/api/releases');
    expect(response.body).toEqual({ releases: [] });
  });
});

describe('revoke', () => {
  test('revoke changes the listing', async () => {
    admin = await startAdmin();
    await publishAll(['1.0.0', '2.0.0']);
    const response = await call(admin.baseUrl, 'POST', '/api/releases/2.0.0/revoke');
    expect(response.status).toBe(200);
    expect(response.body.revoked).toBe(true);

    const list = (await call(admin.baseUrl, 'GET', '/api/releases')).body.releases;
    expect(list.map((r: { version: string; revoked: boolean }) => [r.version, r.revoked])).toEqual([
      ['2.0.0', true],
      ['1.0.0', false],
    ]);
    const [event] = await admin.store.listEvents({ limit: 1 });
    expect(event).toMatchObject({ type: 'revoke', version: '2.0.0' });
  });

  test('revoke twice records once', async () => {
    admin = await startAdmin();
    await publishAll(['1.0.0']);
    expect((await call(admin.baseUrl, 'POST', '/api/releases/1.0.0/revoke')).status).toBe(200);
    expect((await call(admin.baseUrl, 'POST', '/api/releases/1.0.0/revoke')).status).toBe(200);
    const revokes = (await admin.store.listEvents({})).filter((e) => e.type === 'revoke');
    expect(revokes).toHaveLength(1);
  });

  test('revoke unknown is 404', async () => {
    admin = await startAdmin();
    const response = await call(admin.baseUrl, 'POST', '/api/releases/3.0.0/revoke');
    expect(response.status).toBe(404);
    expect(response.body.error.code).toBe('RELEASE_NOT_FOUND');
  });

  test('revoke needs the token', async () => {
    admin = await startAdmin();
    await publishAll(['1.0.0']);
    expect((await call(admin.baseUrl, 'POST', '/api/releases/1.0.0/revoke', { token: null })).status).toBe(401);
    expect((await call(admin.baseUrl, 'POST', '/api/releases/1.0.0/revoke', { token: 'nope' })).status).toBe(403);
    expect((await admin.store.getRelease('1.0.0'))?.revoked).toBe(false);
  });
});

describe('rollout', () => {
  test('rollout changes the listing', async () => {
    admin = await startAdmin();
    await publishAll(['1.0.0']);
    const response = await call(admin.baseUrl, 'PATCH', '/api/releases/1.0.0', { body: { rollout: 30 } });
    expect(response.status).toBe(200);
    expect(response.body.rollout).toBe(30);

    const [listed] = (await call(admin.baseUrl, 'GET', '/api/releases')).body.releases;
    expect(listed.rollout).toBe(30);
    const [event] = await admin.store.listEvents({ limit: 1 });
    expect(event).toMatchObject({ type: 'rollout', version: '1.0.0', detail: '100% -> 30%' });
  });

  test('invalid rollout is 400', async () => {
    admin = await startAdmin();
    await publishAll(['1.0.0']);
    for (const body of [{ rollout: -1 }, { rollout: 100.5 }, { rollout: '50' }, {}, { rollout: 50, revoked: false }]) {
      const response = await call(admin.baseUrl, 'PATCH', '/api/releases/1.0.0', { body });
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(['FIELD_INVALID', 'FIELD_MISSING']).toContain(response.body.error.code);
    }
    expect((await admin.store.getRelease('1.0.0'))?.rollout).toBe(100);
  });

  test('rollout needs the token', async () => {
    admin = await startAdmin();
    await publishAll(['1.0.0']);
    const response = await call(admin.baseUrl, 'PATCH', '/api/releases/1.0.0', { body: { rollout: 5 }, token: null });
    expect(response.status).toBe(401);
    expect((await admin.store.getRelease('1.0.0'))?.rollout).toBe(100);
  });

  test('rollout of unknown is 404', async () => {
    admin = await startAdmin();
    const response = await call(admin.baseUrl, 'PATCH', '/api/releases/1.0.0', { body: { rollout: 5 } });
    expect(response.status).toBe(404);
  });
});

describe('concurrent publish', () => {
  test('same version twice stores one', async () => {
    admin = await startAdmin();
    const bodies = [releaseBody('4.0.0', {}, { payload: Buffer.from('first') }), releaseBody('4.0.0', {}, { payload: Buffer.from('second') })];
    const responses = await Promise.all(bodies.map((body) => call(admin.baseUrl, 'POST', '/api/releases', { body })));
    expect(responses.map((r) => r.status).sort()).toEqual([201, 409]);
    const winner = responses.find((r) => r.status === 201)!.body;
    expect((await admin.store.getRelease('4.0.0'))?.sha256).toBe(winner.sha256);
    expect((await admin.store.listEvents({})).filter((e) => e.type === 'publish')).toHaveLength(1);
  });

  test('same payload under a new version', async () => {
    admin = await startAdmin();
    const payload = Buffer.from('shared payload');
    const first = await call(admin.baseUrl, 'POST', '/api/releases', { body: releaseBody('1.0.0', {}, { payload }) });
    const second = await call(admin.baseUrl, 'POST', '/api/releases', { body: releaseBody('1.0.1', {}, { payload }) });

    expect(second.status).toBe(201);
    expect(second.body.downloadId).toBe(first.body.downloadId);
    expect((await admin.store.getRelease('1.0.1'))?.sha256).toBe(first.body.sha256);
  });

  test('same bytes with another encoding is 409', async () => {
    admin = await startAdmin();
    const payload = Buffer.from('shared payload');
    await call(admin.baseUrl, 'POST', '/api/releases', { body: releaseBody('1.0.0', {}, { payload }) });
    const response = await call(admin.baseUrl, 'POST', '/api/releases', { body: releaseBody('1.0.1', {}, { payload, encoding: 'deflate' }) });
    expect(response.status).toBe(409);
    expect(response.body.error.code).toBe('PAYLOAD_EXISTS');
    expect(response.body.error.message).toContain('another digest or encoding');
    expect(await admin.store.getRelease('1.0.1')).toBeUndefined();
  });
});

describe('routing', () => {
  test('healthz is ok', async () => {
    admin = await startAdmin();
    const response = await call(admin.baseUrl, 'GET', '/healthz', { token: null });
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ ok: true });
  });

  test('unknown path is 404', async () => {
    admin = await startAdmin();
    const response = await call(admin.baseUrl, 'GET', '/api/nothing');
    expect(response.status).toBe(404);
    expect(response.body.error.code).toBe('ROUTE_NOT_FOUND');
  });

  test('wrong method is 405', async () => {
    admin = await startAdmin();
    const response = await call(admin.baseUrl, 'DELETE', '/api/releases', { token: TOKEN });
    expect(response.status).toBe(405);
    expect(response.body.error.code).toBe('METHOD_NOT_ALLOWED');
    expect(response.headers.get('allow')).toBe('GET, POST, HEAD');
  });

  test('foreign Host is 421', async () => {
    admin = await startAdmin();
    for (const [host, status] of [['attacker.example:3000', 421], ['localhost:3000', 200], ['127.0.0.1', 200], ['[::1]:3000', 200]] as const) {
      const response = await getWithHost('/api/devices', host);
      expect(response.status, host).toBe(status);
      if (status === 421) expect(JSON.parse(response.body).error.code).toBe('HOST_REJECTED');
    }
  });
});

/** Sends a GET with a chosen Host header, which fetch does not allow. */
function getWithHost(path: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(path, admin.baseUrl), { headers: { Host: host } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (part: Buffer) => parts.push(part));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}
