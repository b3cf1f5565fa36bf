// Power saving between check-ins on the real firmware, the SIM7020E simulator and the
// real daemon: the AT+CPSMS request after a check-in without an update, and light sleep
// between app steps with the watchdog still fed.
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest';
import { createDevice, factoryFiles, type Device, type UpdateRig, startUpdateRig } from '../../tools/sweeps/update-rig.ts';

let rig: UpdateRig;
const devices: Device[] = [];

beforeAll(async () => {
  rig = await startUpdateRig();
});

afterEach(async () => {
  for (const device of devices.splice(0)) await device.stop();
});

afterAll(async () => {
  await rig?.close();
});

async function bootUntilPsm(deviceId: string, config: Record<string, unknown>): Promise<Device> {
  const device = createDevice(factoryFiles(rig, deviceId, config));
  devices.push(device);
  await device.pico.boot();
  const result = await device.pico.runUntil(() => device.modem.stats().powerSaving.psm !== null, { timeoutMs: 20_000 });
  expect(result.reason).toBe('matched');
  return device;
}

test('PSM request carries configured timers', async () => {
  const device = await bootUntilPsm('psm-on', { psm_tau_s: 7200, psm_active_s: 20 });

  const psm = device.modem.stats().powerSaving.psm;
  expect(device.pico.serialLines().some((line) => line.includes('no update offered'))).toBe(true);
  expect(psm?.mode).toBe(1);
  // T3412: 10 min x 12; T3324: 2 s x 10 (3GPP TS 24.008 tables 10.5.163a and 10.5.163).
  expect(psm?.periodicTau).toBe('00001100');
  expect(psm?.activeTime).toBe('00001010');
  expect(psm?.periodicTauS).toBe(7200);
  expect(psm?.activeTimeS).toBe(20);
});

test('PSM default timers', async () => {
  const device = await bootUntilPsm('psm-default', {});

  const psm = device.modem.stats().powerSaving.psm;
  expect(psm?.mode).toBe(1);
  expect(psm?.periodicTauS).toBe(14_400);
  expect(psm?.activeTimeS).toBe(10);
});

test('psm_tau_s 0 turns PSM off', async () => {
  const device = await bootUntilPsm('psm-off', { psm_tau_s: 0 });

  expect(device.modem.stats().powerSaving.psm?.mode).toBe(0);
});

// An app whose step requests 30 s of sleep. The launcher must wake for each check-in
// (every 2 s here) and feed the 3 s watchdog while it sleeps.
const SLEEPY_APP = `VERSION = "1.0.0"


def step(led):
    print("app step")
    led.toggle()
    return 30000
`;

test('light sleep between steps feeds watchdog', async () => {
  const files = factoryFiles(rig, 'sleepy', { check_interval_s: 2, watchdog_ms: 3000 });
  files['app_slots/a/app.py'] = SLEEPY_APP;
  const device = createDevice(files);
  devices.push(device);
  const pico = device.pico;
  await pico.boot();

  const checkIns = (): number => pico.serialLines().filter((line) => line.includes('no update offered')).length;
  const result = await pico.runUntil(() => checkIns() >= 3, { timeoutMs: 30_000 });

  expect(result.reason).toBe('matched');
  expect(pico.resets).toBe(0);
  const steps = pico.serialLines().filter((line) => line === 'app step').length;
  // One step after each check-in, then sleep until the next: a busy app would step thousands of times.
  expect(steps).toBeGreaterThanOrEqual(2);
  expect(steps).toBeLessThanOrEqual(checkIns() + 1);
});
