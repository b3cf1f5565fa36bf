// A UartPeer between the simulated Pico and the SIM7020E simulator that decodes the
// CoAP PDU of every AT+CCOAPSEND line, so the demo and the tests can count requests
// per resource and per Block2 block number. All bytes pass through unchanged.
import type { Sim7020Simulator, UartPeer } from '../sim7020/index.ts';

/** One CoAP request the Pico handed to the modem with AT+CCOAPSEND (lost ones included). */
export interface SentRequest {
  boot: number;
  atMs: number;
  type: number;
  code: string;
  messageId: number;
  path: string;
  /** Block2 block number, when the request carries Block2. */
  block?: number;
}

/**
 * A UartPeer between the Pico and the modem that decodes the CoAP PDU of every
 * AT+CCOAPSEND line and passes all bytes through unchanged.
 */
export class CoapTap implements UartPeer {
  readonly sent: SentRequest[] = [];
  private line = '';
  /** Returns the Pico's current boot number; startDevice sets it. */
  bootOf: () => number = () => 0;

  constructor(readonly modem: Sim7020Simulator) {}

  receiveFromPico(data: Uint8Array): void {
    this.line += Buffer.from(data).toString('latin1');
    let end: number;
    while ((end = this.line.indexOf('\r')) >= 0) {
      const text = this.line.slice(0, end);
      this.line = this.line.slice(end + 1);
      const match = /AT\+CCOAPSEND=\d+,\d+,"?([0-9A-Fa-f]+)"?/.exec(text);
      if (match?.[1]) {
        const request = decodeRequest(Buffer.from(match[1], 'hex'));
        if (request) this.sent.push({ boot: this.bootOf(), atMs: Date.now(), ...request });
      }
    }
    this.modem.receiveFromPico(data);
  }

  onTransmit(listener: (data: Uint8Array) => void): void {
    this.modem.onTransmit(listener);
  }

  setPin(pin: number, value: number): void {
    this.modem.setPin(pin, value);
  }

  powerCut(): void {
    this.line = '';
    this.modem.powerCut();
  }

  /** Block2 GET requests per block number, retransmissions included. */
  blockRequests(): Map<number, number> {
    const counts = new Map<number, number>();
    for (const request of this.sent) {
      if (request.code === '0.01' && request.block !== undefined) counts.set(request.block, (counts.get(request.block) ?? 0) + 1);
    }
    return counts;
  }
}

const OPTION_URI_PATH = 11;
const OPTION_BLOCK2 = 23;

/** Decodes header, Uri-Path and Block2 of a CoAP message (RFC 7252 section 3); undefined when malformed. */
export function decodeRequest(pdu: Buffer): Omit<SentRequest, 'boot' | 'atMs'> | undefined {
  if (pdu.length < 4) return undefined;
  const type = ((pdu[0] ?? 0) >> 4) & 0x03;
  const tokenLength = (pdu[0] ?? 0) & 0x0f;
  const rawCode = pdu[1] ?? 0;
  const code = `${rawCode >> 5}.${String(rawCode & 0x1f).padStart(2, '0')}`;
  const messageId = pdu.readUInt16BE(2);
  let pos = 4 + tokenLength;
  let number = 0;
  const segments: string[] = [];
  let block: number | undefined;
  while (pos < pdu.length && pdu[pos] !== 0xff) {
    const head = pdu[pos++] ?? 0;
    let delta = head >> 4;
    let length = head & 0x0f;
    const extend = (nibble: number): number | undefined => {
      if (nibble === 13) return 13 + (pdu[pos++] ?? 0);
      if (nibble === 14) {
        const value = 269 + pdu.readUInt16BE(pos);
        pos += 2;
        return value;
      }
      return nibble === 15 ? undefined : nibble;
    };
    const fullDelta = extend(delta);
    const fullLength = extend(length);
    if (fullDelta === undefined || fullLength === undefined || pos + fullLength > pdu.length) return undefined;
    delta = fullDelta;
    length = fullLength;
    number += delta;
    const value = pdu.subarray(pos, pos + length);
    pos += length;
    if (number === OPTION_URI_PATH) segments.push(value.toString('utf8'));
    if (number === OPTION_BLOCK2) block = value.length ? value.readUIntBE(0, value.length) >> 4 : 0;
  }
  return { type, code, messageId, path: `/${segments.join('/')}`, ...(block === undefined ? {} : { block }) };
}
