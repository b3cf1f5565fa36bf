// firmware/cbor.py on real MicroPython, against RFC 8949 Appendix A vectors and cbor-x.
import { beforeAll, describe, expect, test } from 'vitest';
import { Decoder, Encoder } from 'cbor-x';
import { startFirmware, type Interpreter } from './micropython.ts';

let mp: Interpreter;

beforeAll(async () => {
  mp = await startFirmware();
  mp.run('import cbor, binascii, json');
});

function encodeInFirmware(pythonValue: string): string {
  return mp.run(`print(binascii.hexlify(cbor.encode(${pythonValue})).decode())`).trim();
}

function decodeInFirmware(hex: string): string {
  return mp.run(`print(repr(cbor.decode(bytes.fromhex("${hex}"))))`).trim();
}

function decodeErrorInFirmware(hex: string): string {
  return mp.run(`
try:
    cbor.decode(bytes.fromhex("${hex}"))
    print("accepted")
except ValueError as err:
    print("ValueError:", err)
`).trim();
}

// [Python value, hex]: from RFC 8949 Appendix A (Examples of Encoded CBOR Data Items).
const RFC_VECTORS: Array<[string, string]> = [
  ['0', '00'],
  ['23', '17'],
  ['24', '1818'],
  ['100', '1864'],
  ['1000', '1903e8'],
  ['1000000', '1a000f4240'],
  ['1000000000000', '1b000000e8d4a51000'],
  ['18446744073709551615', '1bffffffffffffffff'],
  ['-1', '20'],
  ['-100', '3863'],
  ['-1000', '3903e7'],
  ['-18446744073709551616', '3bffffffffffffffff'],
  ['b""', '40'],
  ['b"\\x01\\x02\\x03\\x04"', '4401020304'],
  ['""', '60'],
  ['"a"', '6161'],
  ['"IETF"', '6449455446'],
  ['"\\u00fc"', '62c3bc'],
  ['[]', '80'],
  ['[1, 2, 3]', '83010203'],
  ['[1, [2, 3], [4, 5]]', '8301820203820405'],
  ['{}', 'a0'],
  ['{1: 2, 3: 4}', 'a201020304'],
  ['False', 'f4'],
  ['True', 'f5'],
  ['None', 'f6'],
];

describe('cbor.encode', () => {
  for (const [value, hex] of RFC_VECTORS) {
    test(`RFC 8949 vector ${hex}`, () => {
      expect(encodeInFirmware(value)).toBe(hex);
    });
  }

  test('text-keyed map keeps order', () => {
    // RFC 8949 Appendix A: {"a": 1, "b": [2, 3]}
    expect(encodeInFirmware('{"a": 1, "b": [2, 3]}')).toBe('a26161016162820203');
  });

  test('unsupported type raises', () => {
    const out = mp.run(`
try:
    cbor.encode(1.5)
except ValueError as err:
    print("ValueError:", err)
`);
    expect(out).toContain('ValueError: cannot encode');
  });
});

describe('cbor.decode', () => {
  for (const [value, hex] of RFC_VECTORS) {
    test(`RFC 8949 vector ${hex}`, () => {
      const expected = mp.run(`print(repr(${value}))`).trim();
      expect(decodeInFirmware(hex)).toBe(expected);
    });
  }

  // Malformed or unsupported items, built by hand from RFC 8949 section 3.
  const REJECTED: Array<[string, string, string]> = [
    ['truncated uint16', '1903', 'truncated'],
    ['truncated text', '64494554', 'truncated'],
    ['reserved additional info 28', '1c', 'reserved'],
    ['indefinite byte string', '5f41014102ff', 'indefinite'],
    ['indefinite array', '9f01ff', 'indefinite'],
    ['indefinite map', 'bf0101ff', 'indefinite'],
    ['half float 0.0', 'f90000', 'not supported'],
    ['tag 0 date', 'c074323031332d30332d32315432303a30343a30305a', 'tag'],
    ['trailing bytes', '0000', 'follow'],
    ['invalid UTF-8 text', '62c328', 'UTF-8'],
    ['byte string map key', 'a14001', 'neither an integer nor text'],
    ['array count beyond input', '9affffffff', 'announces'],
    ['nesting deeper than 8', '818181818181818181818100', 'nested deeper'],
    ['empty input', '', 'truncated'],
  ];
  for (const [name, hex, reason] of REJECTED) {
    test(`rejects ${name}`, () => {
      const out = decodeErrorInFirmware(hex);
      expect(out).toMatch(/^ValueError:/);
      expect(out).toContain(reason);
    });
  }
});

describe('cbor cross-check with cbor-x', () => {
  const manifest = new Map<number, unknown>([
    [0, '2.0.0'],
    [1, 'd/3f2a9c01b7e4'],
    [2, 70_123],
    [3, Buffer.alloc(32, 0x11)],
    [4, Buffer.alloc(64, 0x22)],
    [5, 1],
    [6, 512],
  ]);

  test('decodes a cbor-x manifest', () => {
    const hex = Buffer.from(new Encoder().encode(manifest)).toString('hex');
    const out = mp.json<Record<string, unknown>>(`
m = cbor.decode(bytes.fromhex("${hex}"))
print(json.dumps({str(k): (binascii.hexlify(v).decode() if isinstance(v, bytes) else v) for k, v in m.items()}))
`);
    expect(out).toEqual({
      '0': '2.0.0',
      '1': 'd/3f2a9c01b7e4',
      '2': 70_123,
      '3': '11'.repeat(32),
      '4': '22'.repeat(64),
      '5': 1,
      '6': 512,
    });
  });

  test('cbor-x reads a firmware check request', () => {
    const hex = encodeInFirmware('{0: "pico-001", 1: "1.0.0", 2: "beta", 3: [-5, b"\\x00\\xff", None, True]}');
    const decoded = new Decoder({ mapsAsObjects: false }).decode(Buffer.from(hex, 'hex')) as Map<number, unknown>;
    expect(decoded.get(0)).toBe('pico-001');
    expect(decoded.get(1)).toBe('1.0.0');
    expect(decoded.get(2)).toBe('beta');
    const list = decoded.get(3) as unknown[];
    expect(list[0]).toBe(-5);
    expect(Buffer.from(list[1] as Uint8Array).toString('hex')).toBe('00ff');
    expect(list[2]).toBeNull();
    expect(list[3]).toBe(true);
  });

  test('encodings equal cbor-x for protocol values', () => {
    // cbor-x picks the shortest head too (RFC 8949 section 4.2.1 preferred serialization).
    const cases: Array<[string, unknown]> = [
      ['255', 255],
      ['256', 256],
      ['65536', 65_536],
      ['-25', -25],
      ['"stable"', 'stable'],
    ];
    for (const [python, js] of cases) {
      expect(encodeInFirmware(python), python).toBe(Buffer.from(new Encoder().encode(js)).toString('hex'));
    }
  });
});
