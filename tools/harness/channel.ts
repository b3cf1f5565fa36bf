// The blocking call channel between the MicroPython worker and the main thread.
//
// Python code on the simulated Pico calls a JS function in the worker, which posts
// a request message and then sleeps on Atomics.wait. The main thread owns the UART
// peer, the flash filesystem and the clock; it writes the reply into a
// SharedArrayBuffer and notifies. Reply bytes go through a fixed data area, so one
// reply carries at most DATA_CAPACITY bytes; callers loop for more.

/** Bytes one reply can carry (reads larger than this are split by the Python shims). */
export const DATA_CAPACITY = 64 * 1024;

/** Int32 slots at the start of the shared buffer. */
export const Slot = {
  /** 0 while the worker waits, 1 once the reply is written. */
  Ready: 0,
  /** ReplyKind of the reply. */
  Kind: 1,
  /** Integer result (negative errno for failures of filesystem calls). */
  Value: 2,
  /** Bytes stored in the data area. */
  DataLength: 3,
  /** Highest firmware heap sample in bytes, written by the worker. */
  HeapHighWater: 4,
} as const;

export const ReplyKind = {
  /** Python None. */
  None: 0,
  /** An integer in Slot.Value. */
  Int: 1,
  /** Bytes in the data area; Slot.Value holds their count. */
  Bytes: 2,
  /** UTF-8 JSON text in the data area. */
  Json: 3,
} as const;
export type ReplyKind = (typeof ReplyKind)[keyof typeof ReplyKind];

const INT_SLOTS = 8;
/** Float64 slot: real epoch time in ms (performance.timeOrigin + now()) at which ticks_ms() reads 0. */
export const CLOCK_TICKS_ZERO = 0;
/** Float64 slot: real epoch time in ms at which the board's virtual power-on clock reads 0. */
export const CLOCK_POWER_ON_ZERO = 1;
const FLOAT_SLOTS = 2;

const INT_BYTES = INT_SLOTS * 4;
const FLOAT_BYTES = FLOAT_SLOTS * 8;

export interface ChannelViews {
  ints: Int32Array;
  clock: Float64Array;
  data: Uint8Array;
}

export function createChannelBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(INT_BYTES + FLOAT_BYTES + DATA_CAPACITY);
}

export function channelViews(buffer: SharedArrayBuffer): ChannelViews {
  return {
    ints: new Int32Array(buffer, 0, INT_SLOTS),
    clock: new Float64Array(buffer, INT_BYTES, FLOAT_SLOTS),
    data: new Uint8Array(buffer, INT_BYTES + FLOAT_BYTES, DATA_CAPACITY),
  };
}

/** Real time in ms on an epoch shared by all threads of the process. */
export function epochNowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** A request from Python code, forwarded by the worker. */
export interface CallMessage {
  type: 'call';
  op: string;
  args: unknown[];
}

/** How a boot ended on its own, reported by the worker. */
export type BootEnd = 'returned' | 'exception' | 'soft-reboot';

export type WorkerMessage =
  | { type: 'loaded' }
  | { type: 'started'; shimHeapBytes: number; harnessHeapBytes: number }
  | { type: 'serial'; text: string }
  | CallMessage
  | { type: 'heap-exceeded'; bytes: number }
  | { type: 'ended'; how: BootEnd }
  | { type: 'exec-done'; id: number; error?: string }
  | { type: 'failed'; message: string };

/** Sent to a worker booted in step mode: run code at the interpreter's top level. */
export interface ExecMessage {
  type: 'exec';
  id: number;
  code: string;
}

/** Sent once to a loaded worker to start a boot. */
export interface BootMessage {
  type: 'boot';
  bootNumber: number;
  heapBudgetBytes: number;
  uniqueIdHex: string;
  /** Step mode: run neither /boot.py nor /main.py, and wait for ExecMessages instead. */
  steps: boolean;
}
