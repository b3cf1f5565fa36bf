// Full power-cut sweep: `npm run sweep:power-cut [-- --parallel N]`. Cuts power at every
// mutating filesystem operation of a 1.0.0 -> 2.0.0 update, one fresh device per cut
// point, prints one line per point and a summary, and exits 1 on any failure.

import { parseArgs } from 'node:util';
import { describeOp, prepareSweep, recordUpdateOps, runCutPoints } from './power-cut-sweep.ts';

const { values } = parseArgs({
  options: {
    parallel: { type: 'string', default: '2' },
    from: { type: 'string', default: '1' },
  },
});
const parallel = Number(values.parallel);
const from = Number(values.from);
if (!Number.isInteger(parallel) || parallel < 1 || parallel > 8) {
  console.error(`--parallel ${values.parallel} is invalid: use 1..8 devices at a time, e.g. --parallel 2`);
  process.exit(2);
}
if (!Number.isInteger(from) || from < 1) {
  console.error(`--from ${values.from} is invalid: use a cut point of 1 or more, e.g. --from 40`);
  process.exit(2);
}

const started = performance.now();
const sweep = await prepareSweep();
let failures = 0;
try {
  const ops = await recordUpdateOps(sweep);
  console.log(`update 1.0.0 -> 2.0.0: ${ops.length} mutating filesystem operations; cutting at ${from}..${ops.length}, ${parallel} at a time`);
  const points = Array.from({ length: Math.max(0, ops.length - from + 1) }, (_, i) => from + i);
  const results = await runCutPoints(sweep, points, ops, parallel, (result) => {
    const verdict = result.problem === undefined ? 'ok  ' : 'FAIL';
    const booted = result.bootedAfterCut ?? '-';
    const detail = result.problem === undefined ? '' : `: ${result.problem}`;
    console.log(`${verdict} cut ${String(result.cutAt).padStart(3)} before ${describeOp(result.op)}; after the cut ran ${booted}; ` +
      `${(result.elapsedMs / 1000).toFixed(1)} s${detail}`);
    for (const line of result.serialTail) console.log(`       ${line}`);
  });
  failures = results.filter((result) => result.problem !== undefined).length;
  const seconds = (performance.now() - started) / 1000;
  console.log(`summary: N = ${ops.length} operations, ${results.length - failures} of ${results.length} cut points passed, ` +
    `${failures} failed, ${seconds.toFixed(0)} s`);
} finally {
  await sweep.close();
}
process.exit(failures === 0 ? 0 : 1);
