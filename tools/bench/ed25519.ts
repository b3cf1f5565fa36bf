// Benchmark of the firmware's Ed25519 verification (firmware/ed25519.py) on the
// MicroPython 1.27 WebAssembly build: milliseconds per verification, heap, and an
// operation-count estimate for an RP2040 at 125 MHz.
//
// Run: node --import tsx tools/bench/ed25519.ts [--runs N]
import { generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { signedMessage, sha256 } from '../../src/protocol/manifest.ts';
import { Encoding } from '../../src/protocol/constants.ts';

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
const DEFAULT_RUNS = 41;

// Assumed RP2040 cost, in CPU cycles, of one MicroPython operation of each class.
// MicroPython's mpz uses 16-bit digits, so a 255-bit int has 16 digits. These are
// assumptions, not measurements. They count digit steps (schoolbook 16 x 16 digit
// multiply, Knuth long division of 32 digits by 16) at about 10 to 15 cycles each
// on a Cortex-M0+ with the single-cycle multiplier. Each operation adds about 600
// cycles for bytecode dispatch and heap allocation of the result.
const RP2040_HZ = 125_000_000;
const RP2040_CYCLES = {
  /** 255-bit by 255-bit multiply: 256 digit steps. */
  mul: 256 * 10 + 600,
  /** 510-bit mod p: 16 quotient digits x 16 divisor digits, plus normalisation. */
  mod: 256 * 15 + 600 + 600,
  /** Add, subtract, shift or mask of ints up to 512 bits: one pass over the digits. */
  linear: 32 * 6 + 600,
  /** Operation on a 64- to 128-bit int (SHA-512 words): 4 to 8 digits. */
  word: 8 * 6 + 600,
  /** One step of pow() in C (a multiply and a mod), with no bytecode dispatch. */
  powStep: 256 * 10 + 256 * 15 + 600 + 300,
};

// Operations per step, counted from the formulas in firmware/ed25519.py and
// firmware/sha512.py. Doubling: 7 products and 7 reductions, 6 additions; the T
// coordinate adds one product and one reduction. Addition: 8 products and 8
// reductions, 7 additions. Table entry: one addition plus the cached form (2
// products, 4 reductions, 3 additions). SHA-512 block: 80 rounds of 28 word
// operations and 64 schedule words of 16.
const OPS = {
  doubling: { mul: 7, mod: 7, linear: 6 },
  tCoordinate: { mul: 1, mod: 1, linear: 0 },
  addition: { mul: 8, mod: 8, linear: 7 },
  tableEntry: { mul: 10, mod: 12, linear: 10 },
  sha512Block: { word: 80 * 28 + 64 * 16 },
};

interface Stats {
  medianMs: number;
  minMs: number;
  p90Ms: number;
}

function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return { medianMs: at(0.5), minMs: sorted[0] ?? NaN, p90Ms: at(0.9) };
}

function parseRuns(argv: string[]): number {
  const index = argv.indexOf('--runs');
  if (index === -1) return DEFAULT_RUNS;
  const runs = Number(argv[index + 1]);
  if (!Number.isInteger(runs) || runs < 1 || runs > 10_000) {
    throw new Error(`--runs must be an integer in 1..10000, got ${argv[index + 1]}: try --runs 41`);
  }
  return runs;
}

/** Create a key pair and sign a manifest-shaped message like the ones the firmware checks. */
function signedManifest(): { publicKey: Buffer; message: Buffer; signature: Buffer } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  // The raw key is the last 32 bytes of the SPKI encoding (RFC 8410 section 4).
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const message = signedMessage({
    version: '2.0.0',
    size: 48_213,
    sha256: sha256(Buffer.from('example payload')),
    encoding: Encoding.deflate,
  });
  return { publicKey: raw, message, signature: sign(null, message, privateKey) };
}

/** Start an interpreter with the two firmware modules in its filesystem at /lib. */
async function startMicroPython(lines: string[]) {
  const mp = await loadMicroPython({ stdout: (line: string) => lines.push(line) });
  mp.FS.mkdir('/lib');
  for (const name of ['sha512.py', 'ed25519.py']) {
    mp.FS.writeFile(`/lib/${name}`, readFileSync(FIRMWARE_DIR + name));
  }
  // time.ticks_us() has 1 ms resolution in this build, so timing uses the host clock.
  mp.registerJsModule('host_clock', { now_ms: () => performance.now() });
  mp.runPython('import sys\nsys.path.append("/lib")\nimport gc, json, host_clock');
  return mp;
}

function lastJson(lines: string[]): Record<string, number | boolean> {
  const line = lines.pop();
  if (line === undefined) throw new Error('MicroPython printed nothing: expected one JSON line');
  return JSON.parse(line) as Record<string, number | boolean>;
}

export async function runBenchmark(runs: number): Promise<void> {
  const { publicKey, message, signature } = signedManifest();
  const lines: string[] = [];
  const mp = await startMicroPython(lines);
  mp.runPython(
    `pk = bytes.fromhex("${publicKey.toString('hex')}")\n` +
      `msg = bytes.fromhex("${message.toString('hex')}")\n` +
      `sig = bytes.fromhex("${signature.toString('hex')}")`,
  );

  // Heap: gc.collect() in this build frees memory only between runPython calls,
  // so every measurement collects in one call and reads gc.mem_alloc() in the next.
  mp.runPython('gc.collect()');
  mp.runPython('heap0 = gc.mem_alloc()\nt0 = host_clock.now_ms()\nimport ed25519\nt_import = host_clock.now_ms() - t0');
  mp.runPython('gc.collect()');
  mp.runPython('heap_module = gc.mem_alloc() - heap0');
  mp.runPython('t0 = host_clock.now_ms()\nok_first = ed25519.verify(pk, msg, sig)\nt_first = host_clock.now_ms() - t0');
  mp.runPython('gc.collect()');
  mp.runPython('heap_table = gc.mem_alloc() - heap0 - heap_module');
  mp.runPython('gc.collect()');
  mp.runPython('heap1 = gc.mem_alloc()\nok = ed25519.verify(pk, msg, sig)\nheap_call = gc.mem_alloc() - heap1');
  // The structures that stay live for the whole scalar multiplication.
  mp.runPython('gc.collect()');
  mp.runPython(
    'heap1 = gc.mem_alloc()\n' +
      'x, y = ed25519._decode_point(pk)\n' +
      'held = (ed25519._cached_multiples(x, y, 1, x * y % ed25519._P, 1 << (ed25519._A_WINDOW - 2)),\n' +
      '        ed25519._wnaf(ed25519._L - 1, ed25519._B_WINDOW), ed25519._wnaf(ed25519._L - 1, ed25519._A_WINDOW))',
  );
  mp.runPython('gc.collect()');
  mp.runPython(
    'heap_live = gc.mem_alloc() - heap1\ndel held\n' +
      'print(json.dumps({"ok": ok and ok_first, "import_ms": t_import, "first_ms": t_first, ' +
      '"heap_module": heap_module, "heap_table": heap_table, "heap_call": heap_call, "heap_live": heap_live}))',
  );
  const first = lastJson(lines);
  if (first.ok !== true) throw new Error('ed25519.verify rejected a signature made by node:crypto');

  // Time per verification, one runPython call per run so that garbage is collected
  // between runs as it would be between checks on the device.
  const samples: number[] = [];
  for (let run = 0; run < runs; run += 1) {
    mp.runPython('gc.collect()');
    mp.runPython('t0 = host_clock.now_ms()\nok = ed25519.verify(pk, msg, sig)\nprint(json.dumps({"ms": host_clock.now_ms() - t0, "ok": ok}))');
    const sample = lastJson(lines);
    if (sample.ok !== true) throw new Error(`run ${run}: ed25519.verify returned False`);
    samples.push(Number(sample.ms));
  }
  const verify = stats(samples);

  // Operation counts for this signature, and the measured cost of each class here.
  mp.runPython(`
import sha512


def _count():
    E = ed25519
    s = int.from_bytes(sig[32:], "little")
    k = int.from_bytes(sha512.sha512(sig[:32] + pk + msg).digest(), "little") % E._L
    sd = E._wnaf(s, E._B_WINDOW)
    kd = E._wnaf(k, E._A_WINDOW)
    top = max(i for i in range(256) if sd[i] or kd[i])
    adds = sum(1 for d in sd if d) + sum(1 for d in kd if d)
    with_t = sum(1 for i in range(256) if sd[i] or kd[i])
    return {"doublings": top + 1, "with_t": with_t, "additions": adds,
            "table_entries": 1 << (E._A_WINDOW - 2), "sha_blocks": (64 + len(msg) + 17 + 127) // 128}

def _per_op_us(n=20000):
    P = ed25519._P
    a = P // 3
    b = P // 7
    ab = a * b
    w = 0x123456789ABCDEF0
    now = host_clock.now_ms
    t = now(); [a for _ in range(n)]; base = now() - t
    t = now(); [a * b for _ in range(n)]; mul = now() - t
    t = now(); [ab % P for _ in range(n)]; mod = now() - t
    t = now(); [a + b for _ in range(n)]; lin = now() - t
    t = now(); [w ^ w for _ in range(n)]; word = now() - t
    t = now(); pow(a, P - 2, P); pw = now() - t
    per_op = lambda total: max(0, total - base) * 1000 / n
    return {"mul": per_op(mul), "mod": per_op(mod), "linear": per_op(lin), "word": per_op(word), "pow": pw * 1000}

print(json.dumps({"counts": _count(), "wasm_us": _per_op_us()}))
`);
  const model = JSON.parse(lines.pop() ?? '{}') as {
    counts: { doublings: number; with_t: number; additions: number; table_entries: number; sha_blocks: number };
    wasm_us: { mul: number; mod: number; linear: number; word: number; pow: number };
  };
  const c = model.counts;
  const totals = { mul: 0, mod: 0, linear: 0 };
  const addOps = (ops: { mul: number; mod: number; linear: number }, times: number) => {
    totals.mul += ops.mul * times;
    totals.mod += ops.mod * times;
    totals.linear += ops.linear * times;
  };
  addOps(OPS.doubling, c.doublings);
  addOps(OPS.tCoordinate, c.with_t);
  addOps(OPS.addition, c.additions);
  addOps(OPS.tableEntry, c.table_entries);
  const wordOps = OPS.sha512Block.word * c.sha_blocks;
  // Two exponentiations: the square root in key decoding and the final inversion,
  // each about 254 squarings and 250 multiplications for the dense exponents.
  const powSteps = 2 * 504;

  const w = model.wasm_us;
  const wasmModelMs =
    (totals.mul * w.mul + totals.mod * w.mod + totals.linear * w.linear + wordOps * w.word + 2 * w.pow) / 1000;
  const rp2040Cycles =
    totals.mul * RP2040_CYCLES.mul +
    totals.mod * RP2040_CYCLES.mod +
    totals.linear * RP2040_CYCLES.linear +
    wordOps * RP2040_CYCLES.word +
    powSteps * RP2040_CYCLES.powStep;
  const rp2040Ms = (rp2040Cycles / RP2040_HZ) * 1000;

  const fmt = (value: number | boolean | undefined) => Number(value).toFixed(2);
  console.log(`Ed25519 verify on MicroPython 1.27 WebAssembly (Node ${process.version}), ${message.length}-byte manifest message`);
  console.log(`  per verification: median ${fmt(verify.medianMs)} ms, min ${fmt(verify.minMs)} ms, p90 ${fmt(verify.p90Ms)} ms (${runs} runs)`);
  console.log(`  import ${fmt(first.import_ms)} ms, first verification ${fmt(first.first_ms)} ms`);
  console.log('heap (gc.mem_alloc deltas, bytes)');
  console.log(`  module code and constants after import: ${first.heap_module}`);
  console.log(`  kept after the first call: ${first.heap_table}`);
  console.log(`  allocated during one verification with no collection: ${first.heap_call} (upper bound of the peak)`);
  console.log(`  live for the whole call (key table, two digit lists): ${first.heap_live}`);
  console.log('operation counts for one verification');
  console.log(`  ${c.doublings} doublings, ${c.additions} additions, ${c.table_entries} key-table entries, ${c.sha_blocks} SHA-512 blocks, 2 pow()`);
  console.log(`  big-int ops: ${totals.mul} multiplications, ${totals.mod} reductions, ${totals.linear} additions/shifts, ${wordOps} 64-bit word ops`);
  console.log(
    `  measured here per op (us): mul ${fmt(w.mul)}, mod ${fmt(w.mod)}, add ${fmt(w.linear)}, 64-bit ${fmt(w.word)}, pow ${fmt(w.pow)}`,
  );
  console.log(`  model check: counts x measured op costs = ${fmt(wasmModelMs)} ms here (measured median ${fmt(verify.medianMs)} ms)`);
  console.log(
    `RP2040 at 125 MHz: ESTIMATE ${Math.round(rp2040Ms)} ms per verification (${(rp2040Cycles / 1e6).toFixed(1)} M cycles), ` +
      'from the counts above and assumed cycles per operation, not measured on hardware',
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await runBenchmark(parseRuns(process.argv.slice(2)));
}
