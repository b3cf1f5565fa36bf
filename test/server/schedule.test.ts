// A scheduled release over real CoAP against the daemon. Published through the admin
// API with a start time about 1.5 s ahead, it is neither offered nor listed before that
// instant. After it, the same daemon offers and lists it without a restart.
import { afterEach, describe, expect, it } from 'vitest';
import { decodeUint } from '../../src/coap/datagram.ts';
import type { RunningServer } from '../../src/daemon/server.ts';
import { releaseBody } from '../admin/helpers.ts';
import { Code, RawClient, TEST_TOKEN, optionOf, path_, query, startTestServer, tempDir, uintOption } from './helpers.ts';

const OPTION_MAX_AGE = 14;
const OPTION_ACCEPT = 17;
const FORMAT_JSON = 50;
/** Lead of the start time over the publish request, long enough for the first checks on a busy machine. */
const START_LEAD_MS = 1500;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startDaemon(): Promise<{ server: RunningServer; client: RawClient }> {
  const temp = await tempDir();
  cleanups.push(temp.remove);
  const server = await startTestServer(temp.dir);
  cleanups.push(() => server.close());
  const client = new RawClient(server.coapPort);
  cleanups.push(() => client.close());
  return { server, client };
}

async function adminRequest(server: RunningServer, method: string, path: string, body: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(`http://127.0.0.1:${server.adminPort}${path}`, {
    method,
    headers: { Authorization: `Bearer ${TEST_TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

/** Sends GET /c with a JSON Accept, as libcoap's client does, and returns the decoded payload and its Max-Age option. */
async function checkJson(client: RawClient, device: string): Promise<{ answer: { update: boolean; version?: string }; maxAge: number | undefined }> {
  const reply = await client.request({ code: Code.GET, type: 0, options: [...path_('c'), ...query(`d=${device}`, 'v=1.0.0'), uintOption(OPTION_ACCEPT, FORMAT_JSON)] });
  expect(reply.code).toBe('2.05');
  const maxAge = optionOf(reply, OPTION_MAX_AGE);
  return { answer: JSON.parse(reply.payload.toString('utf8')), maxAge: maxAge === undefined ? undefined : decodeUint(maxAge) };
}

async function wellKnownCore(client: RawClient): Promise<string> {
  const reply = await client.request({ code: Code.GET, type: 0, options: path_('.well-known', 'core') });
  expect(reply.code).toBe('2.05');
  return reply.payload.toString('utf8');
}

describe('scheduled release over CoAP', () => {
  it('offered once the start passes', async () => {
    const { server, client } = await startDaemon();
    const startMs = Date.now() + START_LEAD_MS;
    const published = await adminRequest(server, 'POST', '/api/releases', releaseBody('2.0.0', { startAt: new Date(startMs).toISOString() }));
    expect(published.status).toBe(201);
    const path = String(published.body.path);

    const before = await checkJson(client, 'pico-sched-1');
    expect(Date.now()).toBeLessThan(startMs);
    expect(before.answer).toEqual({ update: false });
    // The response changes at the start, so its Max-Age ends before it: 1 s or 0 s here.
    expect(before.maxAge).toBeDefined();
    expect(before.maxAge).toBeLessThanOrEqual(1);
    expect(await wellKnownCore(client)).not.toContain(path);

    await new Promise((resolve) => setTimeout(resolve, Math.max(0, startMs - Date.now()) + 50));

    const after = await checkJson(client, 'pico-sched-1');
    expect(after.answer).toMatchObject({ update: true, version: '2.0.0', path });
    expect(after.maxAge).toBeUndefined();
    expect(await wellKnownCore(client)).toContain(`<${path}>`);
  });

  it('clearing the start offers at once', async () => {
    const { server, client } = await startDaemon();
    const far = '2099-01-01T00:00:00Z';
    expect((await adminRequest(server, 'POST', '/api/releases', releaseBody('2.0.0', { startAt: far }))).status).toBe(201);
    const before = await checkJson(client, 'pico-sched-2');
    expect(before.answer).toEqual({ update: false });
    expect(before.maxAge).toBeUndefined();

    const cleared = await adminRequest(server, 'PATCH', '/api/releases/2.0.0', { startAt: null });
    expect(cleared.status).toBe(200);
    expect(cleared.body.startAt).toBeNull();
    expect((await checkJson(client, 'pico-sched-2')).answer).toMatchObject({ update: true, version: '2.0.0' });
  });

  it('moving the start later withholds it', async () => {
    const { server, client } = await startDaemon();
    expect((await adminRequest(server, 'POST', '/api/releases', releaseBody('2.0.0'))).status).toBe(201);
    expect((await checkJson(client, 'pico-sched-3')).answer).toMatchObject({ update: true });

    const moved = await adminRequest(server, 'PATCH', '/api/releases/2.0.0', { startAt: '2099-01-01T00:00:00Z' });
    expect(moved.status).toBe(200);
    expect((await checkJson(client, 'pico-sched-3')).answer).toEqual({ update: false });
  });
});
