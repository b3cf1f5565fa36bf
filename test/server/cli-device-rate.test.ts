// --device-rate and --device-burst: defaults, "off", the OTA_* variables, and values
// rejected with a message that names the flag and shows one that works.
import { describe, expect, test } from 'vitest';
import { DEFAULT_DEVICE_RATE } from '../../src/coap/device-limit.ts';
import { UsageError, parseCli } from '../../src/daemon/cli.ts';

async function deviceRateOf(argv: string[], env: Record<string, string> = {}): Promise<unknown> {
  const saved = Object.keys(env).map((name) => [name, process.env[name]] as const);
  Object.assign(process.env, env);
  try {
    return (await parseCli(argv))?.deviceRate;
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

async function usageErrorOf(argv: string[]): Promise<string> {
  try {
    await parseCli(argv);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  return '';
}

describe('device rate options', () => {
  test('default limit', async () => {
    expect(await deviceRateOf([])).toEqual(DEFAULT_DEVICE_RATE);
  });

  test('flags set rate and burst', async () => {
    expect(await deviceRateOf(['--device-rate', '0.5', '--device-burst', '5'])).toEqual({ burst: 5, ratePerMinute: 0.5 });
  });

  test('environment sets rate', async () => {
    expect(await deviceRateOf([], { OTA_DEVICE_RATE: '12', OTA_DEVICE_BURST: '40' })).toEqual({ burst: 40, ratePerMinute: 12 });
  });

  test('off turns limit off', async () => {
    expect(await deviceRateOf(['--device-rate', 'off'])).toBe('off');
  });

  test('invalid values rejected', async () => {
    expect(await usageErrorOf(['--device-rate', '0'])).toBe(
      '--device-rate must not be 0, which would reject every device forever once its burst is spent; example: --device-rate 2, or --device-rate off to turn the limit off',
    );
    for (const value of ['-1', '1e3', 'fast', '', '60001']) {
      expect(await usageErrorOf(['--device-rate', value]), value).toContain(`--device-rate must be a decimal number of requests per minute above 0 and at most 60000, or "off", got "${value}"`);
    }
    for (const value of ['0', '2.5', 'x', '100001']) {
      expect(await usageErrorOf(['--device-burst', value]), value).toBe(`--device-burst must be a whole number of requests 1..100000, got "${value}"; example: --device-burst 30`);
    }
    expect(await usageErrorOf(['--device-rate', '1', '--device-rate', '2'])).toContain('--device-rate was given 2 times');
  });
});
