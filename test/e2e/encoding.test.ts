// Raw and deflate releases both install end to end on the same device.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { APPS_DIR, deviceConfig, factoryImage, makeSigningKey, publishApp, reported, runCleanups, startDaemon, startDevice, waitForDevice } from './fixture.ts';

afterEach(runCleanups);

test('raw and deflate releases install', async () => {
  const key = await makeSigningKey();
  const daemon = await startDaemon({ publicKeyPem: key.publicPem });
  const raw = await publishApp(daemon, key, '2.0.0', { encoding: 'raw' });
  const { pico } = await startDevice(factoryImage(await deviceConfig(daemon, key)));

  await waitForDevice(daemon, reported('2.0.0', 'confirmed'), { timeoutMs: 30_000 });
  const deflated = await publishApp(daemon, key, '3.0.0', { encoding: 'deflate' });
  await waitForDevice(daemon, reported('3.0.0', 'confirmed'), { timeoutMs: 30_000 });

  expect(raw.encoding).toBe('raw');
  expect(deflated.encoding).toBe('deflate');
  expect(pico.readText('app_slots/b/app.py')).toBe(readFileSync(join(APPS_DIR, '2.0.0', 'app.py'), 'utf8'));
  expect(pico.readText('app_slots/a/app.py')).toBe(readFileSync(join(APPS_DIR, '3.0.0', 'app.py'), 'utf8'));
  expect(pico.serialLines().filter((line) => /update offered: .* \((raw|deflate)\)/.test(line))).toEqual([
    `I ota: update offered: 2.0.0, ${raw.size} bytes (raw)`,
    `I ota: update offered: 3.0.0, ${deflated.size} bytes (deflate)`,
  ]);
});
