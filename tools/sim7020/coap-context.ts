// One AT+CCOAPNEW context: a real UDP socket bound to 127.0.0.1 that carries raw
// CoAP datagrams to and from one server address. Like the modem it is only a pipe:
// it neither parses CoAP nor retransmits.

import dgram from 'node:dgram';

import { emptyCounters, type ContextStats } from './stats.ts';

export class CoapContext {
  readonly stats: ContextStats;
  private isOpen = true;
  /** Datagrams handed to the socket whose send has not completed yet. */
  private pendingSends = 0;
  private onSendsDrained: (() => void) | null = null;

  private constructor(
    readonly id: number,
    readonly address: string,
    readonly port: number,
    private readonly socket: dgram.Socket,
  ) {
    this.stats = { id, target: `${address}:${port}`, uplink: emptyCounters(), downlink: emptyCounters() };
  }

  /**
   * Binds a socket on 127.0.0.1 and an ephemeral port. onDatagram sees only datagrams
   * from the target address and port; onForeign sees the others, which a real
   * operator network would not deliver either.
   */
  static async open(
    id: number,
    address: string,
    port: number,
    onDatagram: (context: CoapContext, payload: Uint8Array) => void,
    onForeign: (context: CoapContext, from: string) => void,
  ): Promise<CoapContext> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ address: '127.0.0.1', port: 0 }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    const context = new CoapContext(id, address, port, socket);
    socket.on('message', (message, remote) => {
      if (!context.isOpen) {
        return;
      }
      if (remote.address !== address || remote.port !== port) {
        onForeign(context, `${remote.address}:${remote.port}`);
        return;
      }
      onDatagram(context, new Uint8Array(message));
    });
    // A send to a closed port on loopback can surface as an ICMP error event; the modem
    // reports nothing for it, so neither does the simulator.
    socket.on('error', () => undefined);
    return context;
  }

  get open(): boolean {
    return this.isOpen;
  }

  /** Local UDP port, so tests can tell which socket a datagram came from. */
  get localPort(): number {
    return this.socket.address().port;
  }

  /** Sends one datagram to the target; returns false when the context is closed. */
  send(payload: Uint8Array): boolean {
    if (!this.isOpen) {
      return false;
    }
    this.pendingSends += 1;
    this.socket.send(payload, this.port, this.address, () => {
      this.pendingSends -= 1;
      if (this.pendingSends === 0) {
        this.onSendsDrained?.();
      }
    });
    return true;
  }

  /**
   * Stops delivering datagrams at once and closes the socket once the datagrams already
   * sent have left, because dgram drops queued sends when its socket closes.
   */
  close(): Promise<void> {
    if (!this.isOpen) {
      return Promise.resolve();
    }
    this.isOpen = false;
    return new Promise((resolve) => {
      const closeSocket = () => this.socket.close(() => resolve());
      if (this.pendingSends === 0) {
        closeSocket();
      } else {
        this.onSendsDrained = closeSocket;
      }
    });
  }
}
