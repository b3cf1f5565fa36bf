// firmware/bundle.py on real MicroPython: bundles built with src/protocol/bundle.ts,
// raw and deflated with node:zlib (windowBits 10, as ota-tool does), unpacked into the
// interpreter's filesystem.
import { beforeAll, describe, expect, test } from 'vitest';
import { deflateSync } from 'node:zlib';
import { bundleNameProblem, packBundle, type BundleFile } from '../../src/protocol/bundle.ts';
import { startFirmware, type Interpreter } from './micropython.ts';

let mp: Interpreter;

beforeAll(async () => {
  mp = await startFirmware();
  mp.run('import bundle, os, slots');
});

const FILES: BundleFile[] = [
  { name: 'app.py', data: Buffer.from('def step(led):\n    led.toggle()\n') },
  { name: 'lib/sensor.py', data: Buffer.from('VALUE = 42\n'.repeat(300)) },
  { name: 'lib/deep/table.bin', data: Buffer.from(Array.from({ length: 2000 }, (_, i) => (i * 7) & 0xff)) },
  { name: 'empty.txt', data: Buffer.alloc(0) },
];

function unpackInFirmware(stream: Buffer, deflated: boolean): string {
  mp.fs.writeFile('/ota_staging.bin', stream);
  return mp.run(`
slots.clear("b")
try:
    with open("/ota_staging.bin", "rb") as f:
        print("names", bundle.unpack(f, "/app_slots/b", ${deflated ? 'True' : 'False'}))
except ValueError as err:
    print("ValueError:", err)
`).trim();
}

/** Builds a bundle with one entry, bypassing packBundle's name checks. */
function rawBundle(name: Buffer, data = Buffer.from('x'), tail = Buffer.from([0])): Buffer {
  const size = Buffer.alloc(4);
  size.writeUInt32BE(data.length);
  return Buffer.concat([Buffer.from('PB\x01', 'latin1'), Buffer.from([name.length]), name, size, data, tail]);
}

describe('bundle.unpack', () => {
  for (const deflated of [false, true]) {
    test(`${deflated ? 'deflate' : 'raw'} bundle restores files`, () => {
      const packed = packBundle(FILES);
      const stream = deflated ? deflateSync(packed, { windowBits: 10 }) : packed;
      const out = unpackInFirmware(stream, deflated);
      expect(out).toBe(`names ['app.py', 'lib/sensor.py', 'lib/deep/table.bin', 'empty.txt']`);
      for (const file of FILES) {
        expect(Buffer.from(mp.fs.readFile(`/app_slots/b/${file.name}`)).equals(file.data), file.name).toBe(true);
      }
    });
  }

  test('idle runs once per chunk', () => {
    // 2000 + 3300 + 33 bytes in 512-byte chunks: 4 + 7 + 1 chunks, so the watchdog is fed
    // throughout a large file, not once per file.
    mp.fs.writeFile('/ota_staging.bin', packBundle(FILES));
    const out = mp.run(`
calls = [0]
def count_idle():
    calls[0] += 1
slots.clear("b")
with open("/ota_staging.bin", "rb") as f:
    bundle.unpack(f, "/app_slots/b", False, bytearray(512), count_idle)
print("idle", calls[0])
`).trim();
    expect(out).toBe('idle 12');
  });

  test('allocation independent of size', () => {
    // With the collector off, mem_alloc grows by every byte allocated, garbage
    // included: a 256 KiB payload must cost no more than a 64 KiB one.
    const peaks: number[] = [];
    for (const size of [64 * 1024, 256 * 1024]) {
      const packed = packBundle([{ name: 'app.py', data: Buffer.alloc(size, 0x41) }]);
      mp.fs.writeFile('/ota_staging.bin', deflateSync(packed, { windowBits: 10 }));
      const out = mp.run(`
import gc
slots.clear("b")
buf = bytearray(512)
gc.collect()
gc.disable()
before = gc.mem_alloc()
with open("/ota_staging.bin", "rb") as f:
    bundle.unpack(f, "/app_slots/b", True, buf)
used = gc.mem_alloc() - before
gc.enable()
print(used)
`);
      peaks.push(Number(out.trim()));
    }
    expect(peaks[1]! - peaks[0]!).toBeLessThan(1024);
    // The 1 KiB zlib window plus buffers and file objects; measured about 3 KiB.
    expect(peaks[1]!).toBeLessThan(8 * 1024);
  });

  const BAD_STREAMS: Array<[string, Buffer, string]> = [
    ['bad magic', Buffer.from('PK\x03\x04', 'latin1'), 'not a release bundle'],
    ['truncated header', Buffer.from('PB\x01\x06app.p', 'latin1'), 'truncated'],
    ['truncated data', rawBundle(Buffer.from('app.py'), Buffer.from('12345')).subarray(0, 14), 'truncated'],
    ['missing end marker', rawBundle(Buffer.from('app.py'), Buffer.from('x'), Buffer.alloc(0)), 'truncated'],
    ['bytes after end', rawBundle(Buffer.from('app.py'), Buffer.from('x'), Buffer.from([0, 0x41])), 'after the end marker'],
    ['parent segment', rawBundle(Buffer.from('../main.py')), '".." segments'],
    ['absolute path', rawBundle(Buffer.from('/main.py')), 'relative path'],
    ['duplicate name', Buffer.concat([rawBundle(Buffer.from('a.py'), Buffer.from('1'), Buffer.alloc(0)),
      rawBundle(Buffer.from('a.py')).subarray(3)]), 'appears twice'],
  ];
  for (const [name, stream, reason] of BAD_STREAMS) {
    test(`rejects ${name}`, () => {
      const out = unpackInFirmware(stream, false);
      expect(out).toMatch(/^ValueError:/);
      expect(out).toContain(reason);
    });
  }

  test('rejects corrupt deflate stream', () => {
    const stream = deflateSync(packBundle(FILES), { windowBits: 10 });
    const middle = stream.length >> 1;
    stream[middle] = (stream[middle] ?? 0) ^ 0xff;
    mp.fs.writeFile('/ota_staging.bin', stream);
    const out = mp.run(`
slots.clear("b")
try:
    with open("/ota_staging.bin", "rb") as f:
        bundle.unpack(f, "/app_slots/b", True)
    print("accepted")
except (ValueError, OSError) as err:
    print("rejected", type(err).__name__)
`).trim();
    expect(out).toMatch(/^rejected/);
  });
});

describe('bundle.name_problem', () => {
  // Each name goes through both checks: they must agree on accept or reject.
  const NAMES = [
    'app.py', 'lib/sensor.py', 'a-b_c.D9', '...', 'a/.../b', '.hidden', 'x'.repeat(64),
    '', 'x'.repeat(65), '.', '..', 'a/./b', 'a/../b', '/abs', 'trailing/', 'a//b', 'sp ace.py',
    'back\\slash', 'naïve.py', 'tab\t', 'a:b',
  ];
  for (const name of NAMES) {
    test(`agrees on ${JSON.stringify(name)}`, () => {
      const expected = bundleNameProblem(name) === null ? 'ok' : 'problem';
      const hex = Buffer.from(name, 'utf8').toString('hex');
      const out = mp.run(`print("ok" if bundle.name_problem(bytes.fromhex("${hex}")) is None else "problem")`).trim();
      expect(out).toBe(expected);
    });
  }
});
