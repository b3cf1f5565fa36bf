// Test helpers: a tap on the simulator's UART output, AT command round trips and a
// small UDP echo server on 127.0.0.1.

import dgram from 'node:dgram';

import { Sim7020Simulator, type Sim7020Options } from '../../tools/sim7020/index.ts';

const FINAL_RESULT = /^(OK|ERROR|\+CME ERROR: \d+)$/;

/** Collects what the modem sends to the Pico and splits it into lines. */
export class UartTap {
  raw = '';

  constructor(sim: Sim7020Simulator) {
    sim.onTransmit((data) => {
      this.raw += Buffer.from(data).toString('latin1');
    });
  }

  /** Returns the non-empty lines received so far, echoed commands without their trailing CR. */
  lines(): string[] {
    return this.raw
      .split('\r\n')
      .map((line) => line.replace(/\r$/, ''))
      .filter((line) => line !== '');
  }

  clear(): void {
    this.raw = '';
  }

  async waitForLine(pattern: RegExp, timeoutMs = 2000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines().find((line) => pattern.test(line));
      if (found !== undefined) {
        return found;
      }
      if (Date.now() > deadline) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for a line matching ${pattern}, received ${JSON.stringify(this.raw)}`);
      }
      await sleep(5);
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function write(sim: Sim7020Simulator, text: string): void {
  sim.receiveFromPico(new Uint8Array(Buffer.from(text, 'latin1')));
}

/** Sends one command and returns every line up to and including its final result code. */
export async function command(sim: Sim7020Simulator, tap: UartTap, line: string, timeoutMs = 2000): Promise<string[]> {
  tap.clear();
  write(sim, `${line}\r`);
  await tap.waitForLine(FINAL_RESULT, timeoutMs);
  const lines = tap.lines();
  const end = lines.findIndex((text) => FINAL_RESULT.test(text));
  return lines.slice(0, end + 1);
}

/** Expects the modem to stay silent for quietMs after a command. */
export async function expectSilence(sim: Sim7020Simulator, tap: UartTap, line: string, quietMs = 80): Promise<string> {
  tap.clear();
  write(sim, `${line}\r`);
  await sleep(quietMs);
  return tap.raw;
}

/** Creates a simulator that is on, attached and has echo off, with a tap on its output. */
export function readyModem(options: Sim7020Options = {}): { sim: Sim7020Simulator; tap: UartTap } {
  const sim = new Sim7020Simulator({ startOn: true, echo: false, pwrkeyMinMs: 50, bootDelayMs: 50, networkAttachDelayMs: 0, ...options });
  return { sim, tap: new UartTap(sim) };
}

/** Drives a PWRKEY pulse of the given length on GP14. */
export async function pulsePwrkey(sim: Sim7020Simulator, highMs: number): Promise<void> {
  sim.setPin(14, 1);
  await sleep(highMs);
  sim.setPin(14, 0);
}

export interface EchoServer {
  port: number;
  received: Buffer[];
  /** Sends a datagram from the server to an address, for unsolicited traffic. */
  sendTo(payload: Buffer, port: number, address?: string): void;
  close(): Promise<void>;
}

/** Starts a UDP server on 127.0.0.1 that returns every datagram to its sender after replyDelayMs. */
export async function startEchoServer(replyDelayMs = 0, echo = true): Promise<EchoServer> {
  const socket = dgram.createSocket('udp4');
  const received: Buffer[] = [];
  socket.on('message', (message, remote) => {
    received.push(message);
    if (!echo) {
      return;
    }
    const reply = () => socket.send(message, remote.port, remote.address);
    if (replyDelayMs > 0) {
      setTimeout(reply, replyDelayMs);
    } else {
      reply();
    }
  });
  await new Promise<void>((resolve) => socket.bind({ address: '127.0.0.1', port: 0 }, resolve));
  return {
    port: socket.address().port,
    received,
    sendTo: (payload, port, address = '127.0.0.1') => socket.send(payload, port, address),
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
}

/**
 * A 4-byte CoAP message (RFC 7252 section 3): 0x40 is version 1, CON, no token, then
 * 0x01 is GET and 0x1234 the message id.
 */
export const COAP_GET_HEX = '40011234';
