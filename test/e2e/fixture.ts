// Shared parts of the end-to-end suites: the real daemon in-process on a temporary
// LevelDB, releases signed and published with ota-tool, a device configuration from
// `ota-tool device add`, the factory flash image, and a simulated Pico on the
// SIM7020E simulator with a tap that decodes every CoAP request the Pico sends.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Level } from 'level';
import pino from 'pino';
import { sign } from 'node:crypto';
import { onTestFailed } from 'vitest';
import { startServer, type RunningServer } from '../../src/daemon/server.ts';
import { Encoding } from '../../src/protocol/constants.ts';
import { signedMessage } from '../../src/protocol/manifest.ts';
import type { RateLimit } from '../../src/rate-limit.ts';
import type { DeviceRecord, ReleaseRecord } from '../../src/storage/store.ts';
import { firmwareFiles, SimulatedPico, type SimulatedPicoOptions } from '../../tools/harness/simulated-pico.ts';
import { run as runOtaTool } from '../../tools/ota-tool/main.ts';
import { loadPrivateKey } from '../../tools/ota-tool/keys.ts';
import { CoapTap } from '../../tools/demo/coap-tap.ts';
import { Sim7020Simulator, type Sim7020Options } from '../../tools/sim7020/index.ts';

export { CoapTap, decodeRequest, type SentRequest } from '../../tools/demo/coap-tap.ts';

export const FIRMWARE_DIR = fileURLToPath(new URL('../../firmware/', import.meta.url));
export const APPS_DIR = join(FIRMWARE_DIR, 'apps');
export const ADMIN_TOKEN = 'e2e-admin-token';
export const DEVICE_ID = 'pico-e2e';

/**
 * Device configuration for fast runs on loopback. The firmware defaults suit NB-IoT
 * (12 s ACK timeout, hourly check-ins, 1 s PWRKEY pulse). The PWRKEY pulse here
 * matches FAST_MODEM.pwrkeyMinMs.
 */
export const FAST_CONFIG = {
  check_interval_s: 2,
  ack_timeout_ms: 400,
  max_retransmit: 4,
  modem_pwrkey_ms: 80,
  attach_timeout_ms: 10_000,
};

/** Simulator timings for fast runs: the defaults model a real modem's seconds-long boot and attach. */
export const FAST_MODEM: Sim7020Options = { pwrkeyMinMs: 50, bootDelayMs: 100, networkAttachDelayMs: 100 };

/**
 * Heap budget for whole-story runs, in bytes. This MicroPython build collects no
 * garbage while Python runs, so the harness's high-water mark counts every byte
 * allocated during a boot, compiler garbage of the imports (about 231 KB) and every
 * block's garbage included. 8 MB still catches runaway growth but says nothing about
 * the 190 KiB a Pico has.
 */
export const STORY_HEAP_BUDGET_BYTES = 8 * 1024 * 1024;

// ---- cleanup ---------------------------------------------------------------

/** Cleanup steps registered by the helpers; a suite runs runCleanups() in afterEach. */
const cleanups: Array<() => Promise<void> | void> = [];

export function onCleanup(step: () => Promise<void> | void): void {
  cleanups.push(step);
}

/** Runs the registered steps, newest first, and keeps going past a failing one. */
export async function runCleanups(): Promise<void> {
  const errors: unknown[] = [];
  for (const step of cleanups.splice(0).reverse()) {
    try {
      await step();
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length) throw errors[0];
}

export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `ota-e2e-${prefix}-`));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// ---- daemon ----------------------------------------------------------------

export interface Daemon {
  server: RunningServer;
  dataDir: string;
  coapPort: number;
  adminUrl: string;
  /** Closes the daemon, runs edit on its closed LevelDB, and starts it again on the same ports. */
  editDatabase(edit: (db: Level<string, string>) => Promise<void>): Promise<void>;
  close(): Promise<void>;
}

/** Starts the daemon in-process on free ports with LevelDB in a temporary folder. */
export async function startDaemon(options: { publicKeyPem?: string; deviceRate?: RateLimit | 'off' } = {}): Promise<Daemon> {
  const dataDir = tempDir('data');
  const logger = pino({ level: 'silent' });
  const start = (coapPort: number, adminPort: number) =>
    startServer({
      dataDir,
      logger,
      coapPort,
      adminPort,
      bind: '127.0.0.1',
      adminToken: ADMIN_TOKEN,
      ...(options.publicKeyPem === undefined ? {} : { publicKeyPem: options.publicKeyPem }),
      ...(options.deviceRate === undefined ? {} : { deviceRate: options.deviceRate }),
    });
  let server = await start(0, 0);
  const daemon: Daemon = {
    server,
    dataDir,
    coapPort: server.coapPort,
    adminUrl: `http://127.0.0.1:${server.adminPort}`,
    async editDatabase(edit) {
      await server.close();
      const db = new Level<string, string>(dataDir, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
      await db.open();
      try {
        await edit(db);
      } finally {
        await db.close();
      }
      server = await start(daemon.coapPort, server.adminPort);
      daemon.server = server;
    },
    close: () => daemon.server.close(),
  };
  onCleanup(() => daemon.close());
  return daemon;
}

/** Polls the daemon's device record until accept(record) holds; throws with the last record after timeoutMs. */
export async function waitForDevice(
  daemon: Daemon,
  accept: (record: DeviceRecord) => boolean,
  { timeoutMs = 30_000, deviceId = DEVICE_ID } = {},
): Promise<DeviceRecord> {
  const deadline = Date.now() + timeoutMs;
  let record: DeviceRecord | undefined;
  while (Date.now() < deadline) {
    record = await daemon.server.store.getDevice(deviceId);
    if (record && accept(record)) return record;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`device ${deviceId} did not reach the expected state within ${timeoutMs} ms; last record: ${JSON.stringify(record)}`);
}

/** Predicate: the device runs version and its last report is outcome for that version. */
export function reported(version: string, outcome: string, target = version): (record: DeviceRecord) => boolean {
  return (record) => record.version === version && record.lastReport?.outcome === outcome && record.lastReport.target === target;
}

// ---- ota-tool ----------------------------------------------------------------

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs ota-tool in-process; throws with its output when the exit code is not 0. */
export async function otaTool(args: string[]): Promise<ToolResult> {
  let stdout = '';
  let stderr = '';
  const code = await runOtaTool(args, {
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
    env: {},
  });
  if (code !== 0) throw new Error(`ota-tool ${args.join(' ')} exited with ${code}: ${stderr.trim()}`);
  return { code, stdout, stderr };
}

export interface SigningKey {
  /** PKCS#8 PEM private key file. */
  file: string;
  /** SPKI PEM public key file. */
  publicFile: string;
  publicPem: string;
}

export async function makeSigningKey(dir = tempDir('key')): Promise<SigningKey> {
  const file = join(dir, 'release.key');
  await otaTool(['keygen', '--key', file]);
  return { file, publicFile: `${file}.pub`, publicPem: readFileSync(`${file}.pub`, 'utf8') };
}

export interface PublishOptions {
  encoding?: 'auto' | 'raw' | 'deflate';
  notes?: string;
}

/** Publishes firmware/apps/<version>/app.py (or the app of appVersion) as version, signed with key. */
export async function publishApp(daemon: Daemon, key: SigningKey, version: string, options: PublishOptions & { appVersion?: string } = {}): Promise<ReleaseRecord> {
  const app = join(APPS_DIR, options.appVersion ?? version, 'app.py');
  return publishSpecs(daemon, key, version, [`app.py=${app}`], options);
}

/** Publishes a bundle of the given files (name to content) as version, signed with key. */
export async function publishFiles(
  daemon: Daemon,
  key: SigningKey,
  version: string,
  files: Record<string, string | Uint8Array>,
  options: PublishOptions = {},
): Promise<ReleaseRecord> {
  const dir = tempDir('release');
  const specs = Object.entries(files).map(([name, content], index) => {
    const path = join(dir, `file-${index}`);
    writeFileSync(path, content);
    return `${name}=${path}`;
  });
  return publishSpecs(daemon, key, version, specs, options);
}

async function publishSpecs(daemon: Daemon, key: SigningKey, version: string, specs: string[], options: PublishOptions): Promise<ReleaseRecord> {
  await otaTool([
    'publish',
    ...specs,
    '--version',
    version,
    '--key',
    key.file,
    '--encoding',
    options.encoding ?? 'auto',
    '--notes',
    options.notes ?? `e2e ${version}`,
    '--server',
    daemon.adminUrl,
    '--token',
    ADMIN_TOKEN,
    '--json',
  ]);
  const record = await daemon.server.store.getRelease(version);
  if (!record) throw new Error(`release ${version} is not in the store after ota-tool publish`);
  return record;
}

// ---- tampering with a stored release ------------------------------------------

const chunkKey = (sha256Hex: string, index: number) => `!chunk!${sha256Hex}/${index.toString(16).padStart(8, '0')}`;
const releaseKey = (version: string) => `!release!${version}`;

/** Flips one byte of a stored release's payload, as a disk or copy fault would; record and signature stay. */
export async function corruptPayload(daemon: Daemon, version: string, offset = 0): Promise<void> {
  await daemon.editDatabase(async (db) => {
    const record = await readRecord(db, version);
    const key = chunkKey(record.sha256, Math.floor(offset / 1024));
    const chunk = await readChunk(db, key);
    chunk[offset % 1024] = (chunk[offset % 1024] ?? 0) ^ 0xff;
    await db.put(key, chunk as unknown as string, { valueEncoding: 'buffer' });
  });
}

/**
 * Replaces a stored release's SHA-256 with another value that key signs, so the
 * manifest and its signature agree with each other but not with the payload.
 */
export async function replaceDigest(daemon: Daemon, version: string, key: SigningKey): Promise<void> {
  await daemon.editDatabase(async (db) => {
    const record = await readRecord(db, version);
    const wrong = Buffer.from(record.sha256, 'hex');
    wrong[31] = (wrong[31] ?? 0) ^ 0x01;
    const wrongHex = wrong.toString('hex');
    // Chunks are stored under the record's digest, so they move with it.
    for (let index = 0; index * 1024 < record.size; index++) {
      const chunk = await readChunk(db, chunkKey(record.sha256, index));
      await db.put(chunkKey(wrongHex, index), chunk as unknown as string, { valueEncoding: 'buffer' });
    }
    const message = signedMessage({ version, size: record.size, sha256: wrong, encoding: Encoding[record.encoding] });
    const signature = sign(null, message, loadPrivateKey(key.file)).toString('hex');
    await db.put(releaseKey(version), JSON.stringify({ ...record, sha256: wrongHex, signature }));
  });
}

async function readRecord(db: Level<string, string>, version: string): Promise<ReleaseRecord> {
  const value = await db.get(releaseKey(version));
  if (value === undefined) throw new Error(`release ${version} not found under LevelDB key ${releaseKey(version)}; update the e2e fixture to the store layout`);
  return JSON.parse(value) as ReleaseRecord;
}

async function readChunk(db: Level<string, string>, key: string): Promise<Buffer> {
  const value = (await db.get(key, { valueEncoding: 'buffer' })) as unknown as Buffer | undefined;
  if (value === undefined) throw new Error(`payload chunk not found under LevelDB key ${key}; update the e2e fixture to the store layout`);
  return Buffer.from(value);
}

// ---- device image -------------------------------------------------------------

/** Writes ota_config.json with `ota-tool device add`, then adds the fast test settings and overrides. */
export async function deviceConfig(daemon: Daemon, key: SigningKey, overrides: Record<string, unknown> = {}, deviceId = DEVICE_ID): Promise<string> {
  const dir = tempDir('device');
  await otaTool(['device', 'add', deviceId, '--server', `127.0.0.1:${daemon.coapPort}`, '--apn', 'iot.test', '--public-key', key.publicFile, '--out', dir, '--json']);
  const config = JSON.parse(readFileSync(join(dir, 'ota_config.json'), 'utf8')) as Record<string, unknown>;
  return JSON.stringify({ ...config, ...FAST_CONFIG, ...overrides });
}

/**
 * Builds the factory flash image: the firmware files at the top level, app 1.0.0 in
 * slot a, and the configuration. No /ota_state.json: on its first boot the launcher takes
 * slot a as the factory version 1.0.0.
 */
export function factoryImage(configJson: string, factoryApp = join(APPS_DIR, '1.0.0', 'app.py')): Record<string, Uint8Array | string> {
  return { ...firmwareFiles(), 'app_slots/a/app.py': readFileSync(factoryApp), 'ota_config.json': configJson };
}

// ---- simulated device ----------------------------------------------------------

export interface Device {
  pico: SimulatedPico;
  modem: Sim7020Simulator;
  tap: CoapTap;
}

/**
 * Creates the modem simulator, the tap and the simulated Pico on files, and boots the
 * Pico. The modem starts off, so the firmware powers it with PWRKEY as on a real board.
 */
export async function startDevice(
  files: Record<string, Uint8Array | string>,
  options: { modem?: Sim7020Options; pico?: Partial<SimulatedPicoOptions>; echoSerial?: boolean } = {},
): Promise<Device> {
  const modem = new Sim7020Simulator({ ...FAST_MODEM, ...options.modem });
  const tap = new CoapTap(modem);
  const echo = options.echoSerial ?? process.env.E2E_SERIAL === '1';
  const pico = new SimulatedPico({
    files,
    uart: tap,
    heapBudgetBytes: STORY_HEAP_BUDGET_BYTES,
    ...(echo ? { onSerial: (line: string, boot: number) => console.log(`[pico boot ${boot}] ${line}`) } : {}),
    ...options.pico,
  });
  const report = showSerialOnFailure(pico);
  onCleanup(async () => {
    report.boardState = pico.state;
    await pico.stop();
    await modem.close();
  });
  tap.bootOf = () => pico.currentBoot;
  await pico.boot();
  return { pico, modem, tap };
}

/** Serial lines shown for a failed test, counted from the end: enough for a traceback and the steps before it. */
const FAILURE_SERIAL_LINES = 120;

/** What a failed test prints about a device; boardState is taken before the cleanup stops the board. */
export interface FailureReport {
  boardState?: string;
}

/**
 * Prints the device's last serial lines, its state and its resets when the running
 * test fails, so a run that ended in the REPL or timed out shows the traceback or
 * the step it stopped at.
 */
export function showSerialOnFailure(pico: SimulatedPico): FailureReport {
  const report: FailureReport = {};
  try {
    onTestFailed(() => {
      const lines = serialText(pico).split('\n');
      const omitted = Math.max(0, lines.length - FAILURE_SERIAL_LINES);
      const resets = pico.resetLog.map((reset) => `${reset.cause} in boot ${reset.boot} at ${Math.round(reset.atMs)} ms`).join(', ');
      const head =
        `device serial, state ${report.boardState ?? pico.state}, boot ${pico.currentBoot}, ` +
        `resets [${resets}], ${pico.powerCuts} power cuts` +
        (omitted ? `, first ${omitted} lines omitted` : '');
      console.error(`${head}:\n${lines.slice(omitted).join('\n')}`);
    });
  } catch {
    // vitest allows the hook only inside a test. A device started in beforeAll shows
    // its serial output with E2E_SERIAL=1 instead.
  }
  return report;
}

/** Serial lines of the device, all boots, as one text for failure messages. */
export function serialText(pico: SimulatedPico): string {
  return pico.serial.map((line) => `[${line.boot}] ${line.text}`).join('\n');
}

/**
 * Finds SOS in the LED transitions: 3 short, 3 long, 3 short pulses in a row,
 * long meaning at least twice the short pulse. Returns the boot it was shown in, or undefined.
 */
export function findSos(pico: SimulatedPico): number | undefined {
  const pulses: Array<{ boot: number; ms: number }> = [];
  let onAt: { boot: number; atMs: number } | undefined;
  for (const event of pico.ledEvents) {
    if (event.value) onAt = event;
    else if (onAt && onAt.boot === event.boot) {
      pulses.push({ boot: event.boot, ms: event.atMs - onAt.atMs });
      onAt = undefined;
    }
  }
  // Pulses are classified against each other rather than against fixed durations,
  // because a loaded test machine stretches sleeps by tens of milliseconds.
  const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
  for (let i = 0; i + 9 <= pulses.length; i++) {
    const window = pulses.slice(i, i + 9);
    if (!window.every((pulse) => pulse.boot === window[0]?.boot)) continue;
    const longs = window.slice(3, 6).map((pulse) => pulse.ms);
    const shorts = [...window.slice(0, 3), ...window.slice(6)].map((pulse) => pulse.ms);
    if (Math.max(...shorts) < Math.min(...longs) && mean(longs) >= 2 * mean(shorts)) return window[0]?.boot;
  }
  return undefined;
}
