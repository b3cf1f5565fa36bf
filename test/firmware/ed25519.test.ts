// Tests of the firmware's pure-Python SHA-512 and Ed25519 verification, run on the
// real MicroPython 1.27 WebAssembly build, with node:crypto as the reference.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

/** The parts of the MicroPython WebAssembly package used here; the package ships no types. */
interface MicroPython {
  runPython(code: string): unknown;
  registerJsModule(name: string, module: object): void;
  globals: { get(name: string): unknown };
  FS: { writeFile(path: string, data: Uint8Array): void; mkdir(path: string): void };
}
interface MicroPythonPackage {
  loadMicroPython(options?: { stdout?: (line: string) => void }): Promise<MicroPython>;
}
// A computed specifier keeps TypeScript from looking for the missing declarations.
const MICROPYTHON_PACKAGE: string = '@micropython/micropython-webassembly-pyscript';
const { loadMicroPython } = (await import(MICROPYTHON_PACKAGE)) as MicroPythonPackage;

const FIRMWARE_DIR = fileURLToPath(new URL('../../firmware/', import.meta.url));

// Field prime and group order of edwards25519 (RFC 8032 section 5.1).
const P = (1n << 255n) - 19n;
const L = (1n << 252n) + 27742317777372353535851937790883648493n;

// PKCS #8 prefix of a raw 32-byte Ed25519 private key (RFC 8410 section 7).
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

type Verify = (publicKeyHex: string, messageHex: string, signatureHex: string) => boolean;
type Digest = (dataHex: string, chunkSizes: string) => string;

let verifyInPython: Verify;
let sha512InPython: Digest;
let runPython: (code: string) => void;
let getGlobal: (name: string) => unknown;

function verify(publicKey: Buffer, message: Buffer, signature: Buffer): boolean {
  return verifyInPython(publicKey.toString('hex'), message.toString('hex'), signature.toString('hex'));
}

function keyPairFromSeed(seed: Buffer) {
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const publicKey = createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).subarray(-32);
  return { privateKey, publicKey };
}

function randomKeyPair() {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey: publicKey.export({ format: 'der', type: 'spki' }).subarray(-32) };
}

function flipBit(data: Buffer, bit: number): Buffer {
  const copy = Buffer.from(data);
  copy[bit >> 3]! ^= 1 << (bit & 7);
  return copy;
}

function littleEndian(value: bigint, bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += 1) out[i] = Number((value >> BigInt(8 * i)) & 0xffn);
  return out;
}

function readLittleEndian(data: Buffer): bigint {
  let value = 0n;
  for (let i = data.length - 1; i >= 0; i -= 1) value = (value << 8n) | BigInt(data[i]!);
  return value;
}

function modPow(base: bigint, exponent: bigint, modulus: bigint): bigint {
  let result = 1n;
  let b = base % modulus;
  for (let e = exponent; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % modulus;
    b = (b * b) % modulus;
  }
  return result;
}

beforeAll(async () => {
  const mp = await loadMicroPython();
  mp.FS.mkdir('/lib');
  for (const name of ['sha512.py', 'ed25519.py']) {
    mp.FS.writeFile(`/lib/${name}`, readFileSync(FIRMWARE_DIR + name));
  }
  mp.runPython(`
import sys
sys.path.append("/lib")
import ed25519, sha512


def check(pk_hex, msg_hex, sig_hex):
    return ed25519.verify(bytes.fromhex(pk_hex), bytes.fromhex(msg_hex), bytes.fromhex(sig_hex))

def digest(data_hex, chunk_sizes):
    data = bytes.fromhex(data_hex)
    h = sha512.sha512()
    offset = 0
    for size in [int(n) for n in chunk_sizes.split(",") if n]:
        h.update(data[offset : offset + size])
        offset += size
    h.update(data[offset:])
    return h.digest().hex()
`);
  runPython = (code) => mp.runPython(code);
  getGlobal = (name) => mp.globals.get(name);
  verifyInPython = mp.globals.get('check') as Verify;
  sha512InPython = mp.globals.get('digest') as Digest;
});

describe('sha512', () => {
  it('matches node:crypto for lengths 0..300', () => {
    const data = randomBytes(300);
    for (let length = 0; length <= 300; length += 1) {
      const chunk = data.subarray(0, length);
      const expected = createHash('sha512').update(chunk).digest('hex');
      expect(sha512InPython(chunk.toString('hex'), ''), `length ${length}`).toBe(expected);
    }
  });

  it('matches node:crypto across several updates', () => {
    const data = randomBytes(700);
    const expected = createHash('sha512').update(data).digest('hex');
    // Chunks that end inside, exactly at and across 128-byte block boundaries.
    expect(sha512InPython(data.toString('hex'), '1,127,128,0,129,255,3')).toBe(expected);
    expect(sha512InPython(data.toString('hex'), '0,0,5')).toBe(expected);
  });

  it('digest leaves the state unchanged', () => {
    runPython('h = sha512.sha512(b"abc")\nfirst = h.digest().hex()\nh.update(b"def")\nsecond = h.digest().hex()');
    expect(getGlobal('first')).toBe(createHash('sha512').update('abc').digest('hex'));
    expect(getGlobal('second')).toBe(createHash('sha512').update('abcdef').digest('hex'));
  });
});

// RFC 8032 section 7.1, tests 1, 2, 3 and "SHA(abc)": secret key, public key,
// message and signature as listed there. TEST 1024 is left out because its
// 1023-byte message is not reproduced here.
const RFC8032_VECTORS = [
  {
    name: 'TEST 1',
    secretKey: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    message: '',
    signature:
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    name: 'TEST 2',
    secretKey: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    publicKey: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    message: '72',
    signature:
      '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
  {
    name: 'TEST 3',
    secretKey: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    publicKey: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    message: 'af82',
    signature:
      '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  },
  {
    name: 'TEST SHA(abc)',
    secretKey: '833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42',
    publicKey: 'ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf',
    message: createHash('sha512').update('abc').digest('hex'),
    signature:
      'dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704',
  },
];

describe('ed25519.verify', () => {
  for (const vector of RFC8032_VECTORS) {
    it(`accepts RFC 8032 ${vector.name}`, () => {
      const { privateKey, publicKey } = keyPairFromSeed(Buffer.from(vector.secretKey, 'hex'));
      const message = Buffer.from(vector.message, 'hex');
      expect(publicKey.toString('hex')).toBe(vector.publicKey);
      expect(sign(null, message, privateKey).toString('hex')).toBe(vector.signature);
      expect(verify(publicKey, message, Buffer.from(vector.signature, 'hex'))).toBe(true);
    });
  }

  it('accepts node:crypto signatures', () => {
    for (let i = 0; i < 12; i += 1) {
      const { privateKey, publicKey } = randomKeyPair();
      const message = randomBytes(i * 17);
      expect(verify(publicKey, message, sign(null, message, privateKey)), `message of ${message.length} bytes`).toBe(true);
    }
  });

  it('rejects flipped bits', () => {
    const { privateKey, publicKey } = randomKeyPair();
    const message = randomBytes(63);
    const signature = sign(null, message, privateKey);
    // Bits 0..255 are R, 256..511 are S. Bit 511 is the top bit of S.
    for (const bit of [0, 7, 100, 254, 255]) {
      expect(verify(publicKey, message, flipBit(signature, bit)), `R bit ${bit}`).toBe(false);
    }
    for (const bit of [256, 300, 400, 500, 507]) {
      expect(verify(publicKey, message, flipBit(signature, bit)), `S bit ${bit}`).toBe(false);
    }
    for (const bit of [0, 9, 250, 503]) {
      expect(verify(publicKey, flipBit(message, bit), signature), `message bit ${bit}`).toBe(false);
    }
    for (const bit of [0, 13, 128, 254, 255]) {
      expect(verify(flipBit(publicKey, bit), message, signature), `key bit ${bit}`).toBe(false);
    }
    expect(verify(publicKey, message, signature)).toBe(true);
  });

  it('rejects S at or above L', () => {
    const { privateKey, publicKey } = randomKeyPair();
    const message = Buffer.from('pico-ota manifest v1\0');
    const signature = sign(null, message, privateKey);
    const r = signature.subarray(0, 32);
    const s = readLittleEndian(signature.subarray(32));
    // S + L passes the group equation, so only the S < L check rejects it.
    for (const tooLarge of [s + L, L, (1n << 256n) - 1n]) {
      const forged = Buffer.concat([r, littleEndian(tooLarge, 32)]);
      expect(verify(publicKey, message, forged), `S = ${tooLarge}`).toBe(false);
    }
  });

  it('rejects wrong lengths and types', () => {
    const { privateKey, publicKey } = randomKeyPair();
    const message = randomBytes(40);
    const signature = sign(null, message, privateKey);
    expect(verify(publicKey.subarray(0, 31), message, signature)).toBe(false);
    expect(verify(Buffer.concat([publicKey, Buffer.alloc(1)]), message, signature)).toBe(false);
    expect(verify(publicKey, message, signature.subarray(0, 63))).toBe(false);
    expect(verify(publicKey, message, Buffer.concat([signature, Buffer.alloc(1)]))).toBe(false);
    expect(verify(Buffer.alloc(0), message, Buffer.alloc(0))).toBe(false);
    runPython('none_key = ed25519.verify(None, b"", bytes(64))\nstr_args = ed25519.verify("a" * 32, b"", "b" * 64)');
    expect(getGlobal('none_key')).toBe(false);
    expect(getGlobal('str_args')).toBe(false);
  });

  it('rejects keys that do not decode', () => {
    const { privateKey } = randomKeyPair();
    const message = randomBytes(10);
    const signature = sign(null, message, privateKey);
    // y = p and y = 2**255 - 1 are non-canonical (y >= p, RFC 8032 section 5.1.3 step 1).
    expect(verify(littleEndian(P, 32), message, signature)).toBe(false);
    expect(verify(littleEndian((1n << 255n) - 1n, 32), message, signature)).toBe(false);
    // y = 1 gives x = 0, so the sign bit must be clear (step 4).
    expect(verify(littleEndian(1n | (1n << 255n), 32), message, signature)).toBe(false);
    // The first y >= 2 for which x**2 = (y**2 - 1) / (d * y**2 + 1) has no root:
    // Euler's criterion, (u / v) ** ((p - 1) / 2) = p - 1 for a non-square.
    const d = (P - ((121665n * modPow(121666n, P - 2n, P)) % P)) % P;
    let y = 2n;
    for (;;) {
      const u = (y * y - 1n) % P;
      const v = (d * y * y + 1n) % P;
      if (modPow((u * modPow(v, P - 2n, P)) % P, (P - 1n) / 2n, P) === P - 1n) break;
      y += 1n;
    }
    expect(verify(littleEndian(y, 32), message, signature), `y = ${y}`).toBe(false);
  });

  it('base-point table matches B', () => {
    runPython(`
P = ed25519._P
computed = ed25519._cached_multiples(ed25519._BX, ed25519._BY, 1, ed25519._BX * ed25519._BY % P, 8)
table_ok = []
for (yp, ym, z2, t2d), (cyp, cym, cz2, ct2d) in zip(ed25519._B_MULTIPLES, computed):
    # Same point when each coordinate times the other table's 2Z agrees.
    table_ok.append(yp * cz2 % P == cyp * z2 % P and ym * cz2 % P == cym * z2 % P and t2d * cz2 % P == ct2d * z2 % P)
table_ok = all(table_ok) and len(ed25519._B_MULTIPLES) == 8
`);
    expect(getGlobal('table_ok')).toBe(true);
  });
});
