// Releases that fail verification are never installed: the device reports
// verifyFailed, shows SOS on the LED and keeps running the old version.
import { afterEach, expect, test } from 'vitest';
import {
  corruptPayload,
  deviceConfig,
  factoryImage,
  findSos,
  makeSigningKey,
  publishApp,
  replaceDigest,
  reported,
  runCleanups,
  serialText,
  startDaemon,
  startDevice,
  waitForDevice,
  type Daemon,
  type SigningKey,
} from './fixture.ts';

afterEach(runCleanups);

interface Fault {
  name: string;
  /** Publishes a faulty 2.0.0; the device trusts deviceKey. */
  publish(daemon: Daemon, deviceKey: SigningKey): Promise<void>;
  /** Whether the device downloads the image before it finds the fault. */
  downloads: boolean;
}

const faults: Fault[] = [
  {
    name: 'corrupted payload',
    publish: async (daemon, key) => {
      await publishApp(daemon, key, '2.0.0');
      await corruptPayload(daemon, '2.0.0', 100);
    },
    downloads: true,
  },
  {
    name: 'wrong digest',
    publish: async (daemon, key) => {
      await publishApp(daemon, key, '2.0.0');
      await replaceDigest(daemon, '2.0.0', key);
    },
    downloads: true,
  },
  {
    // The daemon has no public key configured, so it accepts a release signed by another key.
    name: 'bad signature',
    publish: async (daemon) => {
      await publishApp(daemon, await makeSigningKey(), '2.0.0');
    },
    downloads: false,
  },
];

test.each(faults)('$name is rejected', async (fault) => {
  const key = await makeSigningKey();
  const daemon = await startDaemon();
  await fault.publish(daemon, key);
  // 128-byte blocks keep the 254-byte 2.0.0 out of the check answer, so the faults
  // are found on the Block2 path; test/e2e/inline.test.ts covers inlined payloads.
  const { pico, tap } = await startDevice(factoryImage(await deviceConfig(daemon, key, { block_size: 128 })));

  const record = await waitForDevice(daemon, reported('1.0.0', 'verifyFailed', '2.0.0'), { timeoutMs: 20_000 }).catch((err: Error) => {
    throw new Error(`${err.message}\nserial:\n${serialText(pico)}`);
  });
  const sos = await pico.runUntil(() => findSos(pico) !== undefined, { timeoutMs: 30_000 });

  expect(record.lastReport?.detail).toMatch(fault.downloads ? /SHA-256/ : /signature/);
  expect(sos.reason).toBe('matched');
  expect(tap.blockRequests().size > 0).toBe(fault.downloads);
  // After a SHA-256 mismatch the image is downloaded once more before the version is rejected.
  expect(tap.blockRequests().get(0) ?? 0).toBe(fault.downloads ? 2 : 0);
  expect(pico.readFile('app_slots/b/app.py')).toBeUndefined();
  expect(pico.readFile('ota_staging.bin')).toBeUndefined();
  expect(JSON.parse(pico.readText('ota_state.json') ?? '{}')).toMatchObject({ active: 'a', trial: false, rejected: ['2.0.0'] });
  expect(pico.resets).toBe(0);
  // The old app keeps running and the next check-in does not fetch 2.0.0 again.
  const blocksBefore = tap.sent.length;
  const next = await pico.runUntil({ serialMatch: /offer ignored, version rejected earlier/ }, { timeoutMs: 30_000 });
  expect(next.reason).toBe('matched');
  expect(tap.sent.slice(blocksBefore).filter((request) => request.block !== undefined)).toEqual([]);
  expect(pico.state).toBe('running');
});

interface LineError {
  name: string;
  /** Device configuration: 128-byte blocks keep 2.0.0 out of the check response. */
  config: Record<string, unknown>;
  /** The downlink datagram whose last byte (a payload byte) the UART flips. */
  datagram: number;
}

const lineErrors: LineError[] = [
  // Datagram 1 is the check response, so 2 is the first block response.
  { name: 'block', config: { block_size: 128 }, datagram: 2 },
  // The inline payload is the last entry of the check response's manifest.
  { name: 'inline payload', config: {}, datagram: 1 },
];

test.each(lineErrors)('flipped bit in $name downloads again', async (lineError) => {
  const key = await makeSigningKey();
  const daemon = await startDaemon();
  await publishApp(daemon, key, '2.0.0');
  const { pico, modem, tap } = await startDevice(factoryImage(await deviceConfig(daemon, key, lineError.config)), {
    modem: { faults: { corruptDownlink: [lineError.datagram] } },
  });

  await waitForDevice(daemon, reported('2.0.0', 'confirmed'), { timeoutMs: 30_000 }).catch((err: Error) => {
    throw new Error(`${err.message}\nserial:\n${serialText(pico)}`);
  });

  expect(modem.stats().downlinkCorrupted).toBe(1);
  expect(serialText(pico)).toMatch(/2\.0\.0: SHA-256 of the \d+ downloaded bytes does not match the manifest, fetching it again \(download 2 of 2\)/);
  // The second download fetches block 0 over Block2: for the first time after an
  // inline payload, and once more after a Block2 download.
  expect(tap.blockRequests().get(0)).toBe(lineError.datagram === 1 ? 1 : 2);
  expect(JSON.parse(pico.readText('ota_state.json') ?? '{}')).toMatchObject({ trial: false, rejected: [] });
});
