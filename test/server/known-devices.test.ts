// --known-devices-only on the real daemon process over real CoAP: unregistered ids get
// 4.03 and leave no record, registered ones are served, image blocks stay open,
// rejections are logged with a throttle, and registrations survive a restart. The
// throttle's limits are also checked on the gate itself with a controlled clock.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Encoder } from 'cbor-x';
import pino from 'pino';
import { afterEach, describe, expect, test } from 'vitest';
import { KnownDevicesGate, UNKNOWN_DEVICE_WARN_INTERVAL_MS, UNKNOWN_DEVICE_WARNINGS_PER_INTERVAL } from '../../src/coap/known-devices.ts';
import { Store } from '../../src/storage/store.ts';
import { call, releaseBody } from '../admin/helpers.ts';
import { Code, RawClient, TEST_TOKEN, block2, path_, query, tempDir } from './helpers.ts';

const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../bin/ota-server.js');
const cbor = new Encoder({ useRecords: false, useTag259ForMaps: false } as object);
const checkBody = (id: string, version = '1.0.0') => cbor.encode(new Map<number, unknown>([[0, id], [1, version]]));
const reportBody = (id: string) => cbor.encode(new Map<number, unknown>([[0, id], [1, '2.0.0'], [2, 1], [3, '2.0.0']]));
const CBOR_FORMAT: [number, Buffer] = [12, Buffer.from([60])];

interface Daemon {
  coapPort: number;
  adminUrl: string;
  /** Parsed JSON log lines written so far. */
  logs: Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Starts bin/ota-server.js on free ports and resolves once it logs "listening". */
async function spawnDaemon(dataDir: string, args: string[], env: Record<string, string> = {}): Promise<Daemon> {
  const child = spawn(
    process.execPath,
    [BIN, '--coap-port', '0', '--admin-port', '0', '--bind', '127.0.0.1', '--data-dir', dataDir, '--admin-token', TEST_TOKEN, ...args],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  cleanups.push(stop);
  const logs: Array<Record<string, unknown>> = [];
  const lines = createInterface({ input: child.stdout! });
  const listening = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('daemon logged no "listening" line within 20 s')), 20_000);
    lines.on('line', (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      logs.push(entry);
      if (entry.msg === 'listening') {
        clearTimeout(timer);
        resolve(entry);
      }
    });
  });
  return { coapPort: listening.coapPort as number, adminUrl: `http://127.0.0.1:${listening.adminPort as number}`, logs, stop };
}

async function startKnownOnly(): Promise<{ daemon: Daemon; client: RawClient; dataDir: string }> {
  const temp = await tempDir();
  cleanups.push(temp.remove);
  const daemon = await spawnDaemon(temp.dir, ['--known-devices-only']);
  const client = new RawClient(daemon.coapPort);
  cleanups.push(() => client.close());
  return { daemon, client, dataDir: temp.dir };
}

const register = (daemon: Daemon, id: string) => call(daemon.adminUrl, 'PUT', `/api/devices/${id}/registration`, { body: { label: 'test bench' }, token: TEST_TOKEN });

describe('known devices only', () => {
  test('unregistered check gets 4.03', async () => {
    const { daemon, client } = await startKnownOnly();
    expect(daemon.logs.find((entry) => entry.msg === 'listening')?.knownDevicesOnly).toBe(true);

    const reply = await client.request({ code: Code.POST, options: [...path_('c'), CBOR_FORMAT], payload: checkBody('pico-stranger') });
    expect(reply.code).toBe('4.03');
    expect(reply.payload.toString('utf8')).toBe(
      'device pico-stranger is not registered on this server; register it with ota-tool device add (docs/ota-tool.md) or PUT /api/devices/pico-stranger/registration',
    );
    const byQuery = await client.request({ code: Code.GET, options: [...path_('c'), ...query('d=pico-stranger', 'v=1.0.0')] });
    expect(byQuery.code).toBe('4.03');

    const device = await call(daemon.adminUrl, 'GET', '/api/devices/pico-stranger');
    expect(device.status).toBe(404);
    const events = await call(daemon.adminUrl, 'GET', '/api/events?device=pico-stranger');
    expect(events.body.events).toEqual([]);
  });

  test('unregistered report gets 4.03', async () => {
    const { daemon, client } = await startKnownOnly();
    const reply = await client.request({ code: Code.POST, options: [...path_('r'), CBOR_FORMAT], payload: reportBody('pico-stranger') });
    expect(reply.code).toBe('4.03');
    const devices = await call(daemon.adminUrl, 'GET', '/api/devices');
    expect(devices.body.devices).toEqual([]);
  });

  test('malformed check still gets 4.00', async () => {
    const { client } = await startKnownOnly();
    const reply = await client.request({ code: Code.POST, options: [...path_('c'), CBOR_FORMAT], payload: checkBody('pico stranger') });
    expect(reply.code).toBe('4.00');
  });

  test('registered device is served', async () => {
    const { daemon, client } = await startKnownOnly();
    const published = await call(daemon.adminUrl, 'POST', '/api/releases', { body: releaseBody('2.0.0'), token: TEST_TOKEN });
    expect(published.status).toBe(201);
    expect((await register(daemon, 'pico-001')).status).toBe(201);

    const check = await client.request({ code: Code.POST, options: [...path_('c'), CBOR_FORMAT], payload: checkBody('pico-001') });
    expect(check.code).toBe('2.05');
    expect((cbor.decode(check.payload) as Record<number, unknown>)[0]).toBe('2.0.0');
    const report = await client.request({ code: Code.POST, options: [...path_('r'), CBOR_FORMAT], payload: reportBody('pico-001') });
    expect(report.code).toBe('2.04');

    const device = await call(daemon.adminUrl, 'GET', '/api/devices/pico-001');
    expect(device.body).toMatchObject({ id: 'pico-001', version: '2.0.0', status: 'confirmed', registered: true, label: 'test bench' });
  });

  test('blocks stay open', async () => {
    const { daemon, client } = await startKnownOnly();
    const published = await call(daemon.adminUrl, 'POST', '/api/releases', { body: releaseBody('2.0.0'), token: TEST_TOKEN });
    const id = (published.body.path as string).split('/')[2]!;
    const block = await client.request({ code: Code.GET, type: 0, options: [...path_('d', id), block2(0, 6)] });
    expect(block.code).toBe('2.05');
    expect(block.payload.toString('base64')).toBe(releaseBody('2.0.0').payload);
  });

  test('removed registration is rejected', async () => {
    const { daemon, client } = await startKnownOnly();
    await register(daemon, 'pico-001');
    expect((await client.request({ code: Code.POST, options: [...path_('c'), CBOR_FORMAT], payload: checkBody('pico-001') })).code).toBe('2.05');
    const removed = await call(daemon.adminUrl, 'DELETE', '/api/devices/pico-001/registration', { token: TEST_TOKEN });
    expect(removed.status).toBe(200);
    expect((await client.request({ code: Code.POST, options: [...path_('c'), CBOR_FORMAT], payload: checkBody('pico-001') })).code).toBe('4.03');
  });

  test('looping device logs one warning', async () => {
    const { daemon, client } = await startKnownOnly();
    for (let i = 0; i < 15; i++) {
      const reply = await client.request({ code: Code.POST, options: [...path_('c'), CBOR_FORMAT], payload: checkBody('pico-loop') });
      expect(reply.code).toBe('4.03');
    }
    const warnings = daemon.logs.filter((entry) => entry.msg === 'unregistered device rejected');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 40, deviceId: 'pico-loop', resource: 'c', code: 'DEVICE_NOT_REGISTERED' });
    expect(warnings[0]!.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(daemon.logs.filter((entry) => entry.msg === 'request rejected')).toEqual([]);
  });

  test('restart keeps registrations', async () => {
    const { daemon, dataDir } = await startKnownOnly();
    await register(daemon, 'pico-001');
    await daemon.stop();

    const again = await spawnDaemon(dataDir, [], { OTA_KNOWN_DEVICES_ONLY: 'true' });
    const client = new RawClient(again.coapPort);
    cleanups.push(() => client.close());
    expect((await client.request({ code: Code.POST, options: [...path_('c'), CBOR_FORMAT], payload: checkBody('pico-001') })).code).toBe('2.05');
    expect((await client.request({ code: Code.POST, options: [...path_('c'), CBOR_FORMAT], payload: checkBody('pico-002') })).code).toBe('4.03');
    const registration = await call(again.adminUrl, 'GET', '/api/devices/pico-001/registration');
    expect(registration.body).toMatchObject({ id: 'pico-001', label: 'test bench' });
  });

  test('without the option anyone checks in', async () => {
    const temp = await tempDir();
    cleanups.push(temp.remove);
    const daemon = await spawnDaemon(temp.dir, []);
    const client = new RawClient(daemon.coapPort);
    cleanups.push(() => client.close());
    const reply = await client.request({ code: Code.POST, options: [...path_('c'), CBOR_FORMAT], payload: checkBody('pico-stranger') });
    expect(reply.code).toBe('2.05');
    const device = await call(daemon.adminUrl, 'GET', '/api/devices/pico-stranger');
    expect(device.body).toMatchObject({ id: 'pico-stranger', registered: false });
  });
});

describe('unknown device throttle', () => {
  async function gateWithClock(): Promise<{ gate: KnownDevicesGate; lines: Array<Record<string, unknown>>; clock: { ms: number } }> {
    const temp = await tempDir();
    const store = await Store.open(temp.dir);
    cleanups.push(temp.remove, () => store.close());
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const clock = { ms: 1_000_000 };
    return { gate: new KnownDevicesGate(store, logger, () => clock.ms), lines, clock };
  }

  test('same id waits an interval', async () => {
    const { gate, lines, clock } = await gateWithClock();
    for (let i = 0; i < 5; i++) gate.warn('pico-a', '192.0.2.1:1000', 'c');
    expect(lines).toHaveLength(1);
    clock.ms += UNKNOWN_DEVICE_WARN_INTERVAL_MS;
    gate.warn('pico-a', '192.0.2.1:1000', 'c');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ deviceId: 'pico-a', suppressed: 4, otherSuppressed: 0 });
  });

  test('many ids hit the global limit', async () => {
    const { gate, lines, clock } = await gateWithClock();
    const extra = 7;
    for (let i = 0; i < UNKNOWN_DEVICE_WARNINGS_PER_INTERVAL + extra; i++) gate.warn(`pico-${i}`, '192.0.2.1:1000', 'c');
    expect(lines).toHaveLength(UNKNOWN_DEVICE_WARNINGS_PER_INTERVAL);
    clock.ms += UNKNOWN_DEVICE_WARN_INTERVAL_MS;
    gate.warn('pico-next', '192.0.2.1:1000', 'c');
    expect(lines.at(-1)).toMatchObject({ deviceId: 'pico-next', otherSuppressed: extra });
  });
});
