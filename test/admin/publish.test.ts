// POST /api/releases on the real admin server and a real Store: the accepted release,
// and every rejection with its status, stable code and an unchanged store.
import http from 'node:http';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { generateKeyPairSync } from 'node:crypto';
import { afterEach, describe, expect, test } from 'vitest';
import { sha256 } from '../../src/protocol/manifest.ts';
import { call, publicKeyPem, releaseBody, startAdmin, TOKEN, type AdminHarness, type JsonResponse } from './helpers.ts';

let admin: AdminHarness;

afterEach(async () => {
  await admin.close();
});

/** Runs a request that must be rejected and checks that releases and events stay as they were. */
async function expectRejected(send: () => Promise<JsonResponse>, status: number, code: string): Promise<JsonResponse> {
  const releasesBefore = await admin.store.listReleases();
  const eventsBefore = await admin.store.listEvents({});
  const response = await send();
  expect(response.status).toBe(status);
  expect(response.body.error.code).toBe(code);
  expect(typeof response.body.error.message).toBe('string');
  expect(await admin.store.listReleases()).toEqual(releasesBefore);
  expect(await admin.store.listEvents({})).toEqual(eventsBefore);
  return response;
}

function publish(body: unknown, token?: string | null): Promise<JsonResponse> {
  return call(admin.baseUrl, 'POST', '/api/releases', { body, token });
}

describe('publish accepted', () => {
  test('publish returns the release', async () => {
    admin = await startAdmin();
    const body = releaseBody('2.0.0', { channel: 'beta', rollout: 25 });
    const response = await publish(body);

    expect(response.status).toBe(201);
    expect(response.body).toMatchObject({
      version: '2.0.0',
      channel: 'beta',
      notes: 'notes of 2.0.0',
      encoding: 'raw',
      rollout: 25,
      size: body.size,
      sha256: body.sha256,
      signature: body.signature,
      path: `/d/${(body.sha256 as string).slice(0, 12)}`,
      revoked: false,
    });
    expect(Number.isNaN(Date.parse(response.body.publishedAt))).toBe(false);
  });

  test('publish stores payload and event', async () => {
    admin = await startAdmin();
    const payload = Buffer.alloc(3000, 7);
    const body = releaseBody('1.2.3', {}, { payload, encoding: 'deflate' });
    expect((await publish(body)).status).toBe(201);

    const stored = await admin.store.getRelease('1.2.3');
    expect(stored?.downloadId).toBe(sha256(payload).toString('hex').slice(0, 12));
    expect(stored?.encoding).toBe('deflate');
    const [event] = await admin.store.listEvents({ limit: 1 });
    expect(event?.type).toBe('publish');
    expect(event?.version).toBe('1.2.3');
  });

  test('publish defaults channel and rollout', async () => {
    admin = await startAdmin();
    const body = releaseBody('1.0.0');
    delete body.channel;
    delete body.rollout;
    delete body.notes;
    const response = await publish(body);
    expect(response.status).toBe(201);
    expect(response.body.channel).toBe('stable');
    expect(response.body.rollout).toBe(100);
    expect(response.body.notes).toBe('');
  });
});

describe('publish auth', () => {
  test('missing token is 401', async () => {
    admin = await startAdmin();
    const response = await expectRejected(() => publish(releaseBody('1.0.0'), null), 401, 'TOKEN_MISSING');
    expect(response.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  test('wrong token is 403', async () => {
    admin = await startAdmin();
    await expectRejected(() => publish(releaseBody('1.0.0'), `${TOKEN}x`), 403, 'TOKEN_INVALID');
  });

  test('non-bearer scheme is 401', async () => {
    admin = await startAdmin();
    const send = () =>
      fetch(`${admin.baseUrl}/api/releases`, {
        method: 'POST',
        headers: { Authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(releaseBody('1.0.0')),
      }).then(async (r) => ({ status: r.status, headers: r.headers, body: await r.json() }));
    await expectRejected(send, 401, 'TOKEN_MISSING');
  });

  test('logs never contain the token', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    });
    admin = await startAdmin({ logger: pino({ level: 'debug' }, sink) });
    expect((await publish(releaseBody('1.0.0'))).status).toBe(201);
    expect((await publish(releaseBody('1.0.1'), `${TOKEN}-wrong`)).status).toBe(403);
    expect((await publish(releaseBody('1.0.2'), null)).status).toBe(401);

    const log = lines.join('');
    expect(log).toContain('release published');
    expect(log).toContain('admin request with wrong bearer token');
    expect(log).not.toContain(TOKEN);
  });

  test('token warnings are rate-limited', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    });
    admin = await startAdmin({ logger: pino({ level: 'warn' }, sink) });
    for (let i = 0; i < 5; i++) {
      expect((await publish(releaseBody('1.0.0'), 'wrong-token')).status).toBe(403);
    }
    const warnings = lines.filter((line) => line.includes('bearer token'));
    expect(warnings).toHaveLength(1);
    expect(JSON.parse(warnings[0]!).suppressed).toBe(0);
  });

  test('token checked before body', async () => {
    admin = await startAdmin();
    await expectRejected(() => call(admin.baseUrl, 'POST', '/api/releases', { rawBody: '{not json', token: null }), 401, 'TOKEN_MISSING');
  });
});

describe('publish body errors', () => {
  test('malformed JSON is 400', async () => {
    admin = await startAdmin();
    const response = await expectRejected(() => call(admin.baseUrl, 'POST', '/api/releases', { rawBody: '{"version": "1.0.0",' }), 400, 'INVALID_JSON');
    expect(response.body.error.message).toContain('not valid JSON');
  });

  test('JSON array is 400', async () => {
    admin = await startAdmin();
    await expectRejected(() => call(admin.baseUrl, 'POST', '/api/releases', { rawBody: '[1,2]' }), 400, 'INVALID_JSON');
  });

  test('non-JSON media type is 415', async () => {
    admin = await startAdmin();
    const rawBody = JSON.stringify(releaseBody('1.0.0'));
    await expectRejected(
      () => call(admin.baseUrl, 'POST', '/api/releases', { rawBody, contentType: 'application/x-www-form-urlencoded' }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
  });

  test('missing field names it', async () => {
    admin = await startAdmin();
    for (const field of ['version', 'encoding', 'size', 'sha256', 'signature', 'payload']) {
      const body = releaseBody('1.0.0');
      delete body[field];
      const response = await expectRejected(() => publish(body), 400, 'FIELD_MISSING');
      expect(response.body.error.field).toBe(field);
      expect(response.body.error.message).toContain(`"${field}"`);
    }
  });

  test('wrong-typed field names it', async () => {
    admin = await startAdmin();
    const cases: [string, unknown][] = [
      ['version', 200],
      ['channel', ['stable']],
      ['channel', 'Stable'],
      ['notes', { text: 'x' }],
      ['encoding', 'gzip'],
      ['rollout', 101],
      ['rollout', 50.5],
      ['rollout', '50'],
      ['size', '27'],
      ['size', 0],
      ['sha256', 'abc'],
      ['signature', 'zz'.repeat(64)],
      ['payload', 'not base64!'],
      ['payload', null],
      ['rolout', 10],
    ];
    for (const [field, value] of cases) {
      const response = await expectRejected(() => publish(releaseBody('1.0.0', { [field]: value })), 400, 'FIELD_INVALID');
      expect(response.body.error.field, `${field}=${JSON.stringify(value)}`).toBe(field);
      expect(response.body.error.message).toContain(field);
    }
  });

  test('bad semver is 400', async () => {
    admin = await startAdmin();
    for (const version of ['1.0', 'v1.0.0', '01.0.0', '1.0.0-01', '1.0.0-', '1.0.0+', '1.0.0-a..b', '', '1.0.0 ', `1.0.0-${'a'.repeat(30)}`]) {
      const response = await expectRejected(() => publish(releaseBody(version)), 400, 'INVALID_VERSION');
      expect(response.body.error.field).toBe('version');
    }
  });

  test('size mismatch is 400', async () => {
    admin = await startAdmin();
    const body = releaseBody('1.0.0');
    const response = await expectRejected(() => publish({ ...body, size: (body.size as number) + 1 }), 400, 'SIZE_MISMATCH');
    expect(response.body.error.message).toContain(String(body.size));
  });

  test('digest mismatch is 400', async () => {
    admin = await startAdmin();
    const body = releaseBody('1.0.0');
    const wrong = sha256(Buffer.from('other')).toString('hex');
    const response = await expectRejected(() => publish({ ...body, sha256: wrong }), 400, 'DIGEST_MISMATCH');
    expect(response.body.error.message).toContain(body.sha256 as string);
  });

  test('duplicate version is 409', async () => {
    admin = await startAdmin();
    expect((await publish(releaseBody('1.0.0'))).status).toBe(201);
    await expectRejected(() => publish(releaseBody('1.0.0', { notes: 'second try' })), 409, 'RELEASE_EXISTS');
  });

  test('build metadata duplicate is 409', async () => {
    admin = await startAdmin();
    expect((await publish(releaseBody('1.0.0+build.1'))).status).toBe(201);
    await expectRejected(() => publish(releaseBody('1.0.0+build.2')), 409, 'RELEASE_EXISTS');
  });
});

/** Sends a raw request with node:http so the test controls Content-Length and chunking. */
function rawPost(path: string, chunks: Buffer[], headers: Record<string, string | number>): Promise<{ status: number; body: any }> {
  const url = new URL(path, admin.baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json', ...headers } });
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (part: Buffer) => parts.push(part));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(parts).toString('utf8')) }));
    });
    // The server may close the connection while the body is still being sent.
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err);
    });
    for (const chunk of chunks) req.write(chunk);
    req.end();
  });
}

describe('publish body limit', () => {
  test('declared oversize body is 413', async () => {
    admin = await startAdmin({ maxBodyBytes: 4096 });
    const text = Buffer.from(JSON.stringify(releaseBody('1.0.0', {}, { payload: Buffer.alloc(6000, 1) })));
    const before = await admin.store.listReleases();
    const response = await rawPost('/api/releases', [text], { 'Content-Length': text.length });
    expect(response.status).toBe(413);
    expect(response.body.error.code).toBe('BODY_TOO_LARGE');
    expect(response.body.error.message).toContain('4096');
    expect(await admin.store.listReleases()).toEqual(before);
  });

  test('chunked oversize body is 413', async () => {
    admin = await startAdmin({ maxBodyBytes: 4096 });
    const text = Buffer.from(JSON.stringify(releaseBody('1.0.0', {}, { payload: Buffer.alloc(6000, 1) })));
    const chunks = [text.subarray(0, 3000), text.subarray(3000)];
    const before = await admin.store.listReleases();
    const response = await rawPost('/api/releases', chunks, { 'Transfer-Encoding': 'chunked' });
    expect(response.status).toBe(413);
    expect(response.body.error.code).toBe('BODY_TOO_LARGE');
    expect(await admin.store.listReleases()).toEqual(before);
  });

  test('body under limit is accepted', async () => {
    admin = await startAdmin({ maxBodyBytes: 4096 });
    const text = Buffer.from(JSON.stringify(releaseBody('1.0.0', {}, { payload: Buffer.alloc(1000, 1) })));
    const response = await rawPost('/api/releases', [text], { 'Content-Length': text.length });
    expect(response.status).toBe(201);
  });
});

describe('publish signature check', () => {
  test('good signature is accepted', async () => {
    admin = await startAdmin({ publicKeyPem });
    expect((await publish(releaseBody('1.0.0'))).status).toBe(201);
  });

  test('tampered signature is 400', async () => {
    admin = await startAdmin({ publicKeyPem });
    const body = releaseBody('1.0.0');
    const signature = Buffer.from(body.signature as string, 'hex');
    signature[10]! ^= 0x01;
    await expectRejected(() => publish({ ...body, signature: signature.toString('hex') }), 400, 'BAD_SIGNATURE');
  });

  test('other key signature is 400', async () => {
    admin = await startAdmin({ publicKeyPem });
    const other = generateKeyPairSync('ed25519');
    await expectRejected(() => publish(releaseBody('1.0.0', {}, { privateKey: other.privateKey })), 400, 'BAD_SIGNATURE');
  });

  test('signature bound to version', async () => {
    admin = await startAdmin({ publicKeyPem });
    const signedFor = releaseBody('1.0.0');
    await expectRejected(() => publish({ ...releaseBody('1.0.1'), signature: signedFor.signature }), 400, 'BAD_SIGNATURE');
  });

  test('no key skips signature check', async () => {
    admin = await startAdmin();
    const other = generateKeyPairSync('ed25519');
    expect((await publish(releaseBody('1.0.0', {}, { privateKey: other.privateKey }))).status).toBe(201);
  });
});
