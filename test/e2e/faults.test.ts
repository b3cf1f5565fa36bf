// An update over a bad link: 20 % of the datagrams lost in each direction (seeded)
// and a modem reset in the middle of the download.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import {
  APPS_DIR,
  deviceConfig,
  factoryImage,
  makeSigningKey,
  publishFiles,
  reported,
  runCleanups,
  serialText,
  startDaemon,
  startDevice,
  waitForDevice,
} from './fixture.ts';

afterEach(runCleanups);

test('update survives loss and modem reset', async () => {
  const key = await makeSigningKey();
  const daemon = await startDaemon({ publicKeyPem: key.publicPem });
  const release = await publishFiles(
    daemon,
    key,
    '2.0.0',
    { 'app.py': readFileSync(join(APPS_DIR, '2.0.0', 'app.py')), 'data.bin': randomBytes(4000) },
    { encoding: 'raw' },
  );
  const { pico, modem, tap } = await startDevice(factoryImage(await deviceConfig(daemon, key, { block_size: 256, ack_timeout_ms: 300 })), {
    modem: { faults: { seed: 7, uplinkLoss: 0.2, downlinkLoss: 0.2, resetAfterSends: 14 } },
  });

  await waitForDevice(daemon, reported('2.0.0', 'confirmed'), { timeoutMs: 60_000 }).catch((err: Error) => {
    throw new Error(`${err.message}\nserial:\n${serialText(pico)}`);
  });

  const stats = modem.stats();
  expect(stats.resets).toBe(1);
  expect(stats.uplinkLost).toBeGreaterThan(0);
  expect(stats.downlinkLost).toBeGreaterThan(0);
  expect(tap.blockRequests().size).toBe(Math.ceil(release.size / 256));
  // The reset fell inside the download, which then resumed from the staged bytes.
  const resumed = pico.serialLines().find((line) => line.startsWith('I ota: resuming a staged download at byte'));
  expect(Number(resumed?.split(' ').pop())).toBeGreaterThan(0);
  expect(pico.readText('app_slots/b/app.py')).toBe(readFileSync(join(APPS_DIR, '2.0.0', 'app.py'), 'utf8'));
  const retransmissions = pico.serialLines().filter((line) => line.startsWith('I coap: retransmit')).length;
  console.log(
    `loss and reset: ${stats.uplinkLost} up and ${stats.downlinkLost} down lost, ${retransmissions} retransmissions, ` +
      `${stats.uplink.datagrams} datagrams up, ${stats.downlink.datagrams} down`,
  );
  expect(retransmissions).toBeGreaterThan(0);
});
