// Device heap figures: runs the heap measurement of test/e2e/heap.test.ts (the real
// firmware on the MicroPython harness in step mode, collecting between blocks) and
// turns the figures it prints into benchmark figures.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { Figure } from './report.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIGURE_LINE = /device heap, (\d+) KiB release: (\{.*\})/g;

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
  const found = new Map<number, HeapFigures>();
  for (const match of stdout.matchAll(FIGURE_LINE)) {
    found.set(Number(match[1]), JSON.parse(match[2] ?? '{}') as HeapFigures);
  }
  const small = found.get(4);
  const large = found.get(64);
  if (!small || !large) throw new Error(`test/e2e/heap.test.ts printed no heap figures for 4 and 64 KiB; its output:\n${stdout}`);

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
}
