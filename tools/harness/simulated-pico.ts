// SimulatedPico runs the firmware's MicroPython files unchanged on real MicroPython
// (WebAssembly) in a worker thread, with the Pico's UART0 wired to a UartPeer. The
// flash filesystem, pins, watchdog and clock live here on the main thread, so they
// outlive each boot. docs/harness.md says what it models and what it does not.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { UartPeer } from '../sim7020/uart-peer.ts';
import {
  BoardSlot,
  CLOCK_POWER_ON_ZERO,
  CLOCK_TICKS_ZERO,
  boardViews,
  callViews,
  createBoardBuffer,
  createCallBuffer,
  epochNowMs,
  sendReply,
  type BoardViews,
  type BootMessage,
  type CallMessage,
  type CallViews,
  type Reply,
  type WorkerMessage,
} from './channel.ts';
import { FlashError, FlashFs, PowerCutReached, normalizePath, type FsOp } from './flash-fs.ts';
import { SimulatedUart } from './uart.ts';

/** Free heap of a Pico running MicroPython 1.2x (rp2), in bytes. */
export const PICO_HEAP_BYTES = 190 * 1024;
/** Onboard LED of the Pico (GP25). */
export const LED_PIN = 25;
/** Initial GC heap of the interpreter in bytes. It grows on demand; kept small because gc.mem_alloc() walks the whole heap at every sample. */
const INTERPRETER_HEAP_BYTES = 64 * 1024;
/** How often the watchdog and function predicates are checked, in real ms. */
const POLL_INTERVAL_MS = 5;
/** rp2 machine.reset_cause() values. */
const PWRON_RESET = 1;
const WDT_RESET = 3;

export interface SimulatedPicoOptions {
  /** Initial flash content: path (relative paths are under /) to bytes or UTF-8 text. */
  files: Record<string, Uint8Array | string>;
  /** Peer on UART0: the SIM7020E simulator, or a test's fake. */
  uart: UartPeer;
  /** Fails the run when heapHighWater passes this many bytes (default 190 KiB). */
  heapBudgetBytes?: number;
  /** Cuts power right before mutating filesystem operation number n (1-based, over all boots). */
  powerCutAtOp?: number;
  /** Receives each line the firmware prints, with the boot it came from. */
  onSerial?: (line: string, boot: number) => void;
  /**
   * Divides the real duration of time.sleep*, machine.lightsleep and deepsleep by
   * this factor while the board's clock still advances by the full time (default 1).
   * UART timeouts and everything outside sleeps run in real time.
   */
  clockScale?: number;
  /** machine.unique_id() as 16 hex digits (default e6614c311b7e2f25). */
  uniqueIdHex?: string;
  /** Flash filesystem size in bytes (default 848 KiB, the rp2 Pico layout). */
  flashCapacityBytes?: number;
  /**
   * Step mode: boot() mounts the filesystem but runs neither /boot.py nor /main.py, and
   * exec() then runs code at the interpreter's top level (default false).
   */
  steps?: boolean;
}

export interface SerialLine {
  boot: number;
  text: string;
  /** Board time since power-on, in ms. */
  atMs: number;
}

export interface LedEvent {
  boot: number;
  /** Board time since power-on, in ms (virtual: includes sleeps shortened by clockScale). */
  atMs: number;
  value: number;
}

export type ResetCause = 'machine.reset' | 'watchdog' | 'deepsleep' | 'soft-reboot';

export interface ResetRecord {
  /** The boot that ended. */
  boot: number;
  cause: ResetCause;
  atMs: number;
}

export type BoardState = 'off' | 'booting' | 'running' | 'repl' | 'failed';

export type RunCondition =
  | ((pico: SimulatedPico) => boolean)
  | { serialMatch: RegExp }
  | { resets: number };

export interface RunResult {
  /** matched: the condition held; repl: main.py ended (exception or return); power-cut; timeout; stopped. */
  reason: 'matched' | 'timeout' | 'power-cut' | 'repl' | 'stopped';
  /** The boot running (or last run) when runUntil returned. */
  boot: number;
  resets: number;
  /** The serial line that satisfied a serialMatch condition. */
  line?: string;
  elapsedMs: number;
}

export class HeapBudgetError extends Error {
  constructor(
    readonly heapBytes: number,
    readonly budgetBytes: number,
  ) {
    super(
      `firmware heap ${heapBytes} bytes exceeds the budget of ${budgetBytes} bytes ` +
        `(gc.mem_alloc() since main.py started; this WebAssembly build collects no garbage while ` +
        `Python runs, so garbage counts too): allocate less, or raise heapBudgetBytes for a long run`,
    );
  }
}

interface Waiter {
  condition: RunCondition;
  startResets: number;
  /** Index of the first serial line a serialMatch looks at. */
  serialFrom: number;
  startMs: number;
  resolve: (result: RunResult) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

interface BoardWorker {
  worker: Worker;
  /** The worker's own call buffer, where its replies are written. */
  calls: CallViews;
  loaded: Promise<void>;
}

const require = createRequire(import.meta.url);
const TSX_API_URL = pathToFileURL(join(require.resolve('tsx/package.json'), '..', 'dist/esm/api/index.mjs')).href;
const WORKER_URL = new URL('./worker.ts', import.meta.url).href;
// The worker entry is TypeScript: register tsx's loader inside the worker first.
const WORKER_BOOTSTRAP =
  `import(${JSON.stringify(TSX_API_URL)})` +
  `.then((tsx) => { tsx.register(); return import(${JSON.stringify(WORKER_URL)}); });`;

/** Reads the firmware files (top level of a folder, default firmware/) byte for byte. */
export function firmwareFiles(dir = fileURLToPath(new URL('../../firmware/', import.meta.url))): Record<string, Uint8Array> {
  const files: Record<string, Uint8Array> = {};
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isFile()) files['/' + name] = new Uint8Array(readFileSync(path));
  }
  return files;
}

export class SimulatedPico {
  private readonly flash: FlashFs;
  private readonly uart: SimulatedUart;
  private readonly boardBuffer = createBoardBuffer();
  private readonly board: BoardViews = boardViews(this.boardBuffer);
  private readonly heapBudgetBytes: number;
  private readonly clockScale: number;
  private readonly uniqueIdHex: string;

  private current: Worker | undefined;
  /** Call buffer of the current worker. */
  private currentCalls: CallViews | undefined;
  private spare: BoardWorker | undefined;
  /** Increments whenever a worker starts or stops, so late replies to a dead boot are dropped. */
  private generation = 0;
  private bootNumber = 0;
  private boardState: BoardState = 'off';
  private failure: Error | undefined;
  private resetCauseCode = PWRON_RESET;
  private readonly outputLevels = new Map<number, number>();
  private readonly inputLevels = new Map<number, number>();
  private wdtTimeoutMs: number | undefined;
  private wdtDeadlineMs = 0;
  private poller: NodeJS.Timeout | undefined;
  private readonly sleepTimers = new Set<NodeJS.Timeout>();
  private readonly waiters = new Set<Waiter>();
  private shimHeap = 0;
  private harnessHeap = 0;
  private execCount = 0;
  private readonly execWaiters = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();

  readonly serial: SerialLine[] = [];
  readonly ledEvents: LedEvent[] = [];
  readonly resetLog: ResetRecord[] = [];
  powerCuts = 0;

  constructor(private readonly options: SimulatedPicoOptions) {
    this.heapBudgetBytes = options.heapBudgetBytes ?? PICO_HEAP_BYTES;
    this.clockScale = options.clockScale ?? 1;
    if (!(this.clockScale >= 1)) {
      throw new Error(`clockScale ${options.clockScale} is invalid: use 1 (real time) or more`);
    }
    this.uniqueIdHex = options.uniqueIdHex ?? 'e6614c311b7e2f25';
    if (!/^([0-9a-f]{2})+$/i.test(this.uniqueIdHex)) {
      throw new Error(`uniqueIdHex ${JSON.stringify(this.uniqueIdHex)} is invalid: use hex digits, e.g. e6614c311b7e2f25`);
    }
    this.flash = new FlashFs(options.flashCapacityBytes);
    this.flash.powerCutAtOp = options.powerCutAtOp;
    for (const [path, content] of Object.entries(options.files)) {
      this.flash.seed(normalizePath('/' + path), typeof content === 'string' ? new TextEncoder().encode(content) : content);
    }
    this.uart = new SimulatedUart((data) => this.options.uart.receiveFromPico(data));
    options.uart.onTransmit((data) => this.uart.receiveFromPeer(data));
    this.setClockZero(CLOCK_POWER_ON_ZERO, epochNowMs());
  }

  // ---- public view of the board ----

  get state(): BoardState {
    return this.boardState;
  }

  /** The current (or last) boot, counted from 1. */
  get currentBoot(): number {
    return this.bootNumber;
  }

  /** Reboots so far: machine.reset(), watchdog, deepsleep and soft reboots (not power cuts). */
  get resets(): number {
    return this.resetLog.length;
  }

  /**
   * Highest gc.mem_alloc() seen at a call into the harness, minus the harness's own heap at
   * the start of main.py, in bytes. Garbage is never collected while Python runs in this
   * build, so this is an upper bound of the firmware's live heap (see docs/harness.md).
   */
  get heapHighWater(): number {
    return Atomics.load(this.board.ints, BoardSlot.HeapHighWater);
  }

  /** Starts a new heapHighWater measurement, for example before one exec() step. */
  resetHeapHighWater(): void {
    Atomics.store(this.board.ints, BoardSlot.HeapHighWater, 0);
  }

  /** Heap taken by the harness's shim modules in the last boot (in flash on a real Pico). */
  get shimHeapBytes(): number {
    return this.shimHeap;
  }

  /** Heap allocated when main.py started in the last boot (interpreter, bootstrap, shims), excluded from heapHighWater. */
  get harnessHeapBytes(): number {
    return this.harnessHeap;
  }

  /** Every mutating filesystem operation so far, over all boots. */
  get fsOps(): readonly FsOp[] {
    return this.flash.ops;
  }

  get uartStats(): { overrunBytes: number; droppedWhileClosedBytes: number } {
    return { overrunBytes: this.uart.overrunBytes, droppedWhileClosedBytes: this.uart.droppedWhileClosedBytes };
  }

  /** Board time since the last power-on, in ms. */
  nowMs(): number {
    return epochNowMs() - this.board.clock[CLOCK_POWER_ON_ZERO]!;
  }

  /** Durable flash content: what would survive a power cut now. */
  files(): Record<string, Uint8Array> {
    return this.flash.snapshot();
  }

  directories(): string[] {
    return this.flash.directories();
  }

  readFile(path: string): Uint8Array | undefined {
    return this.flash.readFile(path);
  }

  readText(path: string): string | undefined {
    const content = this.readFile(path);
    return content === undefined ? undefined : new TextDecoder().decode(content);
  }

  /** Serial lines, of one boot or of all. */
  serialLines(boot?: number): string[] {
    return this.serial.filter((line) => boot === undefined || line.boot === boot).map((line) => line.text);
  }

  /** Sets the level a Pin.IN reads. */
  setInputLevel(pin: number, level: number): void {
    this.inputLevels.set(pin, level ? 1 : 0);
  }

  // ---- power and boot ----

  /** Powers on (or presses RUN on a running board) and starts /boot.py and /main.py in a fresh interpreter. */
  async boot(): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    if (this.current !== undefined) {
      this.endBoot();
    }
    if (this.boardState === 'off') {
      this.setClockZero(CLOCK_POWER_ON_ZERO, epochNowMs());
    }
    // The RUN pin resets the whole chip, which the rp2 port reports as a power-on reset.
    this.resetCauseCode = PWRON_RESET;
    await this.startBoot();
  }

  /** Cuts power to the whole board now: unsynced file data is lost and the modem turns off. */
  powerCut(): void {
    this.endBoot();
    this.boardState = 'off';
    this.powerCuts++;
    this.options.uart.powerCut();
    this.notify();
  }

  /** Stops the board and the harness's workers (test cleanup); the UART peer is left alone. */
  async stop(): Promise<void> {
    this.endBoot();
    if (this.boardState !== 'failed') this.boardState = 'off';
    const spare = this.spare;
    this.spare = undefined;
    await spare?.worker.terminate();
    for (const waiter of this.waiters) this.finish(waiter, 'stopped');
    clearInterval(this.poller);
    this.poller = undefined;
  }

  /**
   * Runs until the condition holds, main.py ends, power is cut or timeoutMs passes.
   * A serialMatch looks at lines printed after this call; `resets: n` waits for n
   * more resets. Rejects with HeapBudgetError when the heap budget is passed.
   */
  runUntil(condition: RunCondition, { timeoutMs = 30_000 }: { timeoutMs?: number } = {}): Promise<RunResult> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        condition,
        startResets: this.resets,
        serialFrom: this.serial.length,
        startMs: performance.now(),
        resolve,
        reject,
        timer: setTimeout(() => this.finish(waiter, 'timeout'), timeoutMs),
      };
      this.waiters.add(waiter);
      this.notify();
      this.ensurePoller();
    });
  }

  /**
   * Runs Python code at the top level of a board booted with `steps: true` and resolves
   * when it returns. Globals persist between calls. When a call returns, control goes
   * back to JavaScript, which is when this build runs a collection that gc.collect()
   * requested: so gc.mem_alloc() at the start of the next call counts live objects only.
   * Rejects with the Python traceback, on timeout, or when the board stops first.
   */
  exec(code: string, { timeoutMs = 30_000 }: { timeoutMs?: number } = {}): Promise<void> {
    if (!this.options.steps) return Promise.reject(new Error('exec() needs a board created with steps: true'));
    const worker = this.current;
    if (worker === undefined || this.boardState !== 'running') {
      return Promise.reject(new Error(`exec() needs a running board, state is ${this.boardState}: call boot() first`));
    }
    const id = ++this.execCount;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.execWaiters.delete(id);
        reject(new Error(`exec() timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.execWaiters.set(id, {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      worker.postMessage({ type: 'exec', id, code });
    });
  }

  // ---- internals: boot lifecycle ----

  private setClockZero(slot: number, epochMs: number): void {
    this.board.clock[slot] = epochMs;
  }

  private shiftClocks(skippedMs: number): void {
    this.board.clock[CLOCK_POWER_ON_ZERO] = this.board.clock[CLOCK_POWER_ON_ZERO]! - skippedMs;
    this.board.clock[CLOCK_TICKS_ZERO] = this.board.clock[CLOCK_TICKS_ZERO]! - skippedMs;
  }

  private spawnWorker(): BoardWorker {
    const callBuffer = createCallBuffer();
    const worker = new Worker(WORKER_BOOTSTRAP, {
      eval: true,
      workerData: { calls: callBuffer, board: this.boardBuffer, heapsizeBytes: INTERPRETER_HEAP_BYTES },
    });
    const loaded = new Promise<void>((resolve, reject) => {
      const onMessage = (message: WorkerMessage): void => {
        if (message.type === 'loaded') {
          worker.off('message', onMessage);
          resolve();
        }
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
    });
    loaded.catch(() => undefined);
    return { worker, calls: callViews(callBuffer), loaded };
  }

  private async startBoot(): Promise<void> {
    const board = this.spare ?? this.spawnWorker();
    this.spare = undefined;
    this.bootNumber++;
    this.generation++;
    const generation = this.generation;
    this.flash.boot = this.bootNumber;
    this.boardState = 'booting';
    await board.loaded;
    if (generation !== this.generation) {
      await board.worker.terminate();
      return;
    }
    this.current = board.worker;
    this.currentCalls = board.calls;
    this.setClockZero(CLOCK_TICKS_ZERO, epochNowMs());
    const started = new Promise<void>((resolve, reject) => {
      board.worker.on('message', (message: WorkerMessage) => {
        if (message.type === 'started') {
          this.shimHeap = message.shimHeapBytes;
          this.harnessHeap = message.harnessHeapBytes;
          resolve();
        } else if (message.type === 'failed') {
          reject(new Error(`simulated Pico failed to boot: ${message.message}`));
        }
        this.onMessage(generation, message);
      });
      board.worker.on('error', (error) => {
        reject(error);
        this.fail(generation, new Error(`simulated Pico worker crashed: ${error.message}`));
      });
      board.worker.once('exit', () => reject(new Error('simulated Pico worker exited before main.py started')));
    });
    const boot: BootMessage = {
      type: 'boot',
      bootNumber: this.bootNumber,
      heapBudgetBytes: this.heapBudgetBytes,
      uniqueIdHex: this.uniqueIdHex,
      steps: this.options.steps ?? false,
    };
    board.worker.postMessage(boot);
    try {
      await started;
    } catch (error) {
      // A stop, reset or power cut that ended this boot early is no failure.
      if (generation !== this.generation) return;
      throw error;
    }
    if (generation !== this.generation) return;
    this.boardState = 'running';
    // Load the next interpreter while this boot runs, so a reset reboots quickly.
    this.spare ??= this.spawnWorker();
  }

  /** Stops the running interpreter and what dies with the board's CPU: open files, UART, pins, watchdog. */
  private endBoot(): void {
    this.generation++;
    for (const waiter of this.execWaiters.values()) waiter.reject(new Error('the board stopped during exec()'));
    this.execWaiters.clear();
    const worker = this.current;
    this.current = undefined;
    this.currentCalls = undefined;
    void worker?.terminate();
    this.flash.dropHandles();
    this.uart.close();
    for (const timer of this.sleepTimers) clearTimeout(timer);
    this.sleepTimers.clear();
    this.wdtTimeoutMs = undefined;
    for (const [pin, level] of this.outputLevels) {
      if (level !== 0) this.writePin(pin, 0);
    }
    this.outputLevels.clear();
  }

  private reset(cause: ResetCause): void {
    this.resetLog.push({ boot: this.bootNumber, cause, atMs: this.nowMs() });
    this.endBoot();
    if (cause !== 'soft-reboot') this.resetCauseCode = WDT_RESET;
    this.notify();
    this.startBoot().catch((error: Error) => this.fail(this.generation, error));
  }

  private fail(generation: number, error: Error): void {
    if (generation !== this.generation && !(error instanceof HeapBudgetError)) return;
    this.failure = error;
    for (const waiter of this.execWaiters.values()) waiter.reject(error);
    this.execWaiters.clear();
    this.endBoot();
    this.boardState = 'failed';
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      this.waiters.delete(waiter);
      waiter.reject(error);
    }
  }

  private onMessage(generation: number, message: WorkerMessage): void {
    if (generation !== this.generation) return;
    switch (message.type) {
      case 'serial': {
        const line: SerialLine = { boot: this.bootNumber, text: message.text, atMs: this.nowMs() };
        this.serial.push(line);
        this.options.onSerial?.(line.text, line.boot);
        this.notify();
        return;
      }
      case 'call':
        this.handleCall(generation, message);
        return;
      case 'heap-exceeded':
        this.fail(generation, new HeapBudgetError(message.bytes, this.heapBudgetBytes));
        return;
      case 'ended':
        if (message.how === 'soft-reboot') {
          this.reset('soft-reboot');
          return;
        }
        // The board now sits in the REPL: only a running watchdog can still reset it.
        this.boardState = 'repl';
        this.generation++;
        void this.current?.terminate();
        this.current = undefined;
        this.currentCalls = undefined;
        this.notify();
        return;
      case 'exec-done': {
        const waiter = this.execWaiters.get(message.id);
        this.execWaiters.delete(message.id);
        if (message.error === undefined) waiter?.resolve();
        else waiter?.reject(new Error(`exec() raised: ${message.error}`));
        return;
      }
      case 'failed':
        this.fail(generation, new Error(`simulated Pico harness fault: ${message.message}`));
        return;
      default:
        return;
    }
  }

  // ---- internals: calls from the firmware ----

  private writeReply(generation: number, seq: number, reply: Reply): void {
    if (generation !== this.generation || this.currentCalls === undefined) return;
    sendReply(this.currentCalls, seq, reply);
  }

  private handleCall(generation: number, message: CallMessage): void {
    let result: Reply | Promise<Reply> | undefined;
    try {
      result = this.dispatch(message.op, message.args);
    } catch (error) {
      if (error instanceof PowerCutReached) {
        this.powerCut();
        return;
      }
      if (error instanceof FlashError) {
        this.writeReply(generation, message.seq, -error.errno);
        return;
      }
      this.fail(generation, error as Error);
      return;
    }
    if (result === undefined) return;
    if (result instanceof Promise) {
      result.then(
        (value) => this.writeReply(generation, message.seq, value),
        (error: Error) => this.fail(generation, error),
      );
    } else {
      this.writeReply(generation, message.seq, result);
    }
  }

  /** Runs one call; undefined means the call never returns (the board resets instead). */
  private dispatch(op: string, args: unknown[]): Reply | Promise<Reply> | undefined {
    const num = (i: number): number => args[i] as number;
    const str = (i: number): string => args[i] as string;
    switch (op) {
      case 'sleep':
        return this.sleep(num(0));
      case 'pin_write':
        this.writePin(num(0), num(1));
        return null;
      case 'pin_read':
        return this.inputLevels.get(num(0)) ?? 0;
      case 'uart_init':
        this.uart.configure(num(0), num(1), num(2));
        return null;
      case 'uart_deinit':
        this.uart.close();
        return null;
      case 'uart_any':
        return this.uart.any();
      case 'uart_write':
        return this.uart.write(args[0] as Uint8Array);
      case 'uart_read':
        return this.uart.read(num(0), num(1), num(2), args[3] as boolean).then((bytes) => (bytes === null ? -1 : { bytes }));
      case 'uart_flush':
        return new Promise((resolve) => setTimeout(() => resolve(null), this.uart.txRemainingMs()));
      case 'uart_txdone':
        return this.uart.txRemainingMs() === 0 ? 1 : 0;
      case 'wdt_start':
        this.wdtTimeoutMs = num(0);
        this.wdtDeadlineMs = this.nowMs() + num(0);
        this.ensurePoller();
        return null;
      case 'wdt_feed':
        if (this.wdtTimeoutMs !== undefined) this.wdtDeadlineMs = this.nowMs() + this.wdtTimeoutMs;
        return null;
      case 'reset':
        this.reset(str(0) as ResetCause);
        return undefined;
      case 'reset_cause':
        return this.resetCauseCode;
      case 'fs_open':
        return this.flash.open(str(0), str(1));
      case 'fs_read':
        return { bytes: this.flash.read(num(0), num(1)) };
      case 'fs_readline':
        return { bytes: this.flash.read(num(0), num(1), true) };
      case 'fs_write':
        return this.flash.write(num(0), args[1] as Uint8Array);
      case 'fs_seek':
        return this.flash.seek(num(0), num(1), num(2));
      case 'fs_flush':
        this.flash.flush(num(0));
        return 0;
      case 'fs_close':
        this.flash.close(num(0));
        return 0;
      case 'fs_normalize':
        return { json: normalizePath(str(0)) };
      case 'fs_stat':
        return { json: this.flash.stat(str(0)) };
      case 'fs_ilistdir':
        return { json: this.flash.list(str(0)) };
      case 'fs_mkdir':
        this.flash.mkdir(str(0));
        return 0;
      case 'fs_rmdir':
        this.flash.rmdir(str(0));
        return 0;
      case 'fs_remove':
        this.flash.remove(str(0));
        return 0;
      case 'fs_rename':
        this.flash.rename(str(0), str(1));
        return 0;
      case 'fs_statvfs':
        return { json: this.flash.statvfs() };
      default:
        throw new Error(`unknown harness call ${JSON.stringify(op)} from the Python shims`);
    }
  }

  private writePin(pin: number, level: number): void {
    const previous = this.outputLevels.get(pin) ?? 0;
    this.outputLevels.set(pin, level);
    this.options.uart.setPin(pin, level);
    if (pin === LED_PIN && level !== previous) {
      this.ledEvents.push({ boot: this.bootNumber, atMs: this.nowMs(), value: level });
      this.notify();
    }
  }

  /** Sleeps ms of board time (forever when negative); the watchdog may reset the board first. */
  private sleep(ms: number): Promise<Reply> | undefined {
    const startMs = this.nowMs();
    const forever = ms < 0;
    const wdtDue = this.wdtTimeoutMs !== undefined && (forever || startMs + ms >= this.wdtDeadlineMs);
    if (forever && !wdtDue) return undefined;
    const boardMs = wdtDue ? Math.max(0, this.wdtDeadlineMs - startMs) : ms;
    const generation = this.generation;
    const realStart = performance.now();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.sleepTimers.delete(timer);
        if (generation !== this.generation) return;
        const skippedMs = boardMs - (performance.now() - realStart);
        if (skippedMs > 0) this.shiftClocks(skippedMs);
        if (wdtDue) {
          this.reset('watchdog');
          return;
        }
        resolve(null);
      }, boardMs / this.clockScale);
      this.sleepTimers.add(timer);
    });
  }

  // ---- internals: waiting ----

  private ensurePoller(): void {
    if (this.poller !== undefined) return;
    this.poller = setInterval(() => {
      if (this.wdtTimeoutMs !== undefined && this.nowMs() >= this.wdtDeadlineMs && this.boardState !== 'booting') {
        this.reset('watchdog');
      }
      this.notify();
      if (this.waiters.size === 0 && this.wdtTimeoutMs === undefined) {
        clearInterval(this.poller);
        this.poller = undefined;
      }
    }, POLL_INTERVAL_MS);
  }

  private finish(waiter: Waiter, reason: RunResult['reason'], line?: string): void {
    if (!this.waiters.delete(waiter)) return;
    clearTimeout(waiter.timer);
    waiter.resolve({
      reason,
      boot: this.bootNumber,
      resets: this.resets,
      ...(line === undefined ? {} : { line }),
      elapsedMs: performance.now() - waiter.startMs,
    });
  }

  private notify(): void {
    for (const waiter of this.waiters) {
      const condition = waiter.condition;
      if (typeof condition === 'function') {
        if (condition(this)) {
          this.finish(waiter, 'matched');
          continue;
        }
      } else if ('serialMatch' in condition) {
        const hit = this.serial.slice(waiter.serialFrom).find((line) => condition.serialMatch.test(line.text));
        if (hit !== undefined) {
          this.finish(waiter, 'matched', hit.text);
          continue;
        }
      } else if (this.resets - waiter.startResets >= condition.resets) {
        this.finish(waiter, 'matched');
        continue;
      }
      if (this.boardState === 'repl') this.finish(waiter, 'repl');
      else if (this.boardState === 'off') this.finish(waiter, 'power-cut');
    }
  }
}
