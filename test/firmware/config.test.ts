// firmware/config.py on real MicroPython: defaults and validation of /ota_config.json.
import { beforeEach, describe, expect, test } from 'vitest';
import { startFirmware, type Interpreter } from './micropython.ts';
import { FAKE_MACHINE } from './fakes.ts';

let mp: Interpreter;

beforeEach(async () => {
  mp = await startFirmware({ '/machine.py': FAKE_MACHINE });
  mp.run('import json');
});

describe('config.load', () => {
  const INVALID: Array<[string, unknown, string]> = [
    ['device_id', 'pico 1', "'device_id' must be 1..64 bytes"],
    ['device_id', 'x'.repeat(65), "'device_id' must be 1..64 bytes"],
    ['device_id', '..', "'device_id' must not be '..'"],
    ['channel', 'Beta', "'channel' must be 1..32 bytes of lower-case"],
    ['public_key', 'abcd', 'public_key must be 64 hex characters'],
    ['block_size', 8, 'block_size must be 16..1024'],
    ['trial_boots', 0, 'trial_boots must be at least 1'],
    ['watchdog_ms', 9000, 'at most 8388'],
    ['port', '5683', "'port' must be a non-negative integer"],
    ['led_pin', 30, 'led_pin must be a GPIO number 0..29 or "LED" (Pico W), got 30'],
    ['led_pin', 'led', "led_pin must be a GPIO number 0..29 or \"LED\" (Pico W), got 'led'"],
  ];
  for (const [key, value, reason] of INVALID) {
    test(`rejects ${key} ${JSON.stringify(value).slice(0, 12)}`, () => {
      mp.fs.writeFile('/ota_config.json', JSON.stringify({ device_id: 'pico-test-2', [key]: value }));
      const out = mp.run(`
import config
try:
    config.load()
    print("accepted")
except config.ConfigError as err:
    print("ConfigError:", err)
`);
      expect(out).toContain('ConfigError:');
      expect(out).toContain(reason);
    });
  }

  test('defaults fill missing keys', () => {
    mp.fs.writeFile('/ota_config.json', '{"server": "ota.example.net"}');
    const out = mp.json<Record<string, unknown>>(`
import config
c = config.load()
print(json.dumps({k: c[k] for k in ("device_id", "server", "port", "channel", "block_size", "ack_timeout_ms", "max_retransmit", "trial_boots")}))
`);
    expect(out).toEqual({
      device_id: 'pico-e661385203445a2d',
      server: 'ota.example.net',
      port: 5683,
      channel: 'stable',
      block_size: 512,
      ack_timeout_ms: 12000,
      max_retransmit: 4,
      trial_boots: 3,
    });
  });
});
