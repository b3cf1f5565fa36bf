// Switchable faults of the simulated SIM7020E and the seeded random source behind
// the probabilistic ones, so a run with the same seed and the same traffic loses and
// duplicates the same datagrams.

/** An injected failure reply for commands that match. */
export interface ErrorFault {
  /**
   * Pattern of the failing commands. A string matches command lines that start with it
   * (case-insensitive, such as "AT+CCOAPSEND"). A RegExp is tested against the line.
   */
  match: string | RegExp;
  /** Reply `+CME ERROR: <cme>` instead of `ERROR`. */
  cme?: number;
  /** Number of matching commands that fail before this fault stops firing. Default: all. */
  count?: number;
  /** Chance 0..1 that a matching command fails. Default 1. */
  probability?: number;
}

/**
 * Fault switches. Uplink is Pico to network, downlink network to Pico. Assigning
 * `sim.faults` replaces all switches, restarts the random source from `seed` and
 * restarts the send count of `resetAfterSends`.
 */
export interface Sim7020Faults {
  errors?: ErrorFault[];
  /** Chance 0..1 that an uplink datagram is lost after it went on air. */
  uplinkLoss?: number;
  /** Chance 0..1 that a downlink datagram never reaches the modem. */
  downlinkLoss?: number;
  /** Chance 0..1 that the network delivers an uplink datagram twice. */
  uplinkDuplicate?: number;
  /** Chance 0..1 that the modem receives a downlink datagram twice. */
  downlinkDuplicate?: number;
  /** Added one-way delay in ms for uplink datagrams. */
  uplinkLatencyMs?: number;
  /** Added one-way delay in ms for downlink datagrams. */
  downlinkLatencyMs?: number;
  /**
   * Downlink datagrams, numbered from 1 as the modem hands them to the UART, whose last
   * byte gets bit 0 flipped. The UART between modem and Pico has no parity or checksum,
   * so a line error arrives as a well-formed +CCOAPNMI with one wrong byte.
   */
  corruptDownlink?: number[];
  /** The modem resets right after the OK of this many further AT+CCOAPSEND commands (fires once). */
  resetAfterSends?: number;
  /** Seed of the random source (any 32-bit integer). Default 1. */
  seed?: number;
}

/** Marsaglia's xorshift32 generator: small, fast and reproducible, but not for cryptography. */
export class SeededRandom {
  private state: number;

  constructor(seed: number) {
    // Zero is a fixed point of xorshift, so it is replaced by a constant.
    this.state = seed >>> 0 || 0x9e3779b9;
  }

  /** Returns a number in [0, 1). */
  next(): number {
    let x = this.state;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    this.state = x;
    return x / 0x1_0000_0000;
  }

  /** Returns true with the given probability. It draws no number when the probability is 0 or 1. */
  chance(probability: number | undefined): boolean {
    if (probability === undefined || probability <= 0) {
      return false;
    }
    if (probability >= 1) {
      return true;
    }
    return this.next() < probability;
  }
}

/** Holds the active faults and decides, command by command and datagram by datagram. */
export class FaultInjector {
  private config: Sim7020Faults = {};
  private remaining: (number | undefined)[] = [];
  private random = new SeededRandom(1);
  private sendsLeftBeforeReset: number | undefined;
  private downlinkDelivered = 0;

  get faults(): Sim7020Faults {
    return this.config;
  }

  set faults(config: Sim7020Faults) {
    this.config = { ...config, errors: config.errors?.map((fault) => ({ ...fault })) };
    this.remaining = (config.errors ?? []).map((fault) => fault.count);
    this.random = new SeededRandom(config.seed ?? 1);
    this.sendsLeftBeforeReset = config.resetAfterSends;
    this.downlinkDelivered = 0;
  }

  /** Returns the final result code to reply instead of running the command, or undefined. */
  errorReplyFor(commandLine: string): { cme?: number } | undefined {
    const errors = this.config.errors ?? [];
    for (let i = 0; i < errors.length; i++) {
      const fault = errors[i]!;
      if (!matches(fault.match, commandLine)) {
        continue;
      }
      const left = this.remaining[i];
      if (left !== undefined && left <= 0) {
        continue;
      }
      if (!this.random.chance(fault.probability ?? 1)) {
        continue;
      }
      if (left !== undefined) {
        this.remaining[i] = left - 1;
      }
      return fault.cme === undefined ? {} : { cme: fault.cme };
    }
    return undefined;
  }

  uplinkLost(): boolean {
    return this.random.chance(this.config.uplinkLoss);
  }

  downlinkLost(): boolean {
    return this.random.chance(this.config.downlinkLoss);
  }

  /** Counts one datagram handed to the UART and returns whether corruptDownlink names it. */
  downlinkCorrupted(): boolean {
    this.downlinkDelivered += 1;
    return this.config.corruptDownlink?.includes(this.downlinkDelivered) ?? false;
  }

  uplinkCopies(): number {
    return this.random.chance(this.config.uplinkDuplicate) ? 2 : 1;
  }

  downlinkCopies(): number {
    return this.random.chance(this.config.downlinkDuplicate) ? 2 : 1;
  }

  get uplinkLatencyMs(): number {
    return this.config.uplinkLatencyMs ?? 0;
  }

  get downlinkLatencyMs(): number {
    return this.config.downlinkLatencyMs ?? 0;
  }

  /** Counts one accepted AT+CCOAPSEND and returns true when the modem must reset now. */
  countSendAndCheckReset(): boolean {
    if (this.sendsLeftBeforeReset === undefined) {
      return false;
    }
    this.sendsLeftBeforeReset -= 1;
    if (this.sendsLeftBeforeReset > 0) {
      return false;
    }
    this.sendsLeftBeforeReset = undefined;
    return true;
  }
}

function matches(pattern: string | RegExp, commandLine: string): boolean {
  if (typeof pattern === 'string') {
    return commandLine.toUpperCase().startsWith(pattern.toUpperCase());
  }
  return pattern.test(commandLine);
}
