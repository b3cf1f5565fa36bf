// firmware/ota.py on real MicroPython against an in-Python CoAP server reached through
// the Updater's transport hook: check, Block2 download, resume, verification, install,
// reports. The daemon and the modem simulator are covered by the end-to-end suites.
import { createHash } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import { beforeEach, describe, expect, test } from 'vitest';
import { packBundle } from '../../src/protocol/bundle.ts';
import { signedMessage } from '../../src/protocol/manifest.ts';
import { startFirmware, type Interpreter } from './micropython.ts';
import { FAKE_MACHINE } from './fakes.ts';

// Stand-in for ed25519.py: a "signature" is SHA-256(public key | message) twice, so
// the test still proves that the firmware verifies over the exact signedMessage() bytes.
const FAKE_ED25519 = `
import hashlib
def verify(public_key, message, signature):
    digest = hashlib.sha256(public_key + message).digest()
    return signature == digest + digest
`;

const PUBLIC_KEY = Buffer.alloc(32, 0x4b);

const FAKE_SERVER = `
import cbor, coap, time

class FakeServer:
    def __init__(self, image, manifest):
        self.image = image
        self.manifest = manifest
        self.etag = manifest[3][:8]
        self.offer = True
        self.inbox = []
        self.blocks = []
        self.reports = []
        self.checks = []
        self.drop = lambda kind, num: False

    def send(self, pdu):
        request = coap.decode(bytes(pdu))
        if request.mtype != coap.TYPE_CON:
            return
        path = "/".join(bytes(v).decode() for n, v in request.options if n == coap.OPT_URI_PATH)
        options = []
        if path == "c":
            self.checks.append(cbor.decode(request.payload))
            code, payload = coap.CONTENT, cbor.encode(self.manifest if self.offer else {})
        elif path.startswith("d/"):
            num, _, szx = coap.parse_block(request.uint_option(coap.OPT_BLOCK2))
            self.blocks.append(num)
            if self.drop("block", num):
                return
            size = 16 << szx
            more = (num + 1) * size < len(self.image)
            options = [(coap.OPT_ETAG, self.etag), (coap.OPT_BLOCK2, coap.encode_uint(coap.block_value(num, more, szx)))]
            if request.option(coap.OPT_SIZE2) is not None:
                options.append((coap.OPT_SIZE2, coap.encode_uint(len(self.image))))
            code, payload = coap.CONTENT, self.image[num * size:(num + 1) * size]
        elif path == "r":
            if self.drop("report", 0):
                return
            self.reports.append(cbor.decode(request.payload))
            code, payload = coap.CHANGED, None
        else:
            code, payload = coap.NOT_FOUND, None
        self.inbox.append(coap.encode(coap.TYPE_ACK, code, request.mid, request.token, options, payload))

    def receive(self, timeout_ms):
        if self.inbox:
            return self.inbox.pop(0)
        time.sleep_ms(min(timeout_ms, 5))
        return None
`;

interface Release {
  version: string;
  image: Buffer;
  sha256: Buffer;
  signature: Buffer;
  encoding: number;
}

function makeRelease(version: string, appSource: string, options: { deflate?: boolean; lie?: Buffer } = {}): Release {
  const bundle = packBundle([
    { name: 'app.py', data: Buffer.from(appSource) },
    { name: 'lib/data.bin', data: Buffer.alloc(3000, 0x61) },
  ]);
  const image = options.deflate ? deflateSync(bundle, { windowBits: 10 }) : bundle;
  const sha256 = options.lie ?? createHash('sha256').update(image).digest();
  const encoding = options.deflate ? 1 : 0;
  const message = signedMessage({ version, size: image.length, sha256, encoding });
  const digest = createHash('sha256').update(Buffer.concat([PUBLIC_KEY, message])).digest();
  return { version, image, sha256, signature: Buffer.concat([digest, digest]), encoding };
}

let mp: Interpreter;

function serve(release: Release, signature = release.signature): void {
  mp.fs.writeFile('/image.bin', release.image);
  mp.run(`
server = FakeServer(open("/image.bin", "rb").read(), {
    0: "${release.version}", 1: "d/${release.sha256.toString('hex').slice(0, 12)}", 2: ${release.image.length},
    3: bytes.fromhex("${release.sha256.toString('hex')}"), 4: bytes.fromhex("${signature.toString('hex')}"),
    5: ${release.encoding}, 6: 256})
`);
}

interface Outcome {
  reset: boolean;
  state: { active: string; versions: Record<string, string | null>; trial: boolean; rejected: string[] };
  reports: Array<Record<string, unknown>>;
  blocks: number[];
  staged: boolean;
  pending: unknown[];
}

/** Runs one check-in with a fresh Updater, as after a reboot, and returns what it left behind. */
function checkIn(): Outcome {
  return mp.json<Outcome>(`
server.blocks = []
updater = ota.Updater(config.load(), reset=machine.reset, transport_factory=lambda: server)
reset = False
try:
    updater.check_in(slots.load())
except machine.ResetCalled:
    reset = True
print(json.dumps({"reset": reset, "state": slots.load(), "blocks": server.blocks, "pending": reports.pending(),
                  "reports": [{str(k): v for k, v in r.items()} for r in server.reports],
                  "staged": "ota_staging.bin" in os.listdir("/")}))
`);
}

beforeEach(async () => {
  mp = await startFirmware({ '/machine.py': FAKE_MACHINE, '/ed25519.py': FAKE_ED25519, '/fake_server.py': FAKE_SERVER });
  mp.fs.writeFile('/ota_config.json', JSON.stringify({
    device_id: 'pico-test-1',
    public_key: PUBLIC_KEY.toString('hex'),
    ack_timeout_ms: 20,
    max_retransmit: 1,
    block_size: 256,
  }));
  mp.run(`
import json, os, machine, config, ota, reports, slots
from fake_server import FakeServer
slots.clear("a")
with open("/app_slots/a/app.py", "w") as f:
    f.write("def step(led): pass\\n")
`);
});

describe('Updater.check_in', () => {
  test('installs release into slot b', () => {
    const release = makeRelease('2.0.0', 'FAST = True\n');
    serve(release);
    const out = checkIn();
    expect(out.reset).toBe(true);
    expect(out.state).toMatchObject({ active: 'b', versions: { a: '1.0.0', b: '2.0.0' }, trial: true });
    expect(out.blocks).toEqual([...Array(Math.ceil(release.image.length / 256)).keys()]);
    expect(out.staged).toBe(false);
    expect(out.reports).toEqual([{ '0': 'pico-test-1', '1': '2.0.0', '2': 0, '3': '2.0.0' }]);
    expect(Buffer.from(mp.fs.readFile('/app_slots/b/app.py')).toString()).toBe('FAST = True\n');
    expect(Buffer.from(mp.fs.readFile('/app_slots/b/lib/data.bin')).equals(Buffer.alloc(3000, 0x61))).toBe(true);
  });

  test('installs deflate release', () => {
    serve(makeRelease('3.0.0', 'PULSE = True\n', { deflate: true }));
    const out = checkIn();
    expect(out.state).toMatchObject({ active: 'b', versions: { b: '3.0.0' }, trial: true });
    expect(Buffer.from(mp.fs.readFile('/app_slots/b/app.py')).toString()).toBe('PULSE = True\n');
  });

  test('check request carries id and version', () => {
    serve(makeRelease('2.0.0', 'x = 1\n'));
    mp.run('server.offer = False');
    checkIn();
    expect(mp.json('print(json.dumps([{str(k): v for k, v in c.items()} for c in server.checks]))')).toEqual([
      { '0': 'pico-test-1', '1': '1.0.0' },
    ]);
  });

  test('resumes download after interruption', () => {
    const release = makeRelease('2.0.0', 'x = 1\n');
    serve(release);
    mp.run('server.drop = lambda kind, num: kind == "block" and num >= 5');
    const first = checkIn();
    expect(first.reset).toBe(false);
    expect(first.staged).toBe(true);
    expect(first.reports.map((report) => report['2'])).toEqual([4]);
    expect(Buffer.from(mp.fs.readFile('/ota_staging.bin')).equals(release.image.subarray(0, 5 * 256))).toBe(true);

    mp.run('server.drop = lambda kind, num: False');
    const second = checkIn();
    expect(second.reset).toBe(true);
    // Only the missing blocks are fetched after the reboot.
    expect(second.blocks[0]).toBe(5);
    expect(second.state).toMatchObject({ active: 'b', trial: true });
  });

  test('bad signature downloads nothing', () => {
    const release = makeRelease('2.0.0', 'x = 1\n');
    serve(release, Buffer.alloc(64, 1));
    const out = checkIn();
    expect(out.reset).toBe(false);
    expect(out.blocks).toEqual([]);
    expect(out.state).toMatchObject({ active: 'a', trial: false, rejected: ['2.0.0'] });
    expect(out.reports.map((report) => report['2'])).toEqual([2]);
  });

  test('digest mismatch deletes staging', () => {
    serve(makeRelease('2.0.0', 'x = 1\n', { lie: Buffer.alloc(32, 0xee) }));
    const out = checkIn();
    expect(out.reset).toBe(false);
    expect(out.blocks.length).toBeGreaterThan(0);
    expect(out.staged).toBe(false);
    expect(out.state).toMatchObject({ active: 'a', rejected: ['2.0.0'] });
    expect(out.reports[0]).toMatchObject({ '2': 2, '3': '2.0.0' });
  });

  test('ETag mismatch fails download', () => {
    serve(makeRelease('2.0.0', 'x = 1\n'));
    mp.run('server.etag = b"\\x00" * 8');
    const out = checkIn();
    expect(out.state.active).toBe('a');
    expect(out.reports[0]).toMatchObject({ '2': 4 });
    expect(String(out.reports[0]!['4'])).toContain('ETag');
  });

  test('rejected version not downloaded again', () => {
    serve(makeRelease('2.0.0', 'x = 1\n'));
    mp.run('slots.save(slots.rejecting(slots.load(), "2.0.0"))');
    const out = checkIn();
    expect(out.blocks).toEqual([]);
    expect(out.state.active).toBe('a');
  });

  test('trial confirmed by check-in', () => {
    serve(makeRelease('2.0.0', 'x = 1\n'));
    mp.run(`
slots.clear("b")
open("/app_slots/b/app.py", "w").write("def step(led): pass\\n")
slots.save(slots.begin_trial(slots.load(), "b", "2.0.0"))
server.offer = False
`);
    const out = checkIn();
    expect(out.state).toMatchObject({ active: 'b', trial: false });
    expect(out.reports).toEqual([{ '0': 'pico-test-1', '1': '2.0.0', '2': 1, '3': '2.0.0' }]);
  });

  test('report kept while server silent', () => {
    serve(makeRelease('2.0.0', 'x = 1\n'));
    mp.run(`
server.offer = False
server.drop = lambda kind, num: kind == "report"
reports.add(3, "2.0.0", "import failed")
`);
    const first = checkIn();
    expect(first.pending).toEqual([[3, '2.0.0', 'import failed']]);
    mp.run('server.drop = lambda kind, num: False');
    const second = checkIn();
    expect(second.pending).toEqual([]);
    expect(second.reports).toEqual([{ '0': 'pico-test-1', '1': '1.0.0', '2': 3, '3': '2.0.0', '4': 'import failed' }]);
  });
});
