// The blocking call channel between the MicroPython worker and the main thread.
//
// Python code on the simulated Pico calls a JS function in the worker, which posts
// a request message with a sequence number and then sleeps on Atomics.wait. The
// main thread owns the UART peer, the flash filesystem and the clock. It writes the
// reply into the worker's own SharedArrayBuffer, publishes the request's sequence
// number last and notifies. The worker returns only when the published number is
// its own, so a wake-up left over from an earlier reply (a notify that arrives
// after the worker has already read that reply and posted its next request) can
// never hand it a stale reply. Reply bytes go through a fixed data area, so one
// reply carries at most DATA_CAPACITY bytes; callers loop for more.
//
// Each worker gets its own call buffer, so an interpreter that is being terminated
// after a reset cannot read or disturb the replies meant for the next boot. The
// board buffer (clock and heap high-water mark) outlives the boots.

/** Bytes one reply can carry (reads larger than this are split by the Python shims). */
export const DATA_CAPACITY = 64 * 1024;

/** Int32 slots at the start of a worker's call buffer. */
export const Slot = {
  /** Sequence number of the request whose reply is complete; the main thread writes it last. */
  ReplySeq: 0,
  /** ReplyKind of the reply. */
  Kind: 1,
  /** Integer result (negative errno for failures of filesystem calls). */
  Value: 2,
  /** Bytes stored in the data area. */
  DataLength: 3,
} as const;

/** Int32 slots at the start of the board buffer. */
export const BoardSlot = {
  /** Highest firmware heap sample in bytes, written by the worker. */
  HeapHighWater: 0,
} as const;

export const ReplyKind = {
  /** Python None. */
  None: 0,
  /** An integer in Slot.Value. */
  Int: 1,
  /** Bytes in the data area; Slot.Value contains their count. */
  Bytes: 2,
  /** UTF-8 JSON text in the data area. */
  Json: 3,
} as const;
export type ReplyKind = (typeof ReplyKind)[keyof typeof ReplyKind];

const CALL_INT_BYTES = 4 * 4;
const BOARD_INT_BYTES = 2 * 4;
/** Float64 slot: real epoch time in ms (performance.timeOrigin + now()) at which ticks_ms() reads 0. */
export const CLOCK_TICKS_ZERO = 0;
/** Float64 slot: real epoch time in ms at which the board's virtual power-on clock reads 0. */
export const CLOCK_POWER_ON_ZERO = 1;
const FLOAT_SLOTS = 2;

/** Views of one worker's call buffer. */
export interface CallViews {
  ints: Int32Array;
  data: Uint8Array;
}

/** Views of the board buffer, shared by every boot of one SimulatedPico. */
export interface BoardViews {
  ints: Int32Array;
  clock: Float64Array;
}

export function createCallBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(CALL_INT_BYTES + DATA_CAPACITY);
}

export function callViews(buffer: SharedArrayBuffer): CallViews {
  return {
    ints: new Int32Array(buffer, 0, CALL_INT_BYTES / 4),
    data: new Uint8Array(buffer, CALL_INT_BYTES, DATA_CAPACITY),
  };
}

export function createBoardBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(BOARD_INT_BYTES + FLOAT_SLOTS * 8);
}

export function boardViews(buffer: SharedArrayBuffer): BoardViews {
  return {
    ints: new Int32Array(buffer, 0, BOARD_INT_BYTES / 4),
    clock: new Float64Array(buffer, BOARD_INT_BYTES, FLOAT_SLOTS),
  };
}

/** A reply as the main thread writes it: None, an integer, bytes, or a JSON value. */
export type Reply = null | number | { bytes: Uint8Array } | { json: unknown };

/**
 * Writes the reply to request seq and publishes seq, without waking the worker.
 * The fields are written before the sequence number, which is stored with
 * Atomics.store, so a worker that loads seq with Atomics.load reads the whole reply.
 */
export function storeReply(views: CallViews, seq: number, reply: Reply): void {
  const { ints, data } = views;
  if (reply === null) {
    Atomics.store(ints, Slot.Kind, ReplyKind.None);
  } else if (typeof reply === 'number') {
    Atomics.store(ints, Slot.Kind, ReplyKind.Int);
    Atomics.store(ints, Slot.Value, reply);
  } else if ('bytes' in reply) {
    data.set(reply.bytes);
    Atomics.store(ints, Slot.Kind, ReplyKind.Bytes);
    Atomics.store(ints, Slot.Value, reply.bytes.length);
    Atomics.store(ints, Slot.DataLength, reply.bytes.length);
  } else {
    const text = new TextEncoder().encode(JSON.stringify(reply.json));
    data.set(text);
    Atomics.store(ints, Slot.Kind, ReplyKind.Json);
    Atomics.store(ints, Slot.DataLength, text.length);
  }
  Atomics.store(ints, Slot.ReplySeq, seq);
}

/** Wakes a worker blocked in awaitReply. */
export function wakeWorker(views: CallViews): void {
  Atomics.notify(views.ints, Slot.ReplySeq);
}

/** Writes the reply to request seq and wakes the worker (main thread). */
export function sendReply(views: CallViews, seq: number, reply: Reply): void {
  storeReply(views, seq, reply);
  wakeWorker(views);
}

/**
 * Blocks the worker until the reply to request seq is published. It checks the
 * published number after every wake-up, because a notify may belong to an earlier
 * reply that the worker found published before it started to wait.
 */
export function awaitReply(views: CallViews, seq: number): void {
  for (;;) {
    const published = Atomics.load(views.ints, Slot.ReplySeq);
    if (published === seq) return;
    Atomics.wait(views.ints, Slot.ReplySeq, published);
  }
}

/** Sequence number of the request after seq: 1..2^31-1, skipping 0, the value before any reply. */
export function nextSeq(seq: number): number {
  return seq >= 0x7fffffff ? 1 : seq + 1;
}

/** Reads the reply that awaitReply found published: null, an integer, or JSON text. */
export function readReply(views: CallViews): number | string | null {
  const kind = Atomics.load(views.ints, Slot.Kind);
  switch (kind) {
    case ReplyKind.None:
      return null;
    case ReplyKind.Json: {
      const length = Atomics.load(views.ints, Slot.DataLength);
      return new TextDecoder().decode(views.data.slice(0, length));
    }
    default:
      return Atomics.load(views.ints, Slot.Value);
  }
}

/** Real time in ms on an epoch shared by all threads of the process. */
export function epochNowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** A request from Python code, forwarded by the worker. */
export interface CallMessage {
  type: 'call';
  /** Sequence number that the reply must carry (see awaitReply). */
  seq: number;
  op: string;
  args: unknown[];
}

/** Cause of a boot that ended on its own, as the worker reports it. */
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
