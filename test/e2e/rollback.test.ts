// A new version whose app.py raises at import is rolled back on its first trial
// boot, and the rollback reaches the server.
import { afterEach, expect, test } from 'vitest';
import {
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

test('app raising at import rolls back', async () => {
  const key = await makeSigningKey();
  const daemon = await startDaemon({ publicKeyPem: key.publicPem });
  await publishFiles(daemon, key, '2.0.0', { 'app.py': 'raise RuntimeError("broken build")\n' });
  const { pico, tap } = await startDevice(factoryImage(await deviceConfig(daemon, key)));

  const record = await waitForDevice(daemon, reported('1.0.0', 'rolledBack', '2.0.0'), { timeoutMs: 30_000 }).catch((err: Error) => {
    throw new Error(`${err.message}\nserial:\n${serialText(pico)}`);
  });

  expect(record.lastReport?.detail).toMatch(/import failed.*broken build/);
  expect(JSON.parse(pico.readText('ota_state.json') ?? '{}')).toMatchObject({ active: 'a', trial: false, rejected: ['2.0.0'] });
  expect(pico.resets).toBe(2);
  const lastBoot = pico.serialLines(pico.currentBoot);
  expect(lastBoot).toContain('I main: running app 1.0.0 from slot a');
  const events = await daemon.server.store.listEvents({ device: 'pico-e2e', limit: 100 });
  expect(events.filter((event) => event.type === 'report').map((event) => `${event.outcome} ${event.version}`)).toEqual(
    expect.arrayContaining(['installed 2.0.0', 'rolledBack 2.0.0']),
  );
  // The rejected version is not downloaded again at the next check-in.
  const next = await pico.runUntil({ serialMatch: /offer ignored, version rejected earlier/ }, { timeoutMs: 15_000 });
  expect(next.reason).toBe('matched');
  expect(tap.sent.filter((request) => request.block !== undefined && request.boot > 1)).toEqual([]);
});
