// Worker thread of the simulated Pico: one MicroPython (WebAssembly) interpreter
// for one boot. It exposes the JS module `_harness` to the Python shims. A call that
// needs the main thread posts a request and blocks on Atomics.wait, just as the
// firmware blocks on the hardware of a real board. The main thread ends a boot by
// terminating this worker (reset, watchdog, power cut).

import { readFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { loadMicroPython, type MicroPython } from '@micropython/micropython-webassembly-pyscript';
import {
  BoardSlot,
  CLOCK_POWER_ON_ZERO,
  CLOCK_TICKS_ZERO,
  DATA_CAPACITY,
  awaitReply,
  boardViews,
  callViews,
  epochNowMs,
  nextSeq,
  readReply,
  type BootEnd,
  type BootMessage,
  type ExecMessage,
  type WorkerMessage,
} from './channel.ts';

/** rp2 ticks wrap at 2**30 (MicroPython's small-int range on a 32-bit port). */
const TICKS_MASK = 2 ** 30 - 1;

export interface WorkerConfig {
  /** This worker's own call buffer (see channel.ts). */
  calls: SharedArrayBuffer;
  /** The board buffer: clock and heap high-water mark, shared by every boot of one board. */
  board: SharedArrayBuffer;
  /** Initial GC heap of the interpreter in bytes. */
  heapsizeBytes: number;
}

const port = parentPort;
if (port === null) {
  throw new Error('tools/harness/worker.ts must run in a worker thread (started by SimulatedPico)');
}
const config = workerData as WorkerConfig;
const calls = callViews(config.calls);
const board = boardViews(config.board);
const pythonDir = new URL('./python/', import.meta.url);

function post(message: WorkerMessage): void {
  port!.postMessage(message);
}

/** Folder of the interpreter's own (Emscripten) filesystem that contains the shims during boot. */
const SHIM_DIR = '/.pico_shims';
const SHIM_FILES = ['pico_heap.py', 'pico_time.py', 'pico_gc.py', 'machine.py', 'flash_vfs.py'];

function readSource(name: string): string {
  return readFileSync(new URL(name, pythonDir), 'utf8');
}

const bootstrapSource = readSource('bootstrap.py');

const mp: MicroPython = await loadMicroPython({
  heapsize: config.heapsizeBytes,
  stdout: (line) => post({ type: 'serial', text: line }),
  stderr: (line) => post({ type: 'serial', text: line }),
});
const heap = mp._module;
/** C-heap area (outside the GC heap, so not in gc.mem_alloc()) where replies are staged for Python. */
const scratchAddress = heap._malloc(DATA_CAPACITY);
mp.FS.mkdir(SHIM_DIR);
for (const name of SHIM_FILES) {
  mp.FS.writeFile(`${SHIM_DIR}/${name}`, readSource(name));
}

/** Sequence number of the last request this worker posted. */
let lastSeq = 0;

/** Blocks until the main thread has handled the request; returns the reply's value. */
function call(op: string, ...args: unknown[]): number | string | null {
  lastSeq = nextSeq(lastSeq);
  post({ type: 'call', seq: lastSeq, op, args });
  awaitReply(calls, lastSeq);
  return readReply(calls);
}

/** Blocks this thread for good: the boot is over and the main thread terminates the worker. */
function park(): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
}

function readHeap(address: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    bytes[i] = heap.getValue(address + i, 'i8') & 0xff;
  }
  return bytes;
}

function writeHeap(address: number, bytes: Uint8Array): void {
  for (let i = 0; i < bytes.length; i++) {
    heap.setValue(address + i, bytes[i]!, 'i8');
  }
}

function ticksMs(): number {
  return Math.floor(epochNowMs() - board.clock[CLOCK_TICKS_ZERO]!);
}

let heapBudgetBytes = Number.POSITIVE_INFINITY;
/** gc.mem_alloc() when main.py starts: the interpreter's, the bootstrap's and the shims' own heap. */
let harnessHeapBytes = 0;

/** Records one heap sample; over budget, reports it and blocks until terminated. */
function sampleHeap(allocatedBytes: number): void {
  if (harnessHeapBytes === 0) return; // still booting: nothing of the firmware's yet
  const firmwareBytes = Math.max(0, allocatedBytes - harnessHeapBytes);
  if (firmwareBytes > Atomics.load(board.ints, BoardSlot.HeapHighWater)) {
    Atomics.store(board.ints, BoardSlot.HeapHighWater, firmwareBytes);
  }
  if (firmwareBytes > heapBudgetBytes) {
    post({ type: 'heap-exceeded', bytes: firmwareBytes });
    park();
  }
}

function boot(message: BootMessage): void {
  heapBudgetBytes = message.heapBudgetBytes;
  mp.registerJsModule('_harness', {
    DATA_CAPACITY,
    SHIM_DIR,
    STEPS: message.steps,
    started: (shimBytes: number, allocatedBytes: number) => {
      harnessHeapBytes = allocatedBytes;
      post({ type: 'started', shimHeapBytes: shimBytes, harnessHeapBytes: allocatedBytes });
    },
    ended: (how: BootEnd) => {
      post({ type: 'ended', how });
      park();
    },
    heap: sampleHeap,
    harness_heap_bytes: () => harnessHeapBytes,
    // JS numbers reach Python as 32-bit integers, so a huge or infinite budget is capped.
    heap_budget_bytes: () => Math.min(heapBudgetBytes, 2 ** 31 - 1),
    take: (address: number, length: number) => writeHeap(address, calls.data.subarray(0, length)),
    SCRATCH_ADDRESS: scratchAddress,
    stage: (length: number) => writeHeap(scratchAddress, calls.data.subarray(0, length)),

    ticks_ms: () => ticksMs() & TICKS_MASK,
    ticks_us: () => Math.floor((epochNowMs() - board.clock[CLOCK_TICKS_ZERO]!) * 1000) & TICKS_MASK,
    power_on_ms: () => epochNowMs() - board.clock[CLOCK_POWER_ON_ZERO]!,
    sleep_ms: (ms: number) => call('sleep', ms),

    pin_write: (pin: number, value: number) => call('pin_write', pin, value),
    pin_read: (pin: number) => call('pin_read', pin),
    uart_init: (baudrate: number, rxbufBytes: number, txbufBytes: number) =>
      call('uart_init', baudrate, rxbufBytes, txbufBytes),
    uart_deinit: () => call('uart_deinit'),
    uart_any: () => call('uart_any'),
    uart_write: (address: number, length: number) => call('uart_write', readHeap(address, length)),
    uart_read: (maxBytes: number, timeoutMs: number, timeoutCharMs: number, line: number) =>
      call('uart_read', Math.min(maxBytes, DATA_CAPACITY), timeoutMs, timeoutCharMs, line === 1),
    uart_flush: () => call('uart_flush'),
    uart_txdone: () => call('uart_txdone'),

    wdt_start: (timeoutMs: number) => call('wdt_start', timeoutMs),
    wdt_feed: () => call('wdt_feed'),
    reset: (cause: string) => call('reset', cause),
    reset_cause: () => call('reset_cause'),
    unique_id: () => message.uniqueIdHex,

    fs_open: (path: string, mode: string) => call('fs_open', path, mode),
    fs_read: (handle: number, maxBytes: number) => call('fs_read', handle, Math.min(maxBytes, DATA_CAPACITY)),
    fs_readline: (handle: number, maxBytes: number) =>
      call('fs_readline', handle, Math.min(maxBytes, DATA_CAPACITY)),
    fs_write: (handle: number, address: number, length: number) =>
      call('fs_write', handle, readHeap(address, length)),
    fs_seek: (handle: number, offset: number, whence: number) => call('fs_seek', handle, offset, whence),
    fs_flush: (handle: number) => call('fs_flush', handle),
    fs_close: (handle: number) => call('fs_close', handle),
    fs_normalize: (path: string) => call('fs_normalize', path),
    fs_stat: (path: string) => call('fs_stat', path),
    fs_ilistdir: (path: string) => call('fs_ilistdir', path),
    fs_mkdir: (path: string) => call('fs_mkdir', path),
    fs_rmdir: (path: string) => call('fs_rmdir', path),
    fs_remove: (path: string) => call('fs_remove', path),
    fs_rename: (from: string, to: string) => call('fs_rename', from, to),
    fs_statvfs: () => call('fs_statvfs'),
  });
  try {
    mp.runPython(bootstrapSource);
  } catch (error) {
    // Only a fault of the harness itself gets here: the bootstrap catches every
    // exception of the firmware and reports it like the board's REPL.
    post({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
    return;
  }
  if (message.steps) {
    // Each runPython is one top-level call: when it returns to JavaScript, the port runs
    // the garbage collection that a gc.collect() inside it requested. So the heap
    // counted as the harness's own is taken after the bootstrap's garbage is gone.
    mp.runPython('_harness.started(gc.mem_alloc() - _heap_before_shims, gc.mem_alloc())');
    port!.on('message', (exec: ExecMessage) => {
      try {
        mp.runPython(exec.code);
        post({ type: 'exec-done', id: exec.id });
      } catch (error) {
        post({ type: 'exec-done', id: exec.id, error: error instanceof Error ? error.message : String(error) });
      }
    });
  }
}

port.once('message', (message: BootMessage) => boot(message));
post({ type: 'loaded' });
