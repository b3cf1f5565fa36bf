// 200 simulated devices download one 256 KiB release at the same time over
// 127.0.0.1. The devices run in a separate process (load-clients.ts) that hashes
// blocks as they arrive, so this process holds the daemon alone and the memory it
// gains during the run is the daemon's.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/daemon/server.ts';
import type { ReleaseRecord } from '../../src/storage/store.ts';
import { payloadOf, publish, startTestServer, tempDir } from './helpers.ts';

const DEVICES = 200;
const IMAGE_SIZE = 256 * 1024;
const TIME_LIMIT_MS = 60_000;
/** Live-heap samples: each forces a full GC first, so garbage does not count as growth. */
const SAMPLE_MS = 1000;
const CLIENTS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'load-clients.ts');

// vitest starts workers without --expose-gc; this enables it for this worker alone.
v8.setFlagsFromString('--expose-gc');
const collectGarbage = vm.runInNewContext('gc') as () => void;

/** Retained memory: the V8 heap plus Buffer storage outside it, after a full collection. */
function liveHeap(): number {
  collectGarbage();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

/** Peak resident set size of this process so far, from Linux /proc (VmHWM, in KiB there). */
function peakRss(): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return Number(match?.[1] ?? 0) * 1024;
}

let temp: Awaited<ReturnType<typeof tempDir>>;
let server: RunningServer;
let release: ReleaseRecord;

beforeAll(async () => {
  temp = await tempDir();
  server = await startTestServer(temp.dir);
  release = await publish(server.store, '4.0.0', payloadOf(IMAGE_SIZE, 4));
});

afterAll(async () => {
  await server.close();
  await temp.remove();
});

function runClients(devices: number): Promise<{ stdout: string }> {
  const args = ['--import', 'tsx', CLIENTS, String(server.coapPort), release.downloadId, String(devices), String(TIME_LIMIT_MS)];
  return promisify(execFile)(process.execPath, args, { timeout: TIME_LIMIT_MS + 10_000 });
}

describe('concurrent downloads', () => {
  it('200 devices, 256 KiB image', async () => {
    // One download first, so compiled code and first-use caches are in the baseline.
    await runClients(1);
    const baselineHeap = liveHeap();
    const baselineRss = process.memoryUsage().rss;
    let maxHeap = baselineHeap;
    const sampler = setInterval(() => {
      maxHeap = Math.max(maxHeap, liveHeap());
    }, SAMPLE_MS);

    let output: string;
    try {
      ({ stdout: output } = await runClients(DEVICES));
    } finally {
      clearInterval(sampler);
    }
    const result = JSON.parse(output) as { digests: string[]; retransmissions: number; elapsedMs: number };

    expect(result.digests).toHaveLength(DEVICES);
    for (const digest of result.digests) expect(digest).toBe(release.sha256);

    const heapGrowth = maxHeap - baselineHeap;
    const rssGrowth = peakRss() - baselineRss;
    const allImages = DEVICES * IMAGE_SIZE;
    const blocks = DEVICES * (IMAGE_SIZE / 1024);
    const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
    console.log(
      `load: ${DEVICES} devices x ${IMAGE_SIZE / 1024} KiB in ${result.elapsedMs} ms, ` +
        `${Math.round((blocks * 1000) / result.elapsedMs)} blocks/s, ${result.retransmissions} retransmissions; ` +
        `daemon growth: live heap ${mib(heapGrowth)} MiB, peak RSS ${mib(rssGrowth)} MiB; one image per device would be ${mib(allImages)} MiB`,
    );
    // One image per device would add 50 MiB of live heap; a twentieth of that bounds the daemon.
    expect(heapGrowth).toBeLessThan(allImages / 20);
    // Peak RSS is printed but not bounded: it also counts garbage between collections,
    // and V8 sizes its young generation by the allocation rate, so it tracks how fast
    // blocks are served rather than what is retained per download.
  });
});
