// firmware/psm.py on real MicroPython: AT+CPSMS timer bits per 3GPP TS 24.008 tables
// 10.5.163a (T3412 extended, GPRS Timer 3) and 10.5.163 (T3324, GPRS Timer 2).
import { beforeAll, describe, expect, test } from 'vitest';
import { decodeActiveTimeS, decodePeriodicTauS } from '../../tools/sim7020/stats.ts';
import { startFirmware, type Interpreter } from './micropython.ts';

let mp: Interpreter;

beforeAll(async () => {
  mp = await startFirmware();
  mp.run('import psm');
});

function call(expression: string): string {
  return mp.run(`print(${expression})`).trim();
}

// Expected bits worked out by hand: unit code (bits 8..6) then multiplier (bits 5..1),
// with the finest unit whose multiplier fits in 0..31, rounding up.
const tauCases: Array<[number, string]> = [
  [0, '01100000'], // 2 s unit x 0
  [60, '01111110'], // 2 s x 30
  [90, '10000011'], // 30 s x 3
  [7200, '00001100'], // 10 min x 12
  [14400, '00011000'], // 10 min x 24
  [86400, '00111000'], // 1 h x 24
  [3_600_000, '11000100'], // 320 h x 4 (3.125 rounds up)
];

const activeCases: Array<[number, string]> = [
  [10, '00000101'], // 2 s x 5
  [11, '00000110'], // rounds up to 12 s
  [62, '00011111'], // 2 s x 31
  [64, '00100010'], // 1 min x 2
  [3600, '01001010'], // 6 min x 10
];

describe('psm.encode_tau', () => {
  test.each(tauCases)('%i s gives %s', (seconds, bits) => {
    expect(call(`psm.encode_tau(${seconds})`)).toBe(bits);
  });

  test('never shorter than requested', () => {
    for (const seconds of [1, 63, 1000, 7201, 100_000, 1_000_000]) {
      const bits = call(`psm.encode_tau(${seconds})`);
      expect(decodePeriodicTauS(bits), `${seconds} s`).toBeGreaterThanOrEqual(seconds);
    }
  });

  test('rejects beyond 320 h x 31', () => {
    expect(mp.run(`
try:
    psm.encode_tau(35712001)
except ValueError as err:
    print(err)
`).trim()).toBe('psm_tau_s 35712001 s exceeds the longest timer of 35712000 s');
  });
});

describe('psm.encode_active', () => {
  test.each(activeCases)('%i s gives %s', (seconds, bits) => {
    expect(call(`psm.encode_active(${seconds})`)).toBe(bits);
    expect(decodeActiveTimeS(bits)).toBeGreaterThanOrEqual(seconds);
  });

  test('decode round trip', () => {
    expect(call('psm.decode(psm.encode_active(600), False)')).toBe('600');
    expect(call('psm.decode(psm.encode_tau(7200), True)')).toBe('7200');
    expect(call('psm.decode(psm.DEACTIVATED, True)')).toBe('None');
  });
});
