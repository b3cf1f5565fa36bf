// Bad input on the real daemon: each gets its CoAP code (or a Reset, or silence for
// datagrams that are not CoAP), the LevelDB contents stay byte for byte the same,
// and a good check afterwards still gets 2.05.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Encoder } from 'cbor-x';
import type { RunningServer } from '../../src/daemon/server.ts';
import type { ReleaseRecord } from '../../src/storage/store.ts';
import { Code, RawClient, block2, encodeRequest, path_, payloadOf, publish, query, startTestServer, tempDir, uintOption, type RequestSpec } from './helpers.ts';

const cbor = new Encoder({ useRecords: false, useTag259ForMaps: false } as object);
const checkBody = (entries: Array<[number, unknown]>) => cbor.encode(new Map(entries));
const CBOR_FORMAT = uintOption(12, 60);

let temp: Awaited<ReturnType<typeof tempDir>>;
let server: RunningServer;
let client: RawClient;
let release: ReleaseRecord;

beforeAll(async () => {
  temp = await tempDir();
  server = await startTestServer(temp.dir);
  release = await publish(server.store, '2.0.0', payloadOf(3000));
  client = new RawClient(server.coapPort);
  // One good check first, so a device record and events exist that bad input could damage.
  const reply = await client.request(goodCheck());
  expect(reply.code).toBe('2.05');
});

afterAll(async () => {
  client.close();
  await server.close();
  await temp.remove();
});

function goodCheck(): RequestSpec {
  return { code: Code.POST, options: [...path_('c'), CBOR_FORMAT], payload: checkBody([[0, 'pico-001'], [1, '1.0.0']]) };
}

interface Case {
  name: string;
  spec: () => RequestSpec;
  code: string;
  /** Text the diagnostic payload must contain. */
  diagnostic: string;
}

const cases: Case[] = [
  { name: 'unknown critical option', spec: () => ({ ...goodCheck(), options: [...goodCheck().options!, [2051, Buffer.from([1])]] }), code: '4.02', diagnostic: 'critical option 2051' },
  { name: 'payload not CBOR', spec: () => ({ ...goodCheck(), payload: Buffer.from([0xa2, 0x00]) }), code: '4.00', diagnostic: 'not a CBOR item' },
  { name: 'payload not a map', spec: () => ({ ...goodCheck(), payload: cbor.encode(['pico-001', '1.0.0']) }), code: '4.00', diagnostic: 'got an array' },
  { name: 'device id wrong type', spec: () => ({ ...goodCheck(), payload: checkBody([[0, 42], [1, '1.0.0']]) }), code: '4.00', diagnostic: 'key 0 (device id) must be a text string, got the number 42' },
  { name: 'version missing', spec: () => ({ ...goodCheck(), payload: checkBody([[0, 'pico-001']]) }), code: '4.00', diagnostic: 'key 1 (running version) is missing' },
  { name: 'device id too long', spec: () => ({ ...goodCheck(), payload: checkBody([[0, 'p'.repeat(65)], [1, '1.0.0']]) }), code: '4.00', diagnostic: 'device id must be 1..64' },
  { name: 'device id ..', spec: () => ({ ...goodCheck(), payload: checkBody([[0, '..'], [1, '1.0.0']]) }), code: '4.00', diagnostic: 'other than "." and ".."' },
  { name: 'version too long', spec: () => ({ ...goodCheck(), payload: checkBody([[0, 'pico-001'], [1, `1.0.0-${'a'.repeat(27)}`]]) }), code: '4.00', diagnostic: 'at most 32 bytes, got 33 bytes' },
  { name: 'version not semver', spec: () => ({ ...goodCheck(), payload: checkBody([[0, 'pico-001'], [1, '1.0']]) }), code: '4.00', diagnostic: 'semantic version' },
  { name: 'channel invalid', spec: () => ({ ...goodCheck(), payload: checkBody([[0, 'pico-001'], [1, '1.0.0'], [2, 'Beta!']]) }), code: '4.00', diagnostic: 'channel must be' },
  { name: 'Content-Format JSON', spec: () => ({ ...goodCheck(), options: [...path_('c'), uintOption(12, 50)] }), code: '4.15', diagnostic: 'Content-Format must be 60' },
  { name: 'Accept text/plain', spec: () => ({ ...goodCheck(), options: [...goodCheck().options!, uintOption(17, 0)] }), code: '4.06', diagnostic: 'Accept must be 60 or 50, got 0' },
  { name: 'query without d', spec: () => ({ code: Code.GET, options: [...path_('c'), ...query('v=1.0.0')] }), code: '4.00', diagnostic: 'query parameter "d"' },
  { name: 'PUT on /c', spec: () => ({ ...goodCheck(), code: Code.PUT }), code: '4.05', diagnostic: 'accepts GET or POST, got PUT' },
  { name: 'unknown path', spec: () => ({ code: Code.GET, options: path_('x') }), code: '4.04', diagnostic: 'no resource at /x' },
  { name: 'unknown release', spec: () => ({ code: Code.GET, options: path_('d', '000000000000') }), code: '4.04', diagnostic: 'download id 000000000000' },
  { name: 'Block2 NUM past the end', spec: () => ({ code: Code.GET, options: [...path_('d', release.downloadId), block2(3, 6)] }), code: '4.02', diagnostic: 'past the last block 2' },
  { name: 'Block2 SZX 7', spec: () => ({ code: Code.GET, options: [...path_('d', release.downloadId), block2(0, 7)] }), code: '4.00', diagnostic: 'SZX 7 is reserved' },
  { name: 'Block2 of 4 bytes', spec: () => ({ code: Code.GET, options: [...path_('d', release.downloadId), [23, Buffer.alloc(4)]] }), code: '4.02', diagnostic: 'Block2 must be 0..3 bytes' },
  { name: 'Accept JSON on download', spec: () => ({ code: Code.GET, options: [...path_('d', release.downloadId), uintOption(17, 50)] }), code: '4.06', diagnostic: 'Accept must be 42' },
  { name: 'Proxy-Uri', spec: () => ({ ...goodCheck(), options: [...goodCheck().options!, [35, Buffer.from('coap://example.org/c')]] }), code: '5.05', diagnostic: 'not one' },
  {
    name: 'report outcome unknown',
    spec: () => ({ code: Code.POST, options: path_('r'), payload: checkBody([[0, 'pico-001'], [1, '1.0.0'], [2, 9], [3, '2.0.0']]) }),
    code: '4.00',
    diagnostic: 'key 2 (outcome)',
  },
  {
    name: 'report detail too long',
    spec: () => ({ code: Code.POST, options: path_('r'), payload: checkBody([[0, 'pico-001'], [1, '1.0.0'], [2, 0], [3, '2.0.0'], [4, 'x'.repeat(201)]]) }),
    code: '4.00',
    diagnostic: 'at most 200 bytes, got 201',
  },
];

async function expectUnchangedAndServing(before: Array<[string, string]>): Promise<void> {
  expect(await server.store.dumpRaw()).toEqual(before);
}

describe('bad requests', () => {
  for (const testCase of cases) {
    it(`${testCase.name} gets ${testCase.code}`, async () => {
      const before = await server.store.dumpRaw();
      const reply = await client.request(testCase.spec());
      expect(reply.code).toBe(testCase.code);
      expect(reply.payload.toString('utf8')).toContain(testCase.diagnostic);
      await expectUnchangedAndServing(before);
      expect((await client.request(goodCheck())).code).toBe('2.05');
    });
  }
});

describe('malformed datagrams', () => {
  it('3-byte datagram ignored', async () => {
    const before = await server.store.dumpRaw();
    client.send(Buffer.from([0x40, 0x01, 0x00]));
    expect(await client.silent(200)).toBe(true);
    await expectUnchangedAndServing(before);
    expect((await client.request(goodCheck())).code).toBe('2.05');
  });

  it('truncated token gets Reset', async () => {
    const before = await server.store.dumpRaw();
    // CON GET, token length 8 but 2 token bytes present, mid 0x1234.
    client.send(Buffer.from([0x48, 0x01, 0x12, 0x34, 0xaa, 0xbb]));
    const reset = await client.next();
    expect(reset.toString('hex')).toBe('70001234');
    await expectUnchangedAndServing(before);
    expect((await client.request(goodCheck())).code).toBe('2.05');
  });

  it('option past the end gets Reset', async () => {
    const before = await server.store.dumpRaw();
    const good = encodeRequest({ ...goodCheck(), mid: 0x0102 });
    // Cut inside the Content-Format option value: the option header promises one more byte.
    const cut = good.subarray(0, good.indexOf(0xff) - 1);
    client.send(cut);
    const reset = await client.next();
    expect(reset.toString('hex')).toBe('70000102');
    await expectUnchangedAndServing(before);
  });

  it('NON with bad framing ignored', async () => {
    client.send(Buffer.from([0x58, 0x01, 0x00, 0x05]));
    expect(await client.silent(200)).toBe(true);
  });

  it('CoAP ping gets Reset', async () => {
    client.send(Buffer.from([0x40, 0x00, 0xbe, 0xef]));
    expect((await client.next()).toString('hex')).toBe('7000beef');
  });

  it('version 2 ignored', async () => {
    client.send(Buffer.from([0x80, 0x01, 0x00, 0x07]));
    expect(await client.silent(200)).toBe(true);
  });
});
