// Failed authentications per client address: past the limit every authenticated
// request from the address gets 429 with Retry-After, reads stay open, the log names
// the address and never a token, and the correct token works once the wait is over.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, test } from 'vitest';
import { TOKEN, call, releaseBody, startAdmin, type AdminHarness } from './helpers.ts';

const WRONG_TOKEN = 'wrong-token-7f3e9a';

let admin: AdminHarness | undefined;
afterEach(async () => {
  await admin?.close();
  admin = undefined;
});

async function startLimited(): Promise<{ admin: AdminHarness; lines: string[] }> {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(chunk.toString('utf8'));
      callback();
    },
  });
  // 3 failures at once, then one more each second.
  admin = await startAdmin({ logger: pino({ level: 'debug' }, stream), authFailureLimit: { burst: 3, ratePerMinute: 60 } });
  return { admin, lines };
}

describe('admin authentication limit', () => {
  test('failures past limit get 429', async () => {
    const { admin } = await startLimited();
    expect((await call(admin.baseUrl, 'POST', '/api/releases', { body: releaseBody('1.0.0'), token: WRONG_TOKEN })).status).toBe(403);
    expect((await call(admin.baseUrl, 'POST', '/api/releases', { body: releaseBody('1.0.0'), token: null })).status).toBe(401);
    expect((await call(admin.baseUrl, 'POST', '/api/releases', { body: releaseBody('1.0.0'), token: WRONG_TOKEN })).status).toBe(403);

    // The correct token is rejected too while the address is limited.
    const limited = await call(admin.baseUrl, 'POST', '/api/releases', { body: releaseBody('1.0.0') });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('1');
    expect(limited.body.error.code).toBe('AUTH_RATE_LIMITED');
    expect(limited.body.error.message).toMatch(/^too many requests with a missing or wrong bearer token from \S+; retry in 1 s with the admin token$/);
    expect(await admin.store.listReleases()).toEqual([]);
  });

  test('reads stay open while limited', async () => {
    const { admin } = await startLimited();
    for (let i = 0; i < 4; i++) await call(admin.baseUrl, 'POST', '/api/releases', { body: {}, token: WRONG_TOKEN });
    expect((await call(admin.baseUrl, 'GET', '/api/releases', { token: null })).status).toBe(200);
  });

  test('correct token works after wait', async () => {
    const { admin } = await startLimited();
    for (let i = 0; i < 4; i++) await call(admin.baseUrl, 'POST', '/api/releases', { body: {}, token: WRONG_TOKEN });
    const limited = await call(admin.baseUrl, 'POST', '/api/releases', { body: releaseBody('1.0.0') });
    expect(limited.status).toBe(429);
    await new Promise((resolve) => setTimeout(resolve, Number(limited.headers.get('retry-after')) * 1000 + 100));
    const accepted = await call(admin.baseUrl, 'POST', '/api/releases', { body: releaseBody('1.0.0') });
    expect(accepted.status).toBe(201);
  });

  test('log names address, not token', async () => {
    const { admin, lines } = await startLimited();
    for (let i = 0; i < 5; i++) await call(admin.baseUrl, 'POST', '/api/releases', { body: {}, token: WRONG_TOKEN });
    await call(admin.baseUrl, 'POST', '/api/releases', { body: {} });
    const warnings = lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.level === 40);
    expect(warnings.length).toBeGreaterThan(0);
    expect(warnings[0]!.remoteAddress).toMatch(/127\.0\.0\.1$/);
    const text = lines.join('');
    expect(text).not.toContain(WRONG_TOKEN);
    expect(text).not.toContain(TOKEN);
  });

  test('lockout logged apart from failures', async () => {
    const { admin, lines } = await startLimited();
    for (let i = 0; i < 4; i++) await call(admin.baseUrl, 'POST', '/api/releases', { body: {}, token: WRONG_TOKEN });
    const messages = lines.map((line) => (JSON.parse(line) as { level: number; msg: string })).filter((line) => line.level === 40).map((line) => line.msg);
    expect(messages).toContain('admin request with wrong bearer token');
    // The fourth request is the first 429; its warning is not folded into the wrong-token count.
    expect(messages).toContain('admin client over its limit of failed authentications; answering 429');
  });
});
