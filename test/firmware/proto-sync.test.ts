// Keeps firmware/ota_proto.py in step with src/protocol: every constant the device
// uses must have the server's value, and the firmware must not invent keys.
import { beforeAll, describe, expect, test } from 'vitest';
import * as constants from '../../src/protocol/constants.ts';
import { BUNDLE_MAGIC, MAX_NAME_BYTES } from '../../src/protocol/bundle.ts';
import { SIGNATURE_CONTEXT, signedMessage } from '../../src/protocol/manifest.ts';
import { startFirmware, type Interpreter } from './micropython.ts';

type Table = Record<string, number>;

/** deviceId -> DEVICE_ID */
function upperSnake(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter}`).toUpperCase();
}

let mp: Interpreter;
let firmware: Record<string, string | number>;

beforeAll(async () => {
  mp = await startFirmware();
  // bytes become hex so they survive JSON.
  firmware = mp.json(`
import json, binascii, ota_proto
out = {}
for name in dir(ota_proto):
    if not name.startswith("_"):
        value = getattr(ota_proto, name)
        if isinstance(value, bytes):
            value = "hex:" + binascii.hexlify(value).decode()
        if isinstance(value, (int, str)):
            out[name] = value
print(json.dumps(out))
`);
});

const TABLES: Array<[string, Table]> = [
  ['CHECK', constants.CheckKey],
  ['MANIFEST', constants.ManifestKey],
  ['REPORT', constants.ReportKey],
  ['OUTCOME', constants.Outcome],
  ['ENCODING', constants.Encoding],
];

describe('ota_proto.py', () => {
  for (const [prefix, table] of TABLES) {
    test(`${prefix} keys match`, () => {
      const expected = Object.fromEntries(Object.entries(table).map(([key, value]) => [`${prefix}_${upperSnake(key)}`, value]));
      const actual = Object.fromEntries(Object.entries(firmware).filter(([name]) => name.startsWith(`${prefix}_`)));
      expect(actual).toEqual(expected);
    });
  }

  test('scalar constants match', () => {
    const scalars = [
      'PATH_CHECK', 'PATH_DOWNLOAD', 'PATH_REPORT', 'FORMAT_OCTET_STREAM', 'FORMAT_JSON', 'FORMAT_CBOR', 'FORMAT_LINK',
      'MAX_DEVICE_ID_BYTES', 'MAX_VERSION_BYTES', 'MAX_CHANNEL_BYTES', 'MAX_DETAIL_BYTES', 'DEFAULT_CHANNEL',
      'DOWNLOAD_ID_HEX_CHARS', 'ETAG_BYTES', 'IMAGE_MAX_AGE_S',
    ] as const;
    for (const name of scalars) {
      expect(firmware[name], name).toBe(constants[name]);
    }
  });

  test('bundle and signature constants match', () => {
    expect(firmware.BUNDLE_MAGIC).toBe(`hex:${BUNDLE_MAGIC.toString('hex')}`);
    expect(firmware.MAX_NAME_BYTES).toBe(MAX_NAME_BYTES);
    expect(firmware.SIGNATURE_CONTEXT).toBe(`hex:${Buffer.from(SIGNATURE_CONTEXT, 'latin1').toString('hex')}`);
  });

  test('no firmware constant unknown to the server', () => {
    const mirrored = new Set([
      ...TABLES.flatMap(([prefix, table]) => Object.keys(table).map((key) => `${prefix}_${upperSnake(key)}`)),
      ...Object.keys(constants),
      'BUNDLE_MAGIC', 'MAX_NAME_BYTES', 'SIGNATURE_CONTEXT',
    ]);
    const extra = Object.keys(firmware).filter((name) => /^[A-Z][A-Z0-9_]*$/.test(name) && !mirrored.has(name));
    expect(extra).toEqual([]);
  });
});

describe('ota.signed_message', () => {
  test('equals signedMessage() bytes', () => {
    const sha256 = Buffer.alloc(32, 0xa5);
    const expected = signedMessage({ version: '2.10.3-rc.1', size: 70_000, sha256, encoding: constants.Encoding.deflate });
    const actual = mp.run(`
import ota, binascii
print(binascii.hexlify(ota.signed_message("2.10.3-rc.1", 70000, b"\\xa5" * 32, 1)).decode())
`).trim().split('\n').pop();
    expect(actual).toBe(expected.toString('hex'));
  });
});
