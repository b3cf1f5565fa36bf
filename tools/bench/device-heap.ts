// Device heap figures: runs the heap measurement of test/e2e/heap.test.ts (the real
// firmware on the MicroPython harness in step mode, collecting between blocks) and
// turns the figures it prints into benchmark figures.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { Figure } from './report.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The test prints one line per run: `device heap` with the default window, `stop-and-wait heap` with one request in flight. */
const FIGURE_LINE = /(device|stop-and-wait) heap, (\d+) KiB release: (\{.*\})/g;

interface HeapFigures {
  liveAfterBootBytes: number;
  blockHighWaterBytes: number;
  blockMedianBytes: number;
  liveAfterDownloadBytes: number;
  installHighWaterBytes: number;
}

export async function deviceHeapFigures(emit: (figure: Figure) => void): Promise<void> {
  const vitest = fileURLToPath(new URL('../../node_modules/vitest/vitest.mjs', import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath, [vitest, 'run', 'test/e2e/heap.test.ts'], {
    cwd: ROOT,
    timeout: 300_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  const found = new Map<string, HeapFigures>();
  for (const match of stdout.matchAll(FIGURE_LINE)) {
    found.set(`${match[1]} ${match[2]}`, JSON.parse(match[3] ?? '{}') as HeapFigures);
  }
  const small = found.get('device 4');
  const large = found.get('device 64');
  const smallStopAndWait = found.get('stop-and-wait 4');
  const largeStopAndWait = found.get('stop-and-wait 64');
  if (!small || !large || !smallStopAndWait || !largeStopAndWait) {
    throw new Error(`test/e2e/heap.test.ts printed no heap figures for 4 and 64 KiB at both windows; its output:\n${stdout}`);
  }

  emit({ name: 'device.heap.after_boot', value: small.liveAfterBootBytes, unit: 'bytes' });
  for (const [label, figures] of [['4KiB', small], ['64KiB', large]] as const) {
    emit({ name: `device.heap.block_high_water.${label}`, value: figures.blockHighWaterBytes, unit: 'bytes' });
    emit({ name: `device.heap.install_high_water.${label}`, value: figures.installHighWaterBytes, unit: 'bytes' });
  }
  emit({
    name: 'device.heap.block_high_water.64KiB_vs_4KiB',
    value: Number((large.blockHighWaterBytes / small.blockHighWaterBytes).toFixed(3)),
    unit: 'ratio',
    peer: '4KiB',
    ratio: Number((large.blockHighWaterBytes / small.blockHighWaterBytes).toFixed(3)),
  });
  const stopAndWaitRatio = Number((largeStopAndWait.blockMedianBytes / smallStopAndWait.blockMedianBytes).toFixed(3));
  emit({
    name: 'device.heap.block_median.stop_and_wait.64KiB_vs_4KiB',
    value: stopAndWaitRatio,
    unit: 'ratio',
    peer: '4KiB',
    ratio: stopAndWaitRatio,
  });
}
