// Device-side figures: bytes on air and round trips for a check and for whole updates,
// counted by the SIM7020E simulator between a device and the real daemon, next to the
// HTTP/JSON/hex design of tools/bench/original-design.ts computed on the same code.
//
// The device here is a small TypeScript stand-in that drives the simulator with the AT
// commands and CoAP PDUs the firmware sends (firmware/ota.py and coap_client.py): a
// 4-byte token, POST /c with Content-Format 60 and {0: id, 1: version}, GET /d/<id>
// with Block2 at the firmware's default 512-byte blocks and an empty Size2 on block 0,
// and POST /r for the installed and confirmed reports.
// NOTE: the device heap high-water mark needs the firmware on MicroPython (tools/harness);
// this file does not measure it.
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Encoder } from 'cbor-x';
import pino from 'pino';
import { encodeMessage, MessageType, OptionNumber, decodeUint, encodeUint, parseDatagram, type CoapOption, type Datagram } from '../../src/coap/datagram.ts';
import { startServer } from '../../src/daemon/server.ts';
import { packBundle } from '../../src/protocol/bundle.ts';
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
const TOKEN_BYTES = 4;
const REPLY_TIMEOUT_MS = 5000;
const OUTCOME_INSTALLED = 0;
const OUTCOME_CONFIRMED = 1;
/** NB-IoT round-trip times the radio-connected estimate is given for. */
const ROUND_TRIP_S = [1, 5];

const cbor = new Encoder({ useRecords: false, useTag259ForMaps: false } as ConstructorParameters<typeof Encoder>[0]);

interface Traffic {
  coapBytes: number;
  ipBytes: number;
  roundTrips: number;
}

/** A device that speaks AT to the simulator and CoAP through it, one exchange at a time. */
class AtDevice {
  private readonly sim: Sim7020Simulator;
  private received = '';
  private mid = 0x1000;
  private token = 0x0a0b0c00;
  roundTrips = 0;

  constructor(sim: Sim7020Simulator) {
    this.sim = sim;
    sim.onTransmit((data) => {
      this.received += Buffer.from(data).toString('latin1');
    });
  }

  private async command(line: string, done: RegExp): Promise<string> {
    this.received = '';
    this.sim.receiveFromPico(new Uint8Array(Buffer.from(`${line}\r`, 'latin1')));
    const deadline = Date.now() + REPLY_TIMEOUT_MS;
    for (;;) {
      const match = done.exec(this.received);
      if (match) return match[0];
      if (/\r\nERROR\r\n/.test(this.received)) throw new Error(`the modem returned ERROR for ${line.slice(0, 60)}`);
      if (Date.now() > deadline) throw new Error(`no ${done} within ${REPLY_TIMEOUT_MS} ms after ${line.slice(0, 60)}; got ${JSON.stringify(this.received)}`);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  async open(port: number): Promise<void> {
    await this.command('ATE0', /OK\r\n/);
    await this.command(`AT+CCOAPNEW="127.0.0.1",${port},1`, /\+CCOAPNEW: 1\r\n[\s\S]*OK\r\n/);
  }

  /** Sends one CON request and waits for its piggybacked response: one round trip on air. */
  async request(code: string, options: CoapOption[], payload: Buffer = Buffer.alloc(0)): Promise<Datagram> {
    this.mid = (this.mid + 1) & 0xffff;
    this.token += 1;
    const token = Buffer.alloc(TOKEN_BYTES);
    token.writeUInt32BE(this.token >>> 0);
    const pdu = encodeMessage(MessageType.con, code, this.mid, token, options, payload);
    const urc = await this.command(`AT+CCOAPSEND=1,${pdu.length},"${pdu.toString('hex')}"`, /\+CCOAPNMI: 1,\d+,"?([0-9a-f]+)"?\r\n/);
    const hex = /\+CCOAPNMI: 1,\d+,"?([0-9a-f]+)"?/.exec(urc)![1]!;
    const parsed = parseDatagram(Buffer.from(hex, 'hex'));
    if (!parsed.ok) throw new Error(`the daemon sent a malformed response: ${parsed.reason}`);
    if (parsed.datagram.mid !== this.mid) throw new Error(`response has mid ${parsed.datagram.mid}, expected ${this.mid}`);
    this.roundTrips += 1;
    return parsed.datagram;
  }
}

const pathOptions = (...segments: string[]): CoapOption[] => segments.map((segment) => ({ number: OptionNumber.uriPath, value: Buffer.from(segment) }));
const cborFormat: CoapOption = { number: OptionNumber.contentFormat, value: encodeUint(60) };

function checkBody(version: string): Buffer {
  return cbor.encode(new Map<number, unknown>([[0, DEVICE_ID], [1, version]]));
}

function reportBody(running: string, outcome: number, target: string): Buffer {
  return cbor.encode(new Map<number, unknown>([[0, DEVICE_ID], [1, running], [2, outcome], [3, target]]));
}

/** Runs the device against a fresh daemon that holds one release, and returns what the simulator counted. */
async function measureUpdate(target: { version: string; files: Array<{ name: string; data: Buffer }> }): Promise<{
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
    let received = 0;
    for (let num = 0; ; num++) {
      const block = { number: OptionNumber.block2, value: encodeUint((num << 4) | FIRMWARE_SZX) };
      const options = [...pathOptions('d', record.downloadId), block];
      if (num === 0) options.push({ number: OptionNumber.size2, value: Buffer.alloc(0) });
      const answer = await device.request('0.01', options);
      if (answer.code !== '2.05') throw new Error(`block ${num} of ${target.version} got ${answer.code}`);
      received += answer.payload.length;
      const block2 = answer.options.find((option) => option.number === OptionNumber.block2);
      if (!block2 || (decodeUint(block2.value) & 0x8) === 0) break;
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
    const measured = await measureUpdate(target);
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
  }
}
