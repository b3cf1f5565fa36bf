// A device whose checks exceed the daemon's per-device limit: the firmware takes the
// 5.03 as "server busy", waits at least Max-Age before its next check, and neither
// counts it as a failed check-in nor power-cycles the modem.
import { afterEach, expect, test } from 'vitest';
import { deviceConfig, factoryImage, makeSigningKey, runCleanups, serialText, startDaemon, startDevice } from './fixture.ts';

afterEach(runCleanups);

test('5.03 delays next check-in', async () => {
  const key = await makeSigningKey();
  // One check at once, then one every 3 s, against check-ins every second.
  const daemon = await startDaemon({ publicKeyPem: key.publicPem, deviceRate: { burst: 1, ratePerMinute: 20 } });
  const { pico, modem, tap } = await startDevice(factoryImage(await deviceConfig(daemon, key, { check_interval_s: 1 })));

  const busy = /^W ota: server busy, next check-in in (\d+) s at the earliest:/;
  for (let i = 0; i < 2; i++) {
    const result = await pico.runUntil({ serialMatch: busy }, { timeoutMs: 20_000 });
    expect(result.reason, serialText(pico)).toBe('matched');
  }
  // The check after the second busy response must be admitted again.
  const admitted = await pico.runUntil({ serialMatch: /^I ota: no update offered/ }, { timeoutMs: 20_000 });
  expect(admitted.reason, serialText(pico)).toBe('matched');

  // Each check-in logs one outcome line, in the order of the checks the tap saw.
  const lines = pico.serialLines();
  const outcomes = lines.filter((line) => busy.test(line) || line.startsWith('I ota: no update offered'));
  const checks = tap.sent.filter((request) => request.path === '/c');
  expect(checks.length).toBeGreaterThanOrEqual(outcomes.length);
  let busyChecks = 0;
  for (const [i, line] of outcomes.entries()) {
    const wait = busy.exec(line)?.[1];
    if (wait === undefined || i + 1 >= checks.length) continue;
    busyChecks += 1;
    // Max-Age exceeds the 1 s interval, so the wait comes from the 5.03.
    expect(Number(wait)).toBeGreaterThan(1);
    expect(checks[i + 1]!.atMs - checks[i]!.atMs, `check ${i + 1}`).toBeGreaterThanOrEqual(Number(wait) * 1000);
  }
  expect(busyChecks).toBe(2);

  expect(lines.filter((line) => line.includes('check-in failed'))).toEqual([]);
  expect(lines.filter((line) => line.includes('restarting the modem'))).toEqual([]);
  expect(modem.stats().powerOns).toBe(1);
});
