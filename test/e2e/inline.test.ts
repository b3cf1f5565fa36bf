// A payload that fits the device's inline size comes inside the check answer (manifest
// key 7): no Block2 request, the same staging file and the same digest and signature
// checks. Real firmware, SIM7020E simulator and daemon.
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Decoder, Encoder } from 'cbor-x';
import { afterEach, expect, test } from 'vitest';
import { MessageType, OptionNumber, encodeMessage, encodeUint, parseDatagram, type Datagram } from '../../src/coap/datagram.ts';
import { ManifestKey } from '../../src/protocol/constants.ts';
import {
  APPS_DIR,
  corruptPayload,
  onCleanup,
  publishFiles,
  deviceConfig,
  factoryImage,
  makeSigningKey,
  publishApp,
  reported,
  runCleanups,
  serialText,
  startDaemon,
  startDevice,
  waitForDevice,
  type Daemon,
  type Device,
} from './fixture.ts';

afterEach(runCleanups);

const APP = readFileSync(join(APPS_DIR, '2.0.0', 'app.py'), 'utf8');

const cbor = new Encoder({ useRecords: false, useTag259ForMaps: false } as ConstructorParameters<typeof Encoder>[0]);
const cborDecoder = new Decoder({ mapsAsObjects: false, useRecords: false });

/** Sends one CON POST /c with this CBOR map straight to the daemon and returns its answer. */
async function checkOverUdp(daemon: Daemon, body: Map<number, unknown>): Promise<Datagram> {
  const socket = createSocket('udp4');
  onCleanup(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  const answer = new Promise<Buffer>((resolve, reject) => {
    socket.once('message', resolve);
    setTimeout(() => reject(new Error('no answer to POST /c within 5000 ms')), 5000);
  });
  const options = [
    { number: OptionNumber.uriPath, value: Buffer.from('c') },
    { number: OptionNumber.contentFormat, value: encodeUint(60) },
  ];
  socket.send(encodeMessage(MessageType.con, '0.02', 0x4242, Buffer.from([0xb1]), options, cbor.encode(body)), daemon.coapPort, '127.0.0.1');
  const parsed = parseDatagram(await answer);
  if (!parsed.ok) throw new Error(`the daemon sent a malformed answer: ${parsed.reason}`);
  return parsed.datagram;
}

function withSerial(device: Device): (err: Error) => never {
  return (err) => {
    throw new Error(`${err.message}\nserial:\n${serialText(device.pico)}`);
  };
}

test('inline payload needs no Block2', async () => {
  const key = await makeSigningKey();
  const daemon = await startDaemon({ publicKeyPem: key.publicPem });
  const release = await publishApp(daemon, key, '2.0.0');
  expect(release.size).toBeLessThanOrEqual(512);
  const device = await startDevice(factoryImage(await deviceConfig(daemon, key)));

  await waitForDevice(daemon, reported('2.0.0', 'confirmed'), { timeoutMs: 30_000 }).catch(withSerial(device));

  expect(device.tap.blockRequests().size).toBe(0);
  expect(device.pico.serialLines(1)).toContain(`I ota: payload of ${release.size} bytes came with the manifest, no Block2 request needed`);
  expect(device.pico.readText('app_slots/b/app.py')).toBe(APP);
  // The update boot sends the check and the installed report, nothing else.
  expect(device.tap.sent.filter((request) => request.boot === 1).map((request) => request.path)).toEqual(['/c', '/r']);
});

test('payload above inline size downloads', async () => {
  const key = await makeSigningKey();
  const daemon = await startDaemon({ publicKeyPem: key.publicPem });
  const release = await publishApp(daemon, key, '2.0.0');
  // 128-byte blocks: the check carries inline SZX 3, below the payload size.
  const device = await startDevice(factoryImage(await deviceConfig(daemon, key, { block_size: 128 })));

  await waitForDevice(daemon, reported('2.0.0', 'confirmed'), { timeoutMs: 30_000 }).catch(withSerial(device));

  expect(release.size).toBeGreaterThan(128);
  expect(device.tap.blockRequests().size).toBe(Math.ceil(release.size / 128));
  expect(device.pico.readText('app_slots/b/app.py')).toBe(APP);
});

test('corrupted inline payload rejected', async () => {
  const key = await makeSigningKey();
  const daemon = await startDaemon({ publicKeyPem: key.publicPem });
  await publishApp(daemon, key, '2.0.0');
  await corruptPayload(daemon, '2.0.0', 40);
  const device = await startDevice(factoryImage(await deviceConfig(daemon, key)));

  const record = await waitForDevice(daemon, reported('1.0.0', 'verifyFailed', '2.0.0'), { timeoutMs: 30_000 }).catch(withSerial(device));

  expect(record.lastReport?.detail).toMatch(/SHA-256/);
  // After the inline copy failed, the one 512-byte block was downloaded once over Block2.
  expect([...device.tap.blockRequests()]).toEqual([[0, 1]]);
  expect(device.pico.readFile('app_slots/b/app.py')).toBeUndefined();
  expect(device.pico.readFile('ota_staging.bin')).toBeUndefined();
});

test('inline size capped at 512 bytes', async () => {
  const key = await makeSigningKey();
  const daemon = await startDaemon({ publicKeyPem: key.publicPem });
  const release = await publishFiles(daemon, key, '2.0.0', { 'app.py': APP, 'asset.bin': randomBytes(300) }, { encoding: 'raw' });
  expect(release.size).toBeGreaterThan(512);
  expect(release.size).toBeLessThanOrEqual(1024);

  // SZX 6 asks for 1024 bytes inline; the server still sends the manifest alone.
  const answer = await checkOverUdp(daemon, new Map<number, unknown>([[0, 'pico-cap'], [1, '1.0.0'], [3, 6]]));
  const manifest = cborDecoder.decode(answer.payload) as Map<number, unknown>;

  expect(answer.code).toBe('2.05');
  expect(manifest.get(ManifestKey.size)).toBe(release.size);
  expect(manifest.has(ManifestKey.payload)).toBe(false);
});

test('check rejects invalid inline SZX', async () => {
  const daemon = await startDaemon();
  const answer = await checkOverUdp(daemon, new Map<number, unknown>([[0, 'pico-bad'], [1, '1.0.0'], [3, 7]]));

  expect(answer.code).toBe('4.00');
  expect(answer.payload.toString('utf8')).toBe('key 3 (inline SZX) must be an unsigned integer 0..6 (16..1024 bytes), got the number 7');
});
