// Device-side figures: bytes on air and round trips for a check and for whole updates,
// counted by the SIM7020E simulator between a device and the real daemon, next to the
// HTTP/JSON/hex design of tools/bench/original-design.ts computed on the same code.
//
// The device here is a small TypeScript stand-in that drives the simulator with the AT
// commands and CoAP PDUs the firmware sends (firmware/ota.py and coap_client.py): a
// 4-byte token, POST /c with Content-Format 60 and {0: id, 1: version, 3: inline SZX 5},
// no download when the answer carries the payload (manifest key 7), else GET /d/<id>
// with Block2 at the firmware's default 512-byte blocks, 4 in flight, and an empty Size2
// on block 0, and POST /r for the installed and confirmed reports.
// NOTE: the device heap high-water mark needs the firmware on MicroPython (tools/harness);
// this file does not measure it.
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Decoder, Encoder } from 'cbor-x';
import pino from 'pino';
import { encodeMessage, MessageType, OptionNumber, decodeUint, encodeUint, parseDatagram, type CoapOption, type Datagram } from '../../src/coap/datagram.ts';
import { startServer } from '../../src/daemon/server.ts';
import { packBundle } from '../../src/protocol/bundle.ts';
import { CheckKey, ManifestKey } from '../../src/protocol/constants.ts';
import { downloadId, sha256 } from '../../src/protocol/manifest.ts';
import type { ReleaseRecord } from '../../src/storage/store.ts';
import { Sim7020Simulator } from '../sim7020/index.ts';
import { encodeBundle } from '../ota-tool/publish.ts';
import { originalCheckCost, originalUpdateCost } from './original-design.ts';
import type { Figure } from './report.ts';
import { benchPayload } from './server-process.ts';

const APPS_DIR = fileURLToPath(new URL('../../firmware/apps/', import.meta.url));
const DEVICE_ID = 'pico-001';
const FROM_VERSION = '1.0.0';
/** Block size the firmware requests by default (firmware/config.py, block_size 512): SZX 5. */
const FIRMWARE_SZX = 5;
/** Block2 requests in flight by default (firmware/config.py, block_window 4). */
const FIRMWARE_WINDOW = 4;
const TOKEN_BYTES = 4;
const REPLY_TIMEOUT_MS = 5000;
const OUTCOME_INSTALLED = 0;
const OUTCOME_CONFIRMED = 1;
/** NB-IoT round-trip times the radio-connected estimate is given for. */
const ROUND_TRIP_S = [1, 5];

const cborDecoder = new Decoder({ mapsAsObjects: false, useRecords: false });
const cbor = new Encoder({ useRecords: false, useTag259ForMaps: false } as ConstructorParameters<typeof Encoder>[0]);

interface Traffic {
  coapBytes: number;
  ipBytes: number;
  roundTrips: number;
}

interface PendingRequest {
  code: string;
  options: CoapOption[];
  payload?: Buffer;
}

/**
 * A device that speaks AT to the simulator and CoAP through it. A flight of requests
 * goes out back to back and costs one round trip on air, as the firmware's pipelined
 * Block2 requests do.
 */
class AtDevice {
  private readonly sim: Sim7020Simulator;
  private partial = '';
  private lines: string[] = [];
  private readonly datagrams: Datagram[] = [];
  private mid = 0x1000;
  private token = 0x0a0b0c00;
  roundTrips = 0;

  constructor(sim: Sim7020Simulator) {
    this.sim = sim;
    sim.onTransmit((data) => {
      this.partial += Buffer.from(data).toString('latin1');
      const complete = this.partial.split('\r\n');
      this.partial = complete.pop() ?? '';
      for (const line of complete) this.takeLine(line);
    });
  }

  private takeLine(line: string): void {
    const urc = /^\+CCOAPNMI: 1,\d+,"?([0-9a-fA-F]+)"?$/.exec(line);
    if (!urc) {
      if (line !== '') this.lines.push(line);
      return;
    }
    const parsed = parseDatagram(Buffer.from(urc[1]!, 'hex'));
    if (!parsed.ok) throw new Error(`the daemon sent a malformed response: ${parsed.reason}`);
    this.datagrams.push(parsed.datagram);
  }

  /** Sends one AT command and returns its lines up to the final OK. */
  private async command(line: string): Promise<string[]> {
    this.lines = [];
    this.sim.receiveFromPico(new Uint8Array(Buffer.from(`${line}\r`, 'latin1')));
    const deadline = Date.now() + REPLY_TIMEOUT_MS;
    for (;;) {
      if (this.lines.includes('OK')) return this.lines;
      if (this.lines.some((reply) => reply.includes('ERROR'))) throw new Error(`the modem returned ERROR for ${line.slice(0, 60)}`);
      if (Date.now() > deadline) throw new Error(`no OK within ${REPLY_TIMEOUT_MS} ms after ${line.slice(0, 60)}; got ${JSON.stringify(this.lines)}`);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  async open(port: number): Promise<void> {
    await this.command('ATE0');
    const lines = await this.command(`AT+CCOAPNEW="127.0.0.1",${port},1`);
    if (!lines.includes('+CCOAPNEW: 1')) throw new Error(`AT+CCOAPNEW returned ${JSON.stringify(lines)}, expected context 1`);
  }

  /** Sends the requests as CONs back to back and waits for every piggybacked response: one round trip. */
  async flight(requests: PendingRequest[]): Promise<Datagram[]> {
    const mids: number[] = [];
    for (const request of requests) {
      this.mid = (this.mid + 1) & 0xffff;
      this.token += 1;
      const token = Buffer.alloc(TOKEN_BYTES);
      token.writeUInt32BE(this.token >>> 0);
      const pdu = encodeMessage(MessageType.con, request.code, this.mid, token, request.options, request.payload ?? Buffer.alloc(0));
      mids.push(this.mid);
      await this.command(`AT+CCOAPSEND=1,${pdu.length},"${pdu.toString('hex')}"`);
    }
    const deadline = Date.now() + REPLY_TIMEOUT_MS;
    const answers = new Map<number, Datagram>();
    while (answers.size < mids.length) {
      for (const datagram of this.datagrams.splice(0)) {
        if (!mids.includes(datagram.mid)) throw new Error(`response has mid ${datagram.mid}, expected one of ${mids.join(', ')}`);
        answers.set(datagram.mid, datagram);
      }
      if (Date.now() > deadline) throw new Error(`${mids.length - answers.size} of ${mids.length} responses missing after ${REPLY_TIMEOUT_MS} ms`);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    this.roundTrips += 1;
    return mids.map((mid) => answers.get(mid)!);
  }

  async request(code: string, options: CoapOption[], payload: Buffer = Buffer.alloc(0)): Promise<Datagram> {
    const [answer] = await this.flight([{ code, options, payload }]);
    return answer!;
  }
}

const pathOptions = (...segments: string[]): CoapOption[] => segments.map((segment) => ({ number: OptionNumber.uriPath, value: Buffer.from(segment) }));
const cborFormat: CoapOption = { number: OptionNumber.contentFormat, value: encodeUint(60) };

/** The firmware's check: with 512-byte blocks it asks for payloads up to SZX 5 (512 bytes) inline. */
function checkBody(version: string): Buffer {
  return cbor.encode(new Map<number, unknown>([[CheckKey.deviceId, DEVICE_ID], [CheckKey.version, version], [CheckKey.inlineSzx, FIRMWARE_SZX]]));
}

function reportBody(running: string, outcome: number, target: string): Buffer {
  return cbor.encode(new Map<number, unknown>([[0, DEVICE_ID], [1, running], [2, outcome], [3, target]]));
}

/** Runs the device against a fresh daemon that holds one release, and returns what the simulator counted. */
async function measureUpdate(target: { version: string; files: Array<{ name: string; data: Buffer }> }, window: number): Promise<{
  check: Traffic;
  /** Check with an offer and the download: the steps the original design's update has. */
  update: Traffic;
  /** update plus the installed and confirmed reports, which the original design lacks. */
  withReports: Traffic;
  payloadBytes: number;
  encoding: string;
  code: Buffer;
}> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ota-bench-device-'));
  const server = await startServer({ dataDir: dir, logger: pino({ level: 'silent' }), coapPort: 0, bind: '127.0.0.1', adminPort: 0, adminToken: 'benchmark-admin-token-0123456789' });
  const sim = new Sim7020Simulator({ startOn: true, echo: false });
  try {
    const bundle = packBundle(target.files);
    const { encoding, payload } = encodeBundle(bundle, 'auto');
    const digest = sha256(payload);
    const record: ReleaseRecord = {
      version: target.version,
      channel: 'stable',
      notes: 'benchmark',
      encoding,
      rollout: 100,
      size: payload.length,
      sha256: digest.toString('hex'),
      // The daemon runs without a public key, so it stores this stand-in of the real 64 bytes.
      signature: Buffer.alloc(64, 0x5a).toString('hex'),
      downloadId: downloadId(digest),
      revoked: false,
      publishedAt: new Date(0).toISOString(),
    };
    await server.store.putRelease(record, payload);

    const device = new AtDevice(sim);
    await device.open(server.coapPort);
    sim.resetStats();
    const counted = (): Traffic => {
      const stats = sim.stats();
      return {
        coapBytes: stats.uplink.coapBytes + stats.downlink.coapBytes,
        ipBytes: stats.uplink.ipBytes + stats.downlink.ipBytes,
        roundTrips: device.roundTrips,
      };
    };

    const offer = await device.request('0.02', [...pathOptions('c'), cborFormat], checkBody(FROM_VERSION));
    if (offer.code !== '2.05' || offer.payload.length < 8) throw new Error(`check from ${FROM_VERSION} got ${offer.code} with no manifest`);
    const manifest = cborDecoder.decode(offer.payload) as Map<number, unknown>;
    const inline = manifest.get(ManifestKey.payload);
    let received = inline instanceof Uint8Array ? inline.length : 0;
    if (!(inline instanceof Uint8Array)) {
      // Flights of `window` consecutive blocks need as many round trips as the firmware's
      // sliding window on a lossless link: ceil(blocks / window).
      const blocks = Math.ceil(payload.length / (16 << FIRMWARE_SZX));
      for (let first = 0; first < blocks; first += window) {
        const flight: PendingRequest[] = [];
        for (let num = first; num < Math.min(first + window, blocks); num++) {
          const block = { number: OptionNumber.block2, value: encodeUint((num << 4) | FIRMWARE_SZX) };
          const options = [...pathOptions('d', record.downloadId), block];
          if (num === 0) options.push({ number: OptionNumber.size2, value: Buffer.alloc(0) });
          flight.push({ code: '0.01', options });
        }
        for (const [index, answer] of (await device.flight(flight)).entries()) {
          if (answer.code !== '2.05') throw new Error(`block ${first + index} of ${target.version} got ${answer.code}`);
          received += answer.payload.length;
        }
      }
    }
    if (received !== payload.length) throw new Error(`downloaded ${received} bytes of ${target.version}, expected ${payload.length}`);
    const update = counted();
    await device.request('0.02', [...pathOptions('r'), cborFormat], reportBody(FROM_VERSION, OUTCOME_INSTALLED, target.version));
    await device.request('0.02', [...pathOptions('r'), cborFormat], reportBody(target.version, OUTCOME_CONFIRMED, target.version));
    const withReports = counted();

    sim.resetStats();
    device.roundTrips = 0;
    const current = await device.request('0.02', [...pathOptions('c'), cborFormat], checkBody(target.version));
    if (current.payload.toString('hex') !== 'a0') throw new Error(`check from ${target.version} expected the empty map a0, got ${current.payload.toString('hex')}`);
    const check = counted();
    const code = Buffer.concat(target.files.map((file) => file.data));
    return { check, update, withReports, payloadBytes: payload.length, encoding, code };
  } finally {
    await sim.close();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
}

export async function deviceFigures(emit: (figure: Figure) => void): Promise<void> {
  const targets = [
    { label: 'example', version: '2.0.0', files: [{ name: 'app.py', data: readFileSync(path.join(APPS_DIR, '2.0.0', 'app.py')) }] },
    { label: 'example_3.0.0', version: '3.0.0', files: [{ name: 'app.py', data: readFileSync(path.join(APPS_DIR, '3.0.0', 'app.py')) }] },
    // Incompressible bytes, so the encoding stays raw and the release is 64 KiB on air too.
    { label: '64KiB', version: '4.0.0', files: [{ name: 'data.bin', data: benchPayload(64 * 1024 - 20, 64) }] },
  ];
  let first = true;
  for (const target of targets) {
    const measured = await measureUpdate(target, FIRMWARE_WINDOW);
    if (first) {
      // The check without an update is the same exchange for every target version.
      const original = originalCheckCost(DEVICE_ID, target.version, null);
      emit({ name: 'check.no_update.bytes', value: measured.check.coapBytes, unit: 'bytes', peer: 'original', peerValue: original.applicationBytes, ratio: measured.check.coapBytes / original.applicationBytes });
      emit({ name: 'check.no_update.ip_bytes', value: measured.check.ipBytes, unit: 'bytes', peer: 'original', peerValue: original.bytes, ratio: measured.check.ipBytes / original.bytes });
      emit({ name: 'check.no_update.round_trips', value: measured.check.roundTrips, unit: 'round trips', peer: 'original', peerValue: original.roundTrips, ratio: measured.check.roundTrips / original.roundTrips });
      first = false;
    }
    const original = originalUpdateCost(DEVICE_ID, FROM_VERSION, target.version, measured.code);
    const name = `update.${target.label}`;
    emit({ name: `${name}.bytes`, value: measured.update.ipBytes, unit: 'bytes', peer: 'original', peerValue: original.bytes, ratio: measured.update.ipBytes / original.bytes });
    emit({ name: `${name}.bytes_with_reports`, value: measured.withReports.ipBytes, unit: 'bytes', peer: 'original', peerValue: original.bytes, ratio: measured.withReports.ipBytes / original.bytes });
    emit({ name: `${name}.coap_bytes`, value: measured.update.coapBytes, unit: 'bytes', peer: 'original', peerValue: original.applicationBytes, ratio: measured.update.coapBytes / original.applicationBytes });
    emit({ name: `${name}.payload_bytes`, value: measured.payloadBytes, unit: `bytes (${measured.encoding})`, peer: 'code', peerValue: measured.code.length, ratio: measured.payloadBytes / measured.code.length });
    emit({ name: `${name}.round_trips`, value: measured.update.roundTrips, unit: 'round trips', peer: 'original', peerValue: original.roundTrips, ratio: measured.update.roundTrips / original.roundTrips });
    for (const roundTripS of ROUND_TRIP_S) {
      const ours = measured.update.roundTrips * roundTripS;
      const theirs = original.roundTrips * roundTripS;
      emit({ name: `${name}.radio_s.rtt_${roundTripS}s`, value: ours, unit: 's', peer: 'original', peerValue: theirs, ratio: ours / theirs });
    }
    if (target.label === '64KiB') {
      // The same firmware with block_window 1: stop-and-wait Block2, RFC 7252's NSTART = 1.
      const stopAndWait = await measureUpdate(target, 1);
      const rounds = stopAndWait.update.roundTrips;
      emit({ name: `${name}.round_trips.window_1`, value: rounds, unit: 'round trips', peer: `window ${FIRMWARE_WINDOW}`, peerValue: measured.update.roundTrips, ratio: rounds / measured.update.roundTrips });
    }
  }
}
