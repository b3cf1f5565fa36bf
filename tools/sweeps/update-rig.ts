// Whole-system rig for update sweeps: the real daemon on 127.0.0.1 (temporary LevelDB),
// releases signed and published by ota-tool, and simulated Picos (real MicroPython
// firmware) whose modem is the SIM7020E simulator. The power-cut sweep script and its
// bounded test both run on it.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { startServer, type RunningServer } from '../../src/daemon/server.ts';
import type { DeviceRecord } from '../../src/storage/store.ts';
import { SimulatedPico, firmwareFiles, type SimulatedPicoOptions } from '../harness/simulated-pico.ts';
import { run as runOtaTool } from '../ota-tool/main.ts';
import type { CliIo } from '../ota-tool/io.ts';
import { Sim7020Simulator, type Sim7020Options } from '../sim7020/index.ts';

const APPS_DIR = fileURLToPath(new URL('../../firmware/apps/', import.meta.url));
const ADMIN_TOKEN = 'sweep-admin-token';

/**
 * Modem timings far below the simulator's defaults (2000 ms boot, 1000 ms attach), so
 * the modem boots and attaches in tens of ms. modem_pwrkey_ms in FAST_DEVICE_CONFIG
 * is above pwrkeyMinMs.
 */
export const FAST_MODEM: Sim7020Options = { pwrkeyMinMs: 50, bootDelayMs: 50, networkAttachDelayMs: 50 };

/**
 * Device configuration keys on top of what `ota-tool device add` writes. The short ACK
 * timeout suits loopback round trips, where the firmware default of 12 s suits NB-IoT.
 * The check interval stays at an hour, so each boot checks in once unless a test sets
 * a shorter one.
 */
export const FAST_DEVICE_CONFIG: Record<string, unknown> = {
  ack_timeout_ms: 300,
  max_retransmit: 3,
  modem_pwrkey_ms: 60,
  attach_timeout_ms: 5000,
  trial_boots: 3,
};

/**
 * Heap budget for whole-update runs. This WebAssembly build collects no garbage while
 * main.py runs (docs/harness.md, Heap), so the harness figure counts every allocation
 * of a boot, compiler garbage of the imports included (over 200 KB in the first
 * second). 8 MB still stops a runaway loop; the Pico fit is measured by the heap test.
 */
export const WHOLE_RUN_HEAP_BUDGET_BYTES = 8 * 1024 * 1024;

export interface UpdateRig {
  server: RunningServer;
  coapPort: number;
  /** The configuration file ota-tool wrote, as an object (device_id is replaced per device). */
  baseConfig: Record<string, unknown>;
  /** Publishes firmware/apps/<version>/app.py as a release, signed by ota-tool. */
  publishApp(version: string, extra?: string[]): Promise<void>;
  /** Publishes files (bundle name to path) as a release. */
  publishFiles(version: string, files: Record<string, string>, extra?: string[]): Promise<void>;
  device(id: string): Promise<DeviceRecord | undefined>;
  close(): Promise<void>;
}

function quietIo(output: string[]): CliIo {
  return { stdout: (text) => output.push(text), stderr: (text) => output.push(text), env: {} };
}

async function otaTool(argv: string[]): Promise<void> {
  const output: string[] = [];
  const code = await runOtaTool(argv, quietIo(output));
  if (code !== 0) {
    throw new Error(`ota-tool ${argv[0]} exited with ${code}: ${output.join('').trim()}`);
  }
}

/** Starts the daemon on free ports with a fresh data folder and makes a signing key. */
export async function startUpdateRig(): Promise<UpdateRig> {
  const workDir = mkdtempSync(join(tmpdir(), 'ota-sweep-'));
  const keyFile = join(workDir, 'release.key');
  const server = await startServer({
    dataDir: join(workDir, 'data'),
    logger: pino({ level: 'silent' }),
    coapPort: 0,
    bind: '127.0.0.1',
    adminPort: 0,
    adminToken: ADMIN_TOKEN,
  });
  try {
    await otaTool(['keygen', '--key', keyFile]);
    await otaTool(['device', 'add', 'template', '--server', `127.0.0.1:${server.coapPort}`, '--public-key', `${keyFile}.pub`, '--apn', 'iot.example',
      '--check-interval', '3600', '--out', workDir]);
  } catch (error) {
    await server.close();
    rmSync(workDir, { recursive: true, force: true });
    throw error;
  }
  const baseConfig = JSON.parse(readFileSync(join(workDir, 'ota_config.json'), 'utf8')) as Record<string, unknown>;
  const admin = ['--server', `http://127.0.0.1:${server.adminPort}`, '--token', ADMIN_TOKEN];

  const publishFiles = async (version: string, files: Record<string, string>, extra: string[] = []): Promise<void> => {
    const specs = Object.entries(files).map(([name, path]) => `${name}=${path}`);
    await otaTool(['publish', ...specs, '--version', version, '--key', keyFile, ...admin, ...extra]);
  };
  return {
    server,
    coapPort: server.coapPort,
    baseConfig,
    publishFiles,
    publishApp: (version, extra) => publishFiles(version, { 'app.py': join(APPS_DIR, version, 'app.py') }, extra),
    device: (id) => server.store.getDevice(id),
    async close() {
      await server.close();
      rmSync(workDir, { recursive: true, force: true });
    },
  };
}

/** Builds the factory filesystem: firmware, app 1.0.0 in slot a, the configuration; no state file. */
export function factoryFiles(rig: UpdateRig, deviceId: string, config: Record<string, unknown> = {}): Record<string, Uint8Array | string> {
  const deviceConfig = { ...rig.baseConfig, ...FAST_DEVICE_CONFIG, ...config, device_id: deviceId };
  return {
    ...firmwareFiles(),
    'app_slots/a/app.py': new Uint8Array(readFileSync(join(APPS_DIR, '1.0.0', 'app.py'))),
    'ota_config.json': JSON.stringify(deviceConfig),
  };
}

export interface Device {
  pico: SimulatedPico;
  modem: Sim7020Simulator;
  stop(): Promise<void>;
}

/** Wires a simulated Pico to a fresh modem simulator; nothing runs until pico.boot(). */
export function createDevice(
  files: Record<string, Uint8Array | string>,
  options: Partial<SimulatedPicoOptions> = {},
  modemOptions: Sim7020Options = FAST_MODEM,
): Device {
  const modem = new Sim7020Simulator(modemOptions);
  const pico = new SimulatedPico({ heapBudgetBytes: WHOLE_RUN_HEAP_BUDGET_BYTES, ...options, files, uart: modem });
  return {
    pico,
    modem,
    async stop() {
      await pico.stop();
      await modem.close();
    },
  };
}

/** Polls the device record until check() holds; returns the last record, or undefined on timeout. */
export async function waitForDevice(
  rig: UpdateRig,
  id: string,
  check: (record: DeviceRecord) => boolean,
  timeoutMs: number,
): Promise<DeviceRecord | undefined> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const record = await rig.device(id);
    if (record !== undefined && check(record)) return record;
    if (performance.now() > deadline) return undefined;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** True when the server records the device on version with "confirmed" as its last report. */
export function confirmedOn(version: string): (record: DeviceRecord) => boolean {
  return (record) => record.version === version && record.lastReport?.outcome === 'confirmed' && record.lastReport.target === version;
}
