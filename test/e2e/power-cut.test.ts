// Power cut during a whole 1.0.0 -> 2.0.0 update on the real firmware, the SIM7020E
// simulator and the real daemon, at a bounded set of filesystem operations that covers
// every phase. `npm run sweep:power-cut` cuts at every operation instead.
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { FsOp } from '../../tools/harness/flash-fs.ts';
import {
  describeOp,
  pickPhaseCutPoints,
  prepareSweep,
  recordUpdateOps,
  runCutPoints,
  type CutResult,
  type Sweep,
} from '../../tools/sweeps/power-cut-sweep.ts';

/** Devices run two at a time, one per core of the CI machine. */
const PARALLEL_DEVICES = 2;

let sweep: Sweep;
let ops: FsOp[];

beforeAll(async () => {
  sweep = await prepareSweep();
  ops = await recordUpdateOps(sweep);
}, 60_000);

afterAll(async () => {
  await sweep?.close();
});

test('update records every phase', () => {
  const paths = new Set(ops.map((op) => op.path));
  expect(paths).toContain('/ota_staging.json');
  expect(paths).toContain('/ota_staging.bin');
  expect(paths).toContain('/app_slots/b/app.py');
  expect(paths).toContain('/ota_state.tmp');
  expect(paths).toContain('/ota_reports.tmp');
  // The switch happens in the first boot, the trial count and the confirmation in the second.
  expect(ops.some((op) => op.boot === 2 && op.toPath === '/ota_state.json')).toBe(true);
});

test('power cut at each phase recovers', async () => {
  const points = pickPhaseCutPoints(ops);
  expect(points.length).toBeGreaterThanOrEqual(11);

  const results = await runCutPoints(sweep, points, ops, PARALLEL_DEVICES);

  const failures = results.filter((result: CutResult) => result.problem !== undefined)
    .map((result) => `cut ${result.cutAt} before ${describeOp(result.op)}: ${result.problem}`);
  expect(failures).toEqual([]);
  expect(results.map((result) => result.cutAt)).toEqual(points);
  for (const result of results) {
    expect(['1.0.0/a', '2.0.0/b'], `cut ${result.cutAt}`).toContain(result.bootedAfterCut);
  }
}, 180_000);
