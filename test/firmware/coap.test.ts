// firmware/coap.py on real MicroPython: hand-built RFC 7252 / RFC 7959 vectors and a
// cross-check against coap-packet, the parser under node-coap.
import { beforeAll, describe, expect, test } from 'vitest';
import { generate, parse } from 'coap-packet';
import { startFirmware, type Interpreter } from './micropython.ts';

let mp: Interpreter;

beforeAll(async () => {
  mp = await startFirmware();
  mp.run('import coap, binascii, json');
});

function firmwareEncode(args: string): string {
  return mp.run(`print(binascii.hexlify(coap.encode(${args})).decode())`).trim();
}

interface Decoded {
  mtype: number;
  code: number;
  mid: number;
  token: string;
  options: Array<[number, string]>;
  payload: string;
}

function firmwareDecode(hex: string): Decoded {
  return mp.json<Decoded>(`
m = coap.decode(bytes.fromhex("${hex}"))
h = lambda b: binascii.hexlify(bytes(b)).decode()
print(json.dumps({"mtype": m.mtype, "code": m.code, "mid": m.mid, "token": h(m.token),
                  "options": [[n, h(v)] for n, v in m.options], "payload": h(m.payload)}))
`);
}

// CON GET, mid 0x1234, token ab, Uri-Path "d" / "abc", Block2 NUM 5 M 0 SZX 6:
//   41        ver 1, type CON (0), TKL 1
//   01        code 0.01 GET
//   1234      message id
//   ab        token
//   b1 64     option delta 11 (Uri-Path), length 1, "d"
//   03 616263 delta 0 (Uri-Path again), length 3, "abc"
//   c1 56     delta 12 (11 + 12 = 23, Block2), length 1, 5 << 4 | 0 << 3 | 6
const BLOCK_GET = '41011234abb16403616263c156';

describe('coap.encode', () => {
  test('block GET vector', () => {
    expect(firmwareEncode('coap.TYPE_CON, coap.GET, 0x1234, b"\\xab", [(11, b"d"), (11, b"abc"), (23, b"\\x56")]')).toBe(BLOCK_GET);
  });

  test('extended delta nibble 13', () => {
    // Size2 (28) after ETag (4): delta 24 is 13 + 11, so nibble 13 with extended byte 0b;
    //   62 45 0001 cafe   ACK 2.05 mid 1 token cafe
    //   41 aa             delta 4 ETag, length 1
    //   d2 0b 012c        delta 13+11 = 24 -> option 28, length 2, 300
    //   ff 6869           payload marker, "hi"
    const hex = firmwareEncode('coap.TYPE_ACK, coap.CONTENT, 1, b"\\xca\\xfe", [(4, b"\\xaa"), (28, coap.encode_uint(300))], b"hi"');
    expect(hex).toBe('62450001cafe41aad20b012cff6869');
  });

  test('extended delta nibble 14', () => {
    // Option 300 from 0: delta 300 = 269 + 31, nibble 14 with extended bytes 001f, length 0.
    expect(firmwareEncode('coap.TYPE_NON, coap.GET, 2, b"", [(300, b"")]')).toBe('50010002e0001f');
  });

  test('extended length nibbles 13 and 14', () => {
    // Uri-Path of 20 bytes: length 20 = 13 + 7 -> b d 07; Uri-Query of 300 bytes:
    // delta 4, length 300 = 269 + 31 -> 4e 001f.
    const hex = firmwareEncode('coap.TYPE_CON, coap.GET, 3, b"", [(11, b"x" * 20), (15, b"y" * 300)]');
    expect(hex).toBe(`40010003bd07${'78'.repeat(20)}4e001f${'79'.repeat(300)}`);
  });

  test('unsorted options raise', () => {
    const out = mp.run(`
try:
    coap.encode(0, 1, 1, b"", [(23, b""), (11, b"d")])
except ValueError as err:
    print("ValueError:", err)
`);
    expect(out).toContain('pass options sorted by number');
  });

  test('token over 8 bytes raises', () => {
    const out = mp.run(`
try:
    coap.encode(0, 1, 1, b"123456789")
except ValueError as err:
    print("ValueError:", err)
`);
    expect(out).toContain('at most 8');
  });
});

describe('coap.decode', () => {
  test('block GET vector', () => {
    expect(firmwareDecode(BLOCK_GET)).toEqual({
      mtype: 0,
      code: 1,
      mid: 0x1234,
      token: 'ab',
      options: [[11, '64'], [11, '616263'], [23, '56']],
      payload: '',
    });
  });

  test('extended deltas and payload', () => {
    expect(firmwareDecode('62450001cafe41aad20b012cff6869')).toEqual({
      mtype: 2,
      code: 69,
      mid: 1,
      token: 'cafe',
      options: [[4, 'aa'], [28, '012c']],
      payload: '6869',
    });
  });

  test('empty ACK', () => {
    expect(firmwareDecode('60001234')).toMatchObject({ mtype: 2, code: 0, mid: 0x1234, token: '' });
  });

  // Format errors of RFC 7252 section 3, built by hand.
  const MALFORMED: Array<[string, string, string]> = [
    ['three-byte datagram', '400100', 'header alone'],
    ['version 2', '80010001', 'version 2'],
    ['token length 9', '49010001' + '00'.repeat(9), 'reserved'],
    ['token longer than datagram', '440100010102', 'truncated in its 4-byte token'],
    ['empty message with a token', '61000001aa', 'empty CoAP message'],
    ['payload marker without payload', '40450001ff', 'payload marker without a payload'],
    ['delta nibble 15 not marker', '40450001f1', 'nibble 15'],
    ['length nibble 15', '404500011f', 'nibble 15'],
    ['option value past end', '40450001b3aa', 'announces 3 bytes'],
    ['truncated extended delta', '40450001d0', 'truncated in its extended'],
  ];
  for (const [name, hex, reason] of MALFORMED) {
    test(`rejects ${name}`, () => {
      const out = mp.run(`
try:
    coap.decode(bytes.fromhex("${hex}"))
    print("accepted")
except ValueError as err:
    print("ValueError:", err)
`);
      expect(out).toMatch(/^ValueError:/);
      expect(out).toContain(reason);
    });
  }
});

describe('coap Block2 values', () => {
  test('block_value packs NUM, M, SZX', () => {
    // RFC 7959 section 2.2: value = NUM << 4 | M << 3 | SZX.
    expect(mp.run('print(coap.block_value(5, False, 6), coap.block_value(0, True, 2), coap.block_value(1048575, True, 0))').trim())
      .toBe(`${(5 << 4) | 6} ${8 | 2} ${(1048575 << 4) | 8}`);
  });

  test('parse_block unpacks NUM, M, SZX', () => {
    expect(mp.run('print(coap.parse_block(0x56), coap.parse_block(0x1e))').trim()).toBe('(5, False, 6) (1, True, 6)');
  });

  test('SZX 7 is rejected', () => {
    const out = mp.run(`
for call in (lambda: coap.parse_block(0x17), lambda: coap.block_value(1, False, 7)):
    try:
        call()
        print("accepted")
    except ValueError as err:
        print("ValueError:", err)
`);
    expect(out.trim().split('\n')).toEqual([
      'ValueError: SZX 7 is reserved (RFC 7959 section 2.2)',
      'ValueError: SZX 7 outside 0..6 (7 is reserved)',
    ]);
  });

  test('szx_for picks the largest fitting size', () => {
    expect(mp.run('print([coap.szx_for(n) for n in (16, 31, 32, 100, 512, 1000, 1024, 4096)], coap.block_size(6))').trim())
      .toBe('[0, 0, 1, 2, 5, 5, 6, 6] 1024');
  });

  test('encode_uint uses minimal bytes', () => {
    // RFC 7252 section 3.2: 0 is the empty string, no leading zero bytes.
    expect(mp.run('print([binascii.hexlify(coap.encode_uint(n)).decode() for n in (0, 1, 255, 256, 70000, 31536000)])').trim())
      .toBe("['', '01', 'ff', '0100', '011170', '01e13380']");
  });
});

describe('coap cross-check with coap-packet', () => {
  test('coap-packet parses firmware output', () => {
    const hex = firmwareEncode('coap.TYPE_CON, coap.POST, 0xbeef, b"\\x01\\x02\\x03\\x04", [(11, b"c"), (12, coap.encode_uint(60))], b"\\xa0"');
    const packet = parse(Buffer.from(hex, 'hex'));
    expect(packet.code).toBe('0.02');
    expect(packet.confirmable).toBe(true);
    expect(packet.messageId).toBe(0xbeef);
    expect(packet.token.toString('hex')).toBe('01020304');
    expect(packet.options.map((option) => [option.name, option.value.toString('hex')])).toEqual([
      ['Uri-Path', '63'],
      ['Content-Format', '3c'],
    ]);
    expect(packet.payload.toString('hex')).toBe('a0');
  });

  test('firmware parses coap-packet output', () => {
    const payload = Buffer.alloc(512, 0x5a);
    const packet = generate({
      code: '2.05',
      ack: true,
      messageId: 4242,
      token: Buffer.from('0badcafe', 'hex'),
      options: [
        { name: 'ETag', value: Buffer.from('0102030405060708', 'hex') },
        { name: 'Content-Format', value: Buffer.from([42]) },
        { name: 'Max-Age', value: Buffer.from('01e13380', 'hex') },
        { name: 'Block2', value: Buffer.from([0x3d]) },
        { name: 'Size2', value: Buffer.from('011170', 'hex') },
      ],
      payload,
    });
    expect(firmwareDecode(packet.toString('hex'))).toEqual({
      mtype: 2,
      code: 69,
      mid: 4242,
      token: '0badcafe',
      options: [[4, '0102030405060708'], [12, '2a'], [14, '01e13380'], [23, '3d'], [28, '011170']],
      payload: payload.toString('hex'),
    });
  });
});
