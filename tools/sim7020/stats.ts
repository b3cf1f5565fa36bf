// Counters of the simulated SIM7020E: datagrams and bytes that would go on air,
// AT commands, resets, and a model of the time the radio would stay connected.

/** UDP header (RFC 768) and IPv4 header without options (RFC 791), in bytes. */
export const UDP_HEADER_BYTES = 8;
export const IPV4_HEADER_BYTES = 20;

export interface TrafficCounters {
  datagrams: number;
  /** CoAP message bytes, the UDP payload. */
  coapBytes: number;
  /** coapBytes plus UDP and IPv4 headers for each datagram. */
  ipBytes: number;
}

export interface ContextStats {
  /** Context id from +CCOAPNEW. AT+CCOAPDEL frees an id for reuse. */
  id: number;
  /** "address:port" of the CoAP server. */
  target: string;
  uplink: TrafficCounters;
  downlink: TrafficCounters;
}

/**
 * Radio-connected time, a model and not a measurement of PSM: the radio connects at
 * the first datagram after idle and stays connected until the last datagram plus the
 * network's inactivity timer. Each such stretch is one session.
 */
export interface RadioStats {
  sessions: number;
  connectedMs: number;
  /** True while the inactivity timer of the last session has not run out. */
  connectedNow: boolean;
}

export interface PowerSavingSettings {
  /** Last AT+CPSMS: mode and the raw 8-bit strings, with their decoded values in seconds. */
  psm: {
    mode: number;
    periodicTau: string;
    activeTime: string;
    periodicTauS: number | null;
    activeTimeS: number | null;
  } | null;
  /** Last AT+CEDRXS: mode, access technology type (5 = NB-S1) and the 4-bit value. */
  edrx: { mode: number; actType: number; value: string } | null;
}

export interface SimStats {
  uplink: TrafficCounters;
  downlink: TrafficCounters;
  /** Every context opened since the counters were last reset, in opening order. */
  contexts: ContextStats[];
  /** Uplink datagrams that went on air and were then lost by the loss fault. */
  uplinkLost: number;
  /** Downlink datagrams dropped by the loss fault before reaching the modem. */
  downlinkLost: number;
  uplinkDuplicated: number;
  downlinkDuplicated: number;
  /** Downlink datagrams handed to the UART with one byte changed by the corruption fault. */
  downlinkCorrupted: number;
  /** Command lines executed, without blank lines and lines received while the modem was not responding. */
  atCommands: number;
  /** Modem resets by the reset fault or resetModem(). PWRKEY and power cuts do not count. */
  resets: number;
  powerOns: number;
  radio: RadioStats;
  powerSaving: PowerSavingSettings;
}

export function emptyCounters(): TrafficCounters {
  return { datagrams: 0, coapBytes: 0, ipBytes: 0 };
}

export function addDatagram(counters: TrafficCounters, coapBytes: number): void {
  counters.datagrams += 1;
  counters.coapBytes += coapBytes;
  counters.ipBytes += coapBytes + UDP_HEADER_BYTES + IPV4_HEADER_BYTES;
}

export class RadioModel {
  private sessions = 0;
  private closedMs = 0;
  private sessionStartMs: number | null = null;
  private lastActivityMs = 0;

  constructor(private readonly inactivityTimerMs: number) {}

  activity(nowMs: number): void {
    const idle = this.sessionStartMs === null || nowMs > this.lastActivityMs + this.inactivityTimerMs;
    if (idle) {
      if (this.sessionStartMs !== null) {
        this.closedMs += this.lastActivityMs - this.sessionStartMs + this.inactivityTimerMs;
      }
      this.sessionStartMs = nowMs;
      this.sessions += 1;
    }
    this.lastActivityMs = nowMs;
  }

  snapshot(nowMs: number): RadioStats {
    if (this.sessionStartMs === null) {
      return { sessions: 0, connectedMs: 0, connectedNow: false };
    }
    const openMs = this.lastActivityMs - this.sessionStartMs + this.inactivityTimerMs;
    return {
      sessions: this.sessions,
      connectedMs: this.closedMs + openMs,
      connectedNow: nowMs <= this.lastActivityMs + this.inactivityTimerMs,
    };
  }
}

/**
 * Decodes a T3412 extended value (GPRS Timer 3, 3GPP TS 24.008 table 10.5.163a, as
 * summarized in Nordic's nRF91 +CPSMS reference): bits 8..6 select the unit, bits 5..1
 * the multiplier. Returns null when deactivated or not 8 binary digits.
 */
export function decodePeriodicTauS(bits: string): number | null {
  const unitsS = [600, 3600, 36_000, 2, 30, 60, 1_152_000];
  return decodeTimer(bits, unitsS);
}

/**
 * Decodes a T3324 value (GPRS Timer 2, 3GPP TS 24.008 table 10.5.163): units 2 s,
 * 1 min and 6 min. The table defines the other units as 1 min.
 */
export function decodeActiveTimeS(bits: string): number | null {
  const unitsS = [2, 60, 360, 60, 60, 60, 60];
  return decodeTimer(bits, unitsS);
}

function decodeTimer(bits: string, unitsS: number[]): number | null {
  if (!/^[01]{8}$/.test(bits)) {
    return null;
  }
  const value = Number.parseInt(bits, 2);
  const unit = value >> 5;
  if (unit === 7) {
    return null;
  }
  return (value & 0x1f) * unitsS[unit]!;
}
