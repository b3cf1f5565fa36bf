// A tiny UART peer for the harness tests: echoes every chunk back after a delay
// and records pin changes and power cuts.

import type { UartPeer } from '../../tools/sim7020/uart-peer.ts';

export class LoopbackPeer implements UartPeer {
  readonly received: Uint8Array[] = [];
  readonly pins: Array<{ pin: number; value: number }> = [];
  powerCuts = 0;
  private sink: (data: Uint8Array) => void = () => undefined;

  constructor(private readonly echoDelayMs = 20) {}

  receiveFromPico(data: Uint8Array): void {
    this.received.push(data);
    setTimeout(() => this.sink(data), this.echoDelayMs);
  }

  onTransmit(listener: (data: Uint8Array) => void): void {
    this.sink = listener;
  }

  /** Sends bytes to the Pico unprompted, like a URC. */
  send(data: Uint8Array | string): void {
    this.sink(typeof data === 'string' ? new TextEncoder().encode(data) : data);
  }

  setPin(pin: number, value: number): void {
    this.pins.push({ pin, value });
  }

  powerCut(): void {
    this.powerCuts++;
  }

  receivedText(): string {
    return this.received.map((chunk) => new TextDecoder().decode(chunk)).join('');
  }
}
