// SIM7020E NB-IoT modem model, seen from the Pico's UART0: AT command parser with
// echo, power states driven by PWRKEY on GP14, and CoAP contexts whose datagrams
// travel over real UDP sockets on 127.0.0.1. Like the real modem it is a UDP pipe,
// so it never parses, retransmits or deduplicates CoAP messages. Faults and counters
// serve tests and benchmarks. docs/sim7020.md lists every command and reply.

import * as replies from './at-replies.ts';
import { isIpv4, parseCommand, parseInteger, splitArgs } from './at-parse.ts';
import { CoapContext } from './coap-context.ts';
import { FaultInjector, type Sim7020Faults } from './faults.ts';
import {
  RadioModel,
  addDatagram,
  decodeActiveTimeS,
  decodePeriodicTauS,
  emptyCounters,
  type PowerSavingSettings,
  type SimStats,
} from './stats.ts';
import type { UartPeer } from './uart-peer.ts';

/** Pico GPIO wired to the SIM7020E PWRKEY (through a transistor, so high = pressed). */
export const PWRKEY_PIN = 14;

/**
 * Maximum CoAP datagram AT+CCOAPSEND accepts, in bytes. Kampi/ESP32-SIM70XX
 * (SIM7020_CoAP_Transmit) rejects more than 512. The manual's own limit is unknown.
 */
export const MAX_SEND_BYTES = 512;

/** Maximum command line length in characters (assumed). A 512-byte AT+CCOAPSEND needs about 1050. */
export const MAX_COMMAND_LINE_CHARS = 2048;

export type PowerState = 'off' | 'booting' | 'on' | 'hung';

export interface Sim7020Options {
  /** Shortest PWRKEY high pulse in ms that toggles power. Default 800. */
  pwrkeyMinMs?: number;
  /** Time in ms from power-on (or reset) until the modem responds to AT. Default 2000 (estimate). */
  bootDelayMs?: number;
  /** Modem already on and attached, as after a Pico reset. Default false. */
  startOn?: boolean;
  /** Echo state when startOn is true. Default true. Every boot turns echo on. */
  echo?: boolean;
  /** Time in ms from boot or AT+CFUN=1 until the network attach completes. Default 1000. */
  networkAttachDelayMs?: number;
  /** Names AT+CDNSGIP resolves. */
  dns?: Record<string, string>;
  /** Delay in ms before a +CDNSGIP URC. Default 0. */
  dnsDelayMs?: number;
  /** Addresses AT+CCOAPNEW accepts. Default ["127.0.0.1"], so no datagram leaves loopback. */
  allowedTargets?: string[];
  /**
   * Delay in ms between a command's echo and its replies. Default 0. URCs that arrive
   * meanwhile come out between the two, as on the real modem.
   */
  commandDelayMs?: number;
  /** Network inactivity timer in ms for the radio-connected model. Default 20000 (estimate). */
  inactivityTimerMs?: number;
  /** Values AT+CSQ reports. Default rssi 20, ber 99. */
  signal?: { rssi: number; ber: number };
  /** Registration AT+CEREG? reports once attached. Default "home". */
  registration?: 'home' | 'roaming';
  /** Quote the hex of +CCOAPNMI. Default false, as the TinyGSM SIM7020E driver expects. */
  quoteNmiHex?: boolean;
  /** Contexts open at once. Default 4 (assumed). */
  maxContexts?: number;
  /** Initial fault switches. */
  faults?: Sim7020Faults;
  /** Clock in ms for PWRKEY pulse lengths and the radio model. Default performance.now. */
  now?: () => number;
  /** Receives one line per command, reply, URC, datagram and fault. */
  logger?: (line: string) => void;
}

interface CommandResult {
  lines: string[];
  final: string;
  /** Runs right after the final result code went out. */
  after?: () => void;
}

const OK: CommandResult = { lines: [], final: replies.RESULT_OK };
const ERROR: CommandResult = { lines: [], final: replies.RESULT_ERROR };

/** 3GPP TS 27.007 +CEREG <stat> values. */
const REG_NOT_SEARCHING = 0;
const REG_HOME = 1;
const REG_SEARCHING = 2;
const REG_ROAMING = 5;

export class Sim7020Simulator implements UartPeer {
  private readonly options: Required<Omit<Sim7020Options, 'faults' | 'logger'>>;
  private readonly log: (line: string) => void;
  private readonly listeners: ((data: Uint8Array) => void)[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly injector = new FaultInjector();

  private powerState: PowerState = 'off';
  /** Bumped on every power change, so replies and URCs of an earlier life are dropped. */
  private epoch = 0;
  private echo = true;
  private inputLine = '';
  private inputOverflow = false;
  private readonly commandQueue: string[] = [];
  private busy = false;

  private functionality = 1;
  private attached = false;
  private attachTimer: NodeJS.Timeout | null = null;
  private ceregMode = 0;
  private apn = '';
  private readonly contexts = new Map<number, CoapContext>();
  private readonly closing = new Set<Promise<void>>();
  private powerSaving: PowerSavingSettings = { psm: null, edrx: null };

  private pwrkeyLevel = 0;
  private pwrkeyHighSinceMs = 0;

  private counters = this.freshCounters();
  private radio: RadioModel;

  constructor(options: Sim7020Options = {}) {
    this.options = {
      pwrkeyMinMs: options.pwrkeyMinMs ?? 800,
      bootDelayMs: options.bootDelayMs ?? 2000,
      startOn: options.startOn ?? false,
      echo: options.echo ?? true,
      networkAttachDelayMs: options.networkAttachDelayMs ?? 1000,
      dns: options.dns ?? {},
      dnsDelayMs: options.dnsDelayMs ?? 0,
      allowedTargets: options.allowedTargets ?? ['127.0.0.1'],
      commandDelayMs: options.commandDelayMs ?? 0,
      inactivityTimerMs: options.inactivityTimerMs ?? 20_000,
      signal: options.signal ?? { rssi: 20, ber: 99 },
      registration: options.registration ?? 'home',
      quoteNmiHex: options.quoteNmiHex ?? false,
      maxContexts: options.maxContexts ?? 4,
      now: options.now ?? (() => performance.now()),
    };
    this.log = options.logger ?? (() => undefined);
    this.radio = new RadioModel(this.options.inactivityTimerMs);
    this.injector.faults = options.faults ?? {};
    if (this.options.startOn) {
      this.powerState = 'on';
      this.echo = this.options.echo;
      this.attached = true;
    }
  }

  // ---- UartPeer ----

  receiveFromPico(data: Uint8Array): void {
    if (this.powerState !== 'on') {
      this.log(`uart: ${data.length} bytes ignored, modem ${this.powerState}`);
      return;
    }
    for (const byte of data) {
      if (byte === 0x0d) {
        this.completeLine();
      } else if (byte === 0x0a) {
        // A command ends with CR, so an LF that some drivers add is ignored.
      } else if (this.inputLine.length >= MAX_COMMAND_LINE_CHARS) {
        this.inputOverflow = true;
      } else {
        this.inputLine += String.fromCharCode(byte);
      }
    }
  }

  onTransmit(listener: (data: Uint8Array) => void): void {
    this.listeners.push(listener);
  }

  setPin(pin: number, value: number): void {
    if (pin !== PWRKEY_PIN) {
      return;
    }
    const level = value ? 1 : 0;
    if (level === this.pwrkeyLevel) {
      return;
    }
    this.pwrkeyLevel = level;
    const nowMs = this.options.now();
    if (level === 1) {
      this.pwrkeyHighSinceMs = nowMs;
      return;
    }
    const heldMs = nowMs - this.pwrkeyHighSinceMs;
    if (heldMs < this.options.pwrkeyMinMs) {
      this.log(`pwrkey: pulse of ${heldMs.toFixed(0)} ms ignored, shorter than ${this.options.pwrkeyMinMs} ms`);
      return;
    }
    if (this.powerState === 'off') {
      this.log('pwrkey: power on');
      this.powerOn();
    } else {
      this.log(`pwrkey: power off (was ${this.powerState})`);
      this.powerOff();
    }
  }

  powerCut(): void {
    this.log('power cut: modem off');
    this.pwrkeyLevel = 0;
    this.powerOff();
  }

  // ---- test and benchmark controls ----

  get state(): PowerState {
    return this.powerState;
  }

  get echoEnabled(): boolean {
    return this.echo;
  }

  get faults(): Sim7020Faults {
    return this.injector.faults;
  }

  /** Local UDP port of an open context, so a test can send it unsolicited datagrams. */
  localPortOf(contextId: number): number | undefined {
    return this.contexts.get(contextId)?.localPort;
  }

  /** Replaces every fault switch (see Sim7020Faults). */
  set faults(faults: Sim7020Faults) {
    this.injector.faults = faults;
  }

  /** Resets the modem now: contexts close, it stays silent for bootDelayMs, then responds with echo on. */
  resetModem(): void {
    this.log('fault: modem reset');
    this.counters.resets += 1;
    this.powerOff();
    this.powerOn();
  }

  /** Makes the modem stop responding until a PWRKEY pulse or a power cut turns it off. */
  hang(): void {
    this.log('fault: modem hangs');
    this.shutDown('hung');
  }

  stats(): SimStats {
    return {
      ...structuredClone(this.counters),
      radio: this.radio.snapshot(this.options.now()),
      powerSaving: structuredClone(this.powerSaving),
    };
  }

  /** Zeroes every counter and the radio model. Open contexts restart from zero. */
  resetStats(): void {
    this.counters = this.freshCounters();
    for (const context of this.contexts.values()) {
      context.stats.uplink = emptyCounters();
      context.stats.downlink = emptyCounters();
      this.counters.contexts.push(context.stats);
    }
    this.radio = new RadioModel(this.options.inactivityTimerMs);
  }

  /** Turns the modem off, cancels every timer and waits until all sockets are closed. */
  async close(): Promise<void> {
    this.powerOff();
    for (const timer of this.timers) {
      clearTimeout(timer);
    }
    this.timers.clear();
    await Promise.all([...this.closing]);
  }

  // ---- power ----

  private powerOn(): void {
    this.epoch += 1;
    this.powerState = 'booting';
    this.counters.powerOns += 1;
    const epoch = this.epoch;
    this.schedule(this.options.bootDelayMs, () => {
      if (epoch !== this.epoch) {
        return;
      }
      this.powerState = 'on';
      this.echo = true;
      this.functionality = 1;
      this.log('modem ready');
      this.startAttach();
    });
  }

  private powerOff(): void {
    this.shutDown('off');
  }

  private shutDown(state: 'off' | 'hung'): void {
    this.epoch += 1;
    this.powerState = state;
    this.inputLine = '';
    this.inputOverflow = false;
    this.commandQueue.length = 0;
    this.busy = false;
    this.detach();
    this.closeAllContexts();
  }

  private startAttach(): void {
    this.detach();
    this.attachTimer = this.schedule(this.options.networkAttachDelayMs, () => {
      this.attachTimer = null;
      this.attached = true;
      this.log('network attached');
    });
  }

  private detach(): void {
    if (this.attachTimer !== null) {
      clearTimeout(this.attachTimer);
      this.timers.delete(this.attachTimer);
      this.attachTimer = null;
    }
    this.attached = false;
  }

  private closeAllContexts(): void {
    for (const context of this.contexts.values()) {
      this.closeContext(context);
    }
  }

  private closeContext(context: CoapContext): void {
    this.contexts.delete(context.id);
    const closed = context.close();
    this.closing.add(closed);
    void closed.then(() => this.closing.delete(closed));
  }

  // ---- UART output and command loop ----

  private transmit(text: string): void {
    const bytes = new Uint8Array(Buffer.from(text, 'latin1'));
    for (const listener of this.listeners) {
      listener(bytes);
    }
  }

  private sendLine(text: string): void {
    this.log(`modem: ${text}`);
    this.transmit(replies.frameLine(text));
  }

  private completeLine(): void {
    const line = this.inputLine;
    const overflow = this.inputOverflow;
    this.inputLine = '';
    this.inputOverflow = false;
    // NOTE: the whole line is echoed when CR arrives, but the real modem echoes each character as it comes.
    if (this.echo) {
      this.transmit(`${line}\r`);
    }
    if (overflow) {
      this.log(`uart: command line longer than ${MAX_COMMAND_LINE_CHARS} characters rejected`);
      this.commandQueue.push('');
    } else if (line.trim() === '') {
      return;
    } else {
      this.commandQueue.push(line);
    }
    void this.pump();
  }

  /** Runs queued commands one at a time, so replies never overlap. */
  private async pump(): Promise<void> {
    if (this.busy) {
      return;
    }
    this.busy = true;
    const epoch = this.epoch;
    while (this.commandQueue.length > 0 && epoch === this.epoch) {
      const line = this.commandQueue.shift()!;
      await this.runCommand(line, epoch);
    }
    if (epoch === this.epoch) {
      this.busy = false;
    }
  }

  private async runCommand(line: string, epoch: number): Promise<void> {
    let result: CommandResult;
    if (line === '') {
      result = ERROR;
    } else {
      this.counters.atCommands += 1;
      this.log(`pico: ${line}`);
      const injected = this.injector.errorReplyFor(line);
      if (injected !== undefined) {
        this.log(`fault: ${injected.cme === undefined ? 'ERROR' : `+CME ERROR: ${injected.cme}`} for ${line}`);
        result = { lines: [], final: injected.cme === undefined ? replies.RESULT_ERROR : replies.cmeError(injected.cme) };
      } else {
        result = await this.execute(line);
      }
    }
    if (this.options.commandDelayMs > 0) {
      await new Promise<void>((resolve) => this.schedule(this.options.commandDelayMs, resolve));
    }
    if (epoch !== this.epoch) {
      return;
    }
    for (const text of result.lines) {
      this.sendLine(text);
    }
    this.sendLine(result.final);
    result.after?.();
  }

  // ---- commands ----

  private execute(line: string): CommandResult | Promise<CommandResult> {
    const { key, args } = parseCommand(line);
    switch (key) {
      case 'AT':
        return OK;
      case 'ATE':
      case 'ATE0':
        this.echo = false;
        return OK;
      case 'ATE1':
        this.echo = true;
        return OK;
      case 'AT+CPIN?':
        return { lines: [replies.cpinReady()], final: replies.RESULT_OK };
      case 'AT+CSQ':
        return this.signalQuality();
      case 'AT+CFUN=':
        return this.setFunctionality(args);
      case 'AT+CFUN?':
        return { lines: [replies.cfun(this.functionality)], final: replies.RESULT_OK };
      case 'AT*MCGDEFCONT=':
        return this.defineDefaultContext(args);
      case 'AT+CGATT?':
        return { lines: [replies.cgatt(this.attached)], final: replies.RESULT_OK };
      case 'AT+CEREG=':
        return this.setRegistrationMode(args);
      case 'AT+CEREG?':
        return { lines: [replies.cereg(this.ceregMode, this.registrationStatus())], final: replies.RESULT_OK };
      case 'AT+CGCONTRDP':
        return this.contextReadDynamicParameters();
      case 'AT+CDNSGIP=':
        return this.resolveName(args);
      case 'AT+CCOAPNEW=':
        return this.openContext(args);
      case 'AT+CCOAPSEND=':
        return this.sendDatagram(args);
      case 'AT+CCOAPDEL=':
        return this.deleteContext(args);
      case 'AT+CPSMS=':
        return this.setPsm(args);
      case 'AT+CPSMS?':
        return this.readPsm();
      case 'AT+CEDRXS=':
        return this.setEdrx(args);
      case 'AT+CEDRXS?':
        return this.readEdrx();
      default:
        this.log(`modem: unknown command ${line}`);
        return ERROR;
    }
  }

  private signalQuality(): CommandResult {
    const { rssi, ber } = this.functionality === 1 ? this.options.signal : { rssi: 99, ber: 99 };
    return { lines: [replies.csq(rssi, ber)], final: replies.RESULT_OK };
  }

  private setFunctionality(args: string): CommandResult {
    const fun = parseInteger(splitArgs(args)[0]);
    if (fun !== 0 && fun !== 1) {
      return ERROR;
    }
    if (fun === 0) {
      this.functionality = 0;
      this.detach();
      this.closeAllContexts();
    } else if (this.functionality !== 1) {
      this.functionality = 1;
      this.startAttach();
    }
    return OK;
  }

  private defineDefaultContext(args: string): CommandResult {
    const [pdpType, apn] = splitArgs(args);
    if (pdpType?.toUpperCase() !== 'IP' || apn === undefined) {
      return ERROR;
    }
    // NOTE: accepted at any functionality level. Whether the SIM7020 needs AT+CFUN=0 first is unknown.
    this.apn = apn;
    return OK;
  }

  private setRegistrationMode(args: string): CommandResult {
    const mode = parseInteger(splitArgs(args)[0]);
    if (mode === null || mode > 5) {
      return ERROR;
    }
    // NOTE: the mode is stored and echoed by AT+CEREG?, but no +CEREG URCs are sent.
    this.ceregMode = mode;
    return OK;
  }

  private registrationStatus(): number {
    if (this.attached) {
      return this.options.registration === 'roaming' ? REG_ROAMING : REG_HOME;
    }
    return this.functionality === 1 ? REG_SEARCHING : REG_NOT_SEARCHING;
  }

  private contextReadDynamicParameters(): CommandResult {
    if (!this.attached) {
      return OK;
    }
    const apn = this.apn === '' ? 'nbiot' : this.apn;
    return { lines: [replies.cgcontrdp(1, 5, apn, '10.0.0.2')], final: replies.RESULT_OK };
  }

  private resolveName(args: string): CommandResult {
    const [host] = splitArgs(args);
    if (host === undefined || host === '' || !this.attached) {
      return ERROR;
    }
    // NOTE: an IPv4 literal resolves to itself here. What the SIM7020 does with one is unknown.
    const ip = isIpv4(host) ? host : this.options.dns[host];
    const urc = ip === undefined ? replies.cdnsgipFailed(replies.DNS_ERROR_NOT_FOUND) : replies.cdnsgipResolved(host, ip);
    const epoch = this.epoch;
    return {
      lines: [],
      final: replies.RESULT_OK,
      after: () => {
        this.schedule(this.options.dnsDelayMs, () => {
          if (epoch === this.epoch) {
            this.sendLine(urc);
          }
        });
      },
    };
  }

  private async openContext(args: string): Promise<CommandResult> {
    const [address, portText, cidText] = splitArgs(args);
    const port = parseInteger(portText);
    const cid = parseInteger(cidText);
    if (address === undefined || !isIpv4(address) || port === null || port < 1 || port > 65535) {
      return ERROR;
    }
    if (cid === null || cid > 10) {
      return ERROR;
    }
    if (!this.options.allowedTargets.includes(address)) {
      this.log(`modem: AT+CCOAPNEW to ${address} rejected, allowed targets are ${this.options.allowedTargets.join(', ')}`);
      return ERROR;
    }
    if (!this.attached || this.contexts.size >= this.options.maxContexts) {
      return ERROR;
    }

    let id = 1;
    while (this.contexts.has(id)) {
      id += 1;
    }
    const epoch = this.epoch;
    const context = await CoapContext.open(
      id,
      address,
      port,
      (from, payload) => this.receiveDatagram(from, payload),
      (from, sender) => this.log(`udp: context ${from.id} dropped a datagram from ${sender}`),
    );
    if (epoch !== this.epoch || this.contexts.has(id)) {
      this.closeContext(context);
      return ERROR;
    }

    this.contexts.set(id, context);
    this.counters.contexts.push(context.stats);
    this.log(`udp: context ${id} open on port ${context.localPort} for ${address}:${port}`);
    return { lines: [replies.ccoapnew(id)], final: replies.RESULT_OK };
  }

  private sendDatagram(args: string): CommandResult {
    const [idText, lengthText, hex] = splitArgs(args);
    const context = this.contexts.get(parseInteger(idText) ?? -1);
    const length = parseInteger(lengthText);
    if (context === undefined || length === null || hex === undefined) {
      return ERROR;
    }
    if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
      return ERROR;
    }
    // <len> counts bytes, not hex characters, as the Kampi/ESP32-SIM70XX and TinyGSM
    // SIM7020E drivers send it. Rejecting a mismatch is assumed: no source shows what
    // the modem does with one.
    const payload = new Uint8Array(Buffer.from(hex, 'hex'));
    if (payload.length !== length || payload.length === 0 || payload.length > MAX_SEND_BYTES) {
      this.log(`modem: AT+CCOAPSEND rejected, <len> ${length}, hex holds ${payload.length} bytes, limit ${MAX_SEND_BYTES}`);
      return ERROR;
    }
    if (!this.attached) {
      return ERROR;
    }
    this.transmitUplink(context, payload);
    const resetNow = this.injector.countSendAndCheckReset();
    return { lines: [], final: replies.RESULT_OK, after: resetNow ? () => this.resetModem() : undefined };
  }

  private deleteContext(args: string): CommandResult {
    const context = this.contexts.get(parseInteger(splitArgs(args)[0]) ?? -1);
    if (context === undefined) {
      return ERROR;
    }
    this.closeContext(context);
    return OK;
  }

  private setPsm(args: string): CommandResult {
    const values = splitArgs(args);
    const mode = parseInteger(values[0]);
    if (mode === null || mode > 2) {
      return ERROR;
    }
    const periodicTau = values[3] ?? '';
    const activeTime = values[4] ?? '';
    this.powerSaving.psm = {
      mode,
      periodicTau,
      activeTime,
      periodicTauS: decodePeriodicTauS(periodicTau),
      activeTimeS: decodeActiveTimeS(activeTime),
    };
    return OK;
  }

  private readPsm(): CommandResult {
    const psm = this.powerSaving.psm;
    const line = psm === null ? replies.cpsms(0, '', '') : replies.cpsms(psm.mode, psm.periodicTau, psm.activeTime);
    return { lines: [line], final: replies.RESULT_OK };
  }

  private setEdrx(args: string): CommandResult {
    const values = splitArgs(args);
    const mode = parseInteger(values[0]);
    const actType = values[1] === undefined ? 5 : parseInteger(values[1]);
    if (mode === null || mode > 3 || actType === null) {
      return ERROR;
    }
    this.powerSaving.edrx = { mode, actType, value: values[2] ?? '' };
    return OK;
  }

  private readEdrx(): CommandResult {
    const edrx = this.powerSaving.edrx;
    const lines = edrx === null || edrx.mode === 0 || edrx.mode === 3 ? [] : [replies.cedrxs(edrx.actType, edrx.value)];
    return { lines, final: replies.RESULT_OK };
  }

  // ---- datagrams ----

  private transmitUplink(context: CoapContext, payload: Uint8Array): void {
    addDatagram(context.stats.uplink, payload.length);
    addDatagram(this.counters.uplink, payload.length);
    this.radio.activity(this.options.now());
    if (this.injector.uplinkLost()) {
      this.counters.uplinkLost += 1;
      this.log(`fault: uplink datagram of ${payload.length} bytes lost on context ${context.id}`);
      return;
    }
    const copies = this.injector.uplinkCopies();
    if (copies > 1) {
      this.counters.uplinkDuplicated += copies - 1;
      this.log(`fault: uplink datagram duplicated on context ${context.id}`);
    }
    for (let i = 0; i < copies; i++) {
      this.afterDelay(this.injector.uplinkLatencyMs, () => {
        // NOTE: a datagram still delayed when its context closes is dropped, though a real network would deliver it.
        if (context.send(payload)) {
          this.log(`udp: context ${context.id} sent ${payload.length} bytes`);
        }
      });
    }
  }

  private receiveDatagram(context: CoapContext, payload: Uint8Array): void {
    if (this.injector.downlinkLost()) {
      this.counters.downlinkLost += 1;
      this.log(`fault: downlink datagram of ${payload.length} bytes lost on context ${context.id}`);
      return;
    }
    const copies = this.injector.downlinkCopies();
    if (copies > 1) {
      this.counters.downlinkDuplicated += copies - 1;
      this.log(`fault: downlink datagram duplicated on context ${context.id}`);
    }
    for (let i = 0; i < copies; i++) {
      this.afterDelay(this.injector.downlinkLatencyMs, () => this.deliverDownlink(context, payload));
    }
  }

  private deliverDownlink(context: CoapContext, payload: Uint8Array): void {
    if (!context.open || this.powerState !== 'on' || this.contexts.get(context.id) !== context) {
      this.log(`udp: datagram for closed context ${context.id} dropped`);
      return;
    }
    addDatagram(context.stats.downlink, payload.length);
    addDatagram(this.counters.downlink, payload.length);
    this.radio.activity(this.options.now());
    let delivered = payload;
    if (this.injector.downlinkCorrupted() && payload.length > 0) {
      delivered = Uint8Array.from(payload);
      delivered[delivered.length - 1]! ^= 0x01;
      this.counters.downlinkCorrupted += 1;
      this.log(`fault: last byte of a ${payload.length}-byte downlink datagram flipped on context ${context.id}`);
    }
    this.sendLine(replies.ccoapnmi(context.id, delivered, this.options.quoteNmiHex));
  }

  // ---- timers ----

  private schedule(delayMs: number, callback: () => void): NodeJS.Timeout {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      callback();
    }, delayMs);
    this.timers.add(timer);
    return timer;
  }

  /** Runs now when the delay is 0, so undelayed traffic keeps its order and timing. */
  private afterDelay(delayMs: number, callback: () => void): void {
    if (delayMs <= 0) {
      callback();
    } else {
      this.schedule(delayMs, callback);
    }
  }

  private freshCounters(): Omit<SimStats, 'radio' | 'powerSaving'> {
    return {
      uplink: emptyCounters(),
      downlink: emptyCounters(),
      contexts: [],
      uplinkLost: 0,
      downlinkLost: 0,
      uplinkDuplicated: 0,
      downlinkDuplicated: 0,
      downlinkCorrupted: 0,
      atCommands: 0,
      resets: 0,
      powerOns: 0,
    };
  }
}
