// UART0 of the simulated Pico, on the main thread. It paces bytes at the baud rate
// in both directions and keeps the rp2 driver's RX ring buffer, so bytes arriving
// while it is full are lost, as in a FIFO overrun. Reads follow the rp2 timeout
// rules: wait up to `timeout` ms for the first byte, then `timeout_char` ms for
// each next one.

import { epochNowMs } from './channel.ts';

/** Depth of the RP2040 UART's hardware RX FIFO, in bytes, in front of the ring buffer. */
const HARDWARE_FIFO_BYTES = 32;
/** Bits on the wire per byte with 8N1 framing (start, 8 data, stop). */
const BITS_PER_BYTE = 10;

interface Segment {
  data: Uint8Array;
  /** Real time (epoch ms) at which data[0] has fully arrived. */
  firstArrivalMs: number;
  /** Bytes of data already moved off the wire. */
  movedBytes: number;
}

interface PendingRead {
  maxBytes: number;
  untilNewline: boolean;
  received: number[];
  deadlineMs: number;
  timeoutCharMs: number;
  resolve: (bytes: Uint8Array | null) => void;
  timer?: NodeJS.Timeout;
}

export class SimulatedUart {
  private configured = false;
  private byteTimeMs = BITS_PER_BYTE / 115.2;
  private rxCapacity = 256 + HARDWARE_FIFO_BYTES;
  private txBufferBytes = 256;
  private readonly wire: Segment[] = [];
  private rxBuffer: number[] = [];
  private rxWireFreeMs = 0;
  private txWireFreeMs = 0;
  private reader: PendingRead | undefined;
  private readonly txTimers = new Set<NodeJS.Timeout>();
  /** Bytes lost because the RX ring buffer was full (overrun). */
  overrunBytes = 0;
  /** Bytes the peer sent while UART0 was not initialized by the firmware. */
  droppedWhileClosedBytes = 0;

  constructor(private readonly deliverToPeer: (data: Uint8Array) => void) {}

  configure(baudrate: number, rxbufBytes: number, txbufBytes: number): void {
    this.configured = true;
    this.byteTimeMs = (BITS_PER_BYTE * 1000) / baudrate;
    this.rxCapacity = rxbufBytes + HARDWARE_FIFO_BYTES;
    this.txBufferBytes = txbufBytes;
    this.rxBuffer = [];
  }

  /** UART0 stops: at deinit, reset or power cut. Bytes in flight to the peer are lost. */
  close(): void {
    this.configured = false;
    this.rxBuffer = [];
    this.wire.length = 0;
    for (const timer of this.txTimers) clearTimeout(timer);
    this.txTimers.clear();
    if (this.reader !== undefined) {
      clearTimeout(this.reader.timer);
      this.reader = undefined;
    }
  }

  /** Bytes the peer transmits towards the Pico's RX pin. */
  receiveFromPeer(data: Uint8Array): void {
    const now = epochNowMs();
    if (!this.configured) {
      this.droppedWhileClosedBytes += data.length;
      return;
    }
    const start = Math.max(now, this.rxWireFreeMs);
    this.wire.push({ data: data.slice(), firstArrivalMs: start + this.byteTimeMs, movedBytes: 0 });
    this.rxWireFreeMs = start + data.length * this.byteTimeMs;
    this.pump();
  }

  /** Moves every byte that has arrived by now into the active read, then into the ring buffer. */
  private advance(now: number): void {
    while (this.wire.length > 0) {
      const segment = this.wire[0]!;
      const arrived = Math.min(
        segment.data.length,
        Math.floor((now - segment.firstArrivalMs) / this.byteTimeMs) + 1,
      );
      while (segment.movedBytes < arrived) {
        const byte = segment.data[segment.movedBytes++]!;
        if (this.reader !== undefined && this.rxBuffer.length === 0 && this.readerWants(this.reader)) {
          this.reader.received.push(byte);
          this.reader.deadlineMs = now + this.reader.timeoutCharMs;
        } else if (this.rxBuffer.length < this.rxCapacity) {
          this.rxBuffer.push(byte);
        } else {
          this.overrunBytes++;
        }
      }
      if (segment.movedBytes < segment.data.length) return;
      this.wire.shift();
    }
  }

  private readerWants(reader: PendingRead): boolean {
    if (reader.received.length >= reader.maxBytes) return false;
    return !(reader.untilNewline && reader.received[reader.received.length - 1] === 0x0a);
  }

  private nextArrivalMs(): number | undefined {
    const segment = this.wire[0];
    if (segment === undefined) return undefined;
    return segment.firstArrivalMs + segment.movedBytes * this.byteTimeMs;
  }

  any(): number {
    this.advance(epochNowMs());
    return this.rxBuffer.length;
  }

  /**
   * Reads up to maxBytes (or through the first newline). Resolves with null when no
   * byte came within timeoutMs, else with the bytes read before a gap longer than
   * timeoutCharMs.
   */
  read(maxBytes: number, timeoutMs: number, timeoutCharMs: number, untilNewline: boolean): Promise<Uint8Array | null> {
    if (this.reader !== undefined) {
      return Promise.reject(new Error('UART0 read started while another read is pending'));
    }
    // Bytes that came in before this read met the ring buffer's limit.
    this.advance(epochNowMs());
    return new Promise((resolve) => {
      this.reader = {
        maxBytes,
        untilNewline,
        received: [],
        deadlineMs: epochNowMs() + timeoutMs,
        timeoutCharMs,
        resolve,
      };
      this.pump();
    });
  }

  /** Serves the pending read from the ring buffer and the wire; finishes it or sets its next wake-up. */
  private pump(): void {
    const reader = this.reader;
    if (reader === undefined) return;
    clearTimeout(reader.timer);
    const now = epochNowMs();
    while (this.rxBuffer.length > 0 && this.readerWants(reader)) {
      reader.received.push(this.rxBuffer.shift()!);
      reader.deadlineMs = now + reader.timeoutCharMs;
    }
    this.advance(now);
    const full = !this.readerWants(reader);
    if (full || now >= reader.deadlineMs) {
      this.reader = undefined;
      reader.resolve(reader.received.length > 0 ? Uint8Array.from(reader.received) : null);
      return;
    }
    const next = this.nextArrivalMs();
    const wakeMs = Math.min(reader.deadlineMs, next ?? Number.POSITIVE_INFINITY);
    reader.timer = setTimeout(() => this.pump(), Math.max(0, wakeMs - now));
  }

  /**
   * Queues bytes for transmission. Resolves when write() returns on the rp2: once
   * every byte fits in the TX ring buffer. The peer gets the bytes when their last
   * one has left the wire.
   */
  write(data: Uint8Array): Promise<number> {
    const now = epochNowMs();
    const start = Math.max(now, this.txWireFreeMs);
    this.txWireFreeMs = start + data.length * this.byteTimeMs;
    const copy = data.slice();
    const deliver = setTimeout(() => {
      this.txTimers.delete(deliver);
      this.deliverToPeer(copy);
    }, this.txWireFreeMs - now);
    this.txTimers.add(deliver);
    const returnAtMs = this.txWireFreeMs - this.txBufferBytes * this.byteTimeMs;
    return new Promise((resolve) => setTimeout(() => resolve(data.length), Math.max(0, returnAtMs - now)));
  }

  /** Milliseconds until the last queued byte has left the wire. */
  txRemainingMs(): number {
    return Math.max(0, this.txWireFreeMs - epochNowMs());
  }
}
