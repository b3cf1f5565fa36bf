// The demo's story on the real daemon, the real firmware on MicroPython and the
// SIM7020E simulator over UDP: factory 1.0.0 updates to 2.0.0 and then to 3.0.0,
// each confirmed on the server's device record, and a check with nothing to offer.
import { afterEach, expect, test } from 'vitest';
import {
  deviceConfig,
  factoryImage,
  makeSigningKey,
  publishApp,
  reported,
  runCleanups,
  serialText,
  startDaemon,
  startDevice,
  waitForDevice,
} from './fixture.ts';

afterEach(runCleanups);

test('story 1.0.0 to 2.0.0 to 3.0.0', async () => {
  const key = await makeSigningKey();
  const daemon = await startDaemon({ publicKeyPem: key.publicPem });
  await publishApp(daemon, key, '2.0.0');
  const { pico, tap, modem } = await startDevice(factoryImage(await deviceConfig(daemon, key)));

  const second = await waitForDevice(daemon, reported('2.0.0', 'confirmed'), { timeoutMs: 30_000 }).catch((err: Error) => {
    throw new Error(`${err.message}\nserial:\n${serialText(pico)}`);
  });
  expect(second.version).toBe('2.0.0');
  await publishApp(daemon, key, '3.0.0');
  const third = await waitForDevice(daemon, reported('3.0.0', 'confirmed'), { timeoutMs: 30_000 });

  expect(third.version).toBe('3.0.0');
  expect(JSON.parse(pico.readText('ota_state.json') ?? '{}')).toMatchObject({ active: 'a', versions: { a: '3.0.0', b: '2.0.0' }, trial: false });
  expect(pico.serialLines(pico.currentBoot)).toContain('I main: running app 3.0.0 from slot a');
  expect(pico.resets).toBe(2);
  expect(pico.readFile('ota_staging.bin')).toBeUndefined();
  const events = await daemon.server.store.listEvents({ device: 'pico-e2e', limit: 100 });
  const outcomes = events.filter((event) => event.type === 'report').map((event) => `${event.outcome} ${event.version}`);
  expect(outcomes).toEqual(expect.arrayContaining(['installed 2.0.0', 'confirmed 2.0.0', 'installed 3.0.0', 'confirmed 3.0.0']));

  const stats = modem.stats();
  console.log(
    `story: ${tap.blockRequests().size} distinct blocks, ${stats.uplink.datagrams} datagrams up (${stats.uplink.ipBytes} B), ` +
      `${stats.downlink.datagrams} down (${stats.downlink.ipBytes} B), heap high-water ${pico.heapHighWater} B without GC`,
  );
  expect(pico.heapHighWater).toBeGreaterThan(0);
});

test('check with no update offered', async () => {
  const key = await makeSigningKey();
  const daemon = await startDaemon({ publicKeyPem: key.publicPem });
  const { pico, tap } = await startDevice(factoryImage(await deviceConfig(daemon, key)));

  const result = await pico.runUntil({ serialMatch: /no update offered/ }, { timeoutMs: 20_000 });

  expect(result.reason).toBe('matched');
  expect(result.line).toBe('I ota: no update offered, up to date on 1.0.0');
  const record = await waitForDevice(daemon, (device) => device.status === 'up-to-date');
  expect(record.version).toBe('1.0.0');
  // One POST /c is the whole check on the air: no report is queued and nothing is offered.
  expect(tap.sent.map((request) => `${request.code} ${request.path}`)).toEqual(['0.02 /c']);
  expect(pico.resets).toBe(0);
  const heap = pico.heapHighWater;
  console.log(`idle check: heap high-water ${heap} B without GC`);
  expect(heap).toBeLessThan(2 * 1024 * 1024);
});
