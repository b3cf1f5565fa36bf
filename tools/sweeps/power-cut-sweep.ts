// Power cut at filesystem operations of a whole 1.0.0 -> 2.0.0 update. A probe run
// records every mutating filesystem operation of the update (download, staging,
// verification, unpacking, slot switch, reboot, trial boot, confirmation). Then each
// cut point n gets a fresh device that loses power right before operation n and boots
// again from what was durable. It must start an app (1.0.0 or 2.0.0). It must then
// finish the update until the server's device record shows 2.0.0 confirmed.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FsOp } from '../harness/flash-fs.ts';
import { FAST_MODEM, confirmedOn, createDevice, factoryFiles, startUpdateRig, waitForDevice, type UpdateRig } from './update-rig.ts';

export const TARGET_VERSION = '2.0.0';
const APP_2_0_0 = fileURLToPath(new URL('../../firmware/apps/2.0.0/app.py', import.meta.url));
/** Raw bytes shipped next to app.py so the download spans several blocks. */
const ASSET_BYTES = 1500;
/**
 * Block size the sweep's devices request: about 7 blocks for app.py plus the asset, so
 * cuts land between blocks, in a block's write and in its flush.
 */
const SWEEP_BLOCK_SIZE = 256;
/** Bounds of one cut point, in real ms. */
const RUN_TO_CUT_TIMEOUT_MS = 40_000;
const APP_START_TIMEOUT_MS = 20_000;
const CONFIRM_TIMEOUT_MS = 45_000;
/** Quiet time after the confirmation that ends the probe's operation count, in ms. */
const SETTLE_MS = 1500;
/** Serial lines kept for a failed cut point. */
const SERIAL_TAIL_LINES = 30;
const TRACEBACK_SETTLE_MS = 500;

export interface Sweep {
  rig: UpdateRig;
  close(): Promise<void>;
}

export interface CutResult {
  cutAt: number;
  /** The operation the probe recorded at this number, which the cut prevented. */
  op: FsOp | undefined;
  /** Version and slot of the first app that started after the cut, such as "1.0.0/a". */
  bootedAfterCut: string | undefined;
  /** Failure description, or undefined when the cut point passed. */
  problem: string | undefined;
  /** The last serial lines, with their boot numbers, kept when the cut point failed. */
  serialTail: string[];
  elapsedMs: number;
}

/** Starts the daemon and publishes 2.0.0: app.py of firmware/apps/2.0.0 plus a raw asset. */
export async function prepareSweep(): Promise<Sweep> {
  const rig = await startUpdateRig();
  const assetDir = mkdtempSync(join(tmpdir(), 'ota-sweep-asset-'));
  try {
    const asset = join(assetDir, 'asset.bin');
    writeFileSync(asset, randomBytes(ASSET_BYTES));
    await rig.publishFiles(TARGET_VERSION, { 'app.py': APP_2_0_0, 'asset.bin': asset }, ['--encoding', 'raw']);
  } catch (error) {
    await rig.close();
    throw error;
  } finally {
    rmSync(assetDir, { recursive: true, force: true });
  }
  return { rig, close: () => rig.close() };
}

function deviceFiles(sweep: Sweep, deviceId: string): Record<string, Uint8Array | string> {
  return factoryFiles(sweep.rig, deviceId, { block_size: SWEEP_BLOCK_SIZE });
}

/** Runs the update once without a cut and returns every mutating filesystem operation until it is confirmed. */
export async function recordUpdateOps(sweep: Sweep): Promise<FsOp[]> {
  const deviceId = 'sweep-probe';
  const device = createDevice(deviceFiles(sweep, deviceId));
  try {
    await device.pico.boot();
    const record = await waitForDevice(sweep.rig, deviceId, confirmedOn(TARGET_VERSION), CONFIRM_TIMEOUT_MS);
    if (record === undefined) {
      throw new Error(`probe device did not confirm ${TARGET_VERSION} within ${CONFIRM_TIMEOUT_MS} ms; serial:\n` +
        device.pico.serialLines().join('\n'));
    }
    // The outbox entry of the confirmation is removed after the server's response.
    let count = -1;
    while (count !== device.pico.fsOps.length) {
      count = device.pico.fsOps.length;
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    }
    return [...device.pico.fsOps];
  } finally {
    await device.stop();
  }
}

const APP_STARTED = /main: running app (\S+) from slot (\w+)/;
const NO_APP = /running without an app|Traceback/;

/** Cuts power right before operation cutAt, boots again and checks the device recovers and completes the update. */
export async function runCutPoint(sweep: Sweep, cutAt: number, probeOps: readonly FsOp[]): Promise<CutResult> {
  const started = performance.now();
  const deviceId = `cut-${cutAt}`;
  // The modem starts on and attached, which saves the first boot about 2 s of AT probes
  // and PWRKEY. The cut turns it off like the Pico, so the boot that matters starts cold.
  const device = createDevice(deviceFiles(sweep, deviceId), { powerCutAtOp: cutAt }, { ...FAST_MODEM, startOn: true });
  const pico = device.pico;
  const result: CutResult = { cutAt, op: probeOps[cutAt - 1], bootedAfterCut: undefined, problem: undefined, serialTail: [], elapsedMs: 0 };
  try {
    await pico.boot();
    const toCut = await pico.runUntil(() => false, { timeoutMs: RUN_TO_CUT_TIMEOUT_MS });
    if (toCut.reason !== 'power-cut') {
      result.problem = `power was not cut (run ended: ${toCut.reason})`;
      return result;
    }

    await pico.boot();
    const cutBoot = pico.currentBoot;
    const appStart = await pico.runUntil(
      (board) => board.serial.some((line) => line.boot >= cutBoot && (APP_STARTED.test(line.text) || NO_APP.test(line.text))),
      { timeoutMs: APP_START_TIMEOUT_MS },
    );
    const firstLine = pico.serial.find((line) => line.boot >= cutBoot && (APP_STARTED.test(line.text) || NO_APP.test(line.text)));
    const match = firstLine === undefined ? null : APP_STARTED.exec(firstLine.text);
    if (appStart.reason !== 'matched' || match === null) {
      result.problem = `no app started after the cut (${appStart.reason}): ${firstLine?.text ?? 'no launcher line'}`;
      return result;
    }
    const [, version, slot] = match;
    result.bootedAfterCut = `${version}/${slot}`;
    if (version !== '1.0.0' && version !== TARGET_VERSION) {
      result.problem = `launcher started version ${version}, expected 1.0.0 or ${TARGET_VERSION}`;
      return result;
    }
    // The app file is read from what is durable now, which is what the launcher imported.
    const appSource = pico.readText(`/app_slots/${slot}/app.py`) ?? '';
    if (!appSource.includes(`VERSION = "${version}"`)) {
      result.problem = `slot ${slot} does not contain app ${version}: ${appSource.slice(0, 60) || 'no app.py'}`;
      return result;
    }

    const record = await waitForDevice(sweep.rig, deviceId, confirmedOn(TARGET_VERSION), CONFIRM_TIMEOUT_MS);
    if (record === undefined) {
      const last = await sweep.rig.device(deviceId);
      result.problem = `update not confirmed within ${CONFIRM_TIMEOUT_MS} ms: server has ${last?.version ?? 'no record'}` +
        ` (${last?.lastReport?.outcome ?? 'no report'})`;
    }
    return result;
  } catch (error) {
    result.problem = `harness failure: ${(error as Error).message}`;
    return result;
  } finally {
    if (result.problem !== undefined) {
      // A traceback that ended the run is printed over a few ms: let it finish.
      await new Promise((resolve) => setTimeout(resolve, TRACEBACK_SETTLE_MS));
      result.serialTail = pico.serial.slice(-SERIAL_TAIL_LINES).map((line) => `[${line.boot}] ${line.text}`);
    }
    await device.stop();
    result.elapsedMs = performance.now() - started;
  }
}

/** Runs the cut points, `parallel` devices at a time, in ascending order of start. */
export async function runCutPoints(
  sweep: Sweep,
  cutPoints: readonly number[],
  probeOps: readonly FsOp[],
  parallel: number,
  onResult: (result: CutResult) => void = () => undefined,
): Promise<CutResult[]> {
  const results: CutResult[] = [];
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < cutPoints.length) {
      const cutAt = cutPoints[next++]!;
      const result = await runCutPoint(sweep, cutAt, probeOps);
      results.push(result);
      onResult(result);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, parallel) }, lane));
  return results.sort((a, b) => a.cutAt - b.cutAt);
}

/**
 * Picks a bounded subset of cut points, one or two per phase of the update. The phases
 * are the staging manifest, the download (first and last block), unpacking into the
 * slot, the slot switch, the outbox, the removal of the staging files, the trial boot
 * and the confirmation. Returns 1-based operation numbers in ascending order.
 */
export function pickPhaseCutPoints(ops: readonly FsOp[]): number[] {
  const first = (match: (op: FsOp) => boolean): number => ops.findIndex(match) + 1;
  const last = (match: (op: FsOp) => boolean): number => {
    for (let index = ops.length - 1; index >= 0; index--) {
      if (match(ops[index]!)) return index + 1;
    }
    return 0;
  };
  const staging = (op: FsOp): boolean => op.path === '/ota_staging.bin';
  const inSlot = (op: FsOp): boolean => op.path.startsWith('/app_slots/');
  const stateSwitch = (op: FsOp): boolean => op.op === 'rename' && op.toPath === '/ota_state.json';
  const outbox = (op: FsOp): boolean => op.op === 'rename' && op.toPath === '/ota_reports.json';
  const firstBoot = ops[0]?.boot ?? 1;
  const points = [
    1,
    first((op) => op.path === '/ota_staging.json' && op.op === 'write'),
    first((op) => staging(op) && op.op === 'open'),
    last((op) => staging(op) && op.op === 'write'),
    first((op) => inSlot(op) && op.op === 'mkdir'),
    first((op) => inSlot(op) && op.op === 'write'),
    last((op) => inSlot(op) && op.op === 'close'),
    first((op) => op.boot === firstBoot && op.path === '/ota_state.tmp' && op.op === 'write'),
    first((op) => op.boot === firstBoot && stateSwitch(op)),
    first((op) => op.op === 'remove'),
    first((op) => op.boot > firstBoot && stateSwitch(op)),
    last(outbox),
  ];
  return [...new Set(points.filter((point) => point > 0))].sort((a, b) => a - b);
}

export function describeOp(op: FsOp | undefined): string {
  if (op === undefined) return 'unknown op';
  const target = op.toPath === undefined ? op.path : `${op.path} -> ${op.toPath}`;
  return `boot ${op.boot} ${op.op} ${target}${op.bytes === undefined ? '' : ` (${op.bytes} B)`}`;
}
