// The call channel between a MicroPython worker and the main thread. A reply must
// reach the request it belongs to even when the wake-up of an earlier reply arrives
// late, and two boards in one process must never see each other's replies.

import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, test } from 'vitest';
import { callViews, createCallBuffer, sendReply, storeReply, wakeWorker } from '../../tools/harness/channel.ts';
import { SimulatedPico } from '../../tools/harness/simulated-pico.ts';
import { LoopbackPeer } from './loopback-peer.ts';

type WorkerEvent = { type: 'call' | 'result'; seq: number; value?: unknown };

const require = createRequire(import.meta.url);
const TSX_API_URL = pathToFileURL(join(require.resolve('tsx/package.json'), '..', 'dist/esm/api/index.mjs')).href;
const WORKER_URL = new URL('./channel-worker.ts', import.meta.url).href;

/** Starts channel-worker.ts and queues its messages for next(). */
function startChannelWorker(calls: SharedArrayBuffer, gate: SharedArrayBuffer) {
  const source =
    `import(${JSON.stringify(TSX_API_URL)})` +
    `.then((tsx) => { tsx.register(); return import(${JSON.stringify(WORKER_URL)}); });`;
  const worker = new Worker(source, { eval: true, workerData: { calls, gate } });
  const events: WorkerEvent[] = [];
  const listeners: Array<() => void> = [];
  worker.on('message', (event: WorkerEvent) => {
    events.push(event);
    listeners.splice(0).forEach((listener) => listener());
  });
  /** Resolves with the next message, or undefined when none comes within timeoutMs. */
  const next = async (timeoutMs: number): Promise<WorkerEvent | undefined> => {
    const deadline = Date.now() + timeoutMs;
    while (events.length === 0 && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        listeners.push(resolve);
        setTimeout(resolve, deadline - Date.now());
      });
    }
    return events.shift();
  };
  return { worker, next };
}

const workers: Worker[] = [];
const picos: SimulatedPico[] = [];

afterEach(async () => {
  await Promise.all(workers.splice(0).map((worker) => worker.terminate()));
  await Promise.all(picos.splice(0).map((pico) => pico.stop()));
});

describe('channel', () => {
  test('late wake-up keeps reply order', async () => {
    const callBuffer = createCallBuffer();
    const calls = callViews(callBuffer);
    const gateBuffer = new SharedArrayBuffer(4);
    const gate = new Int32Array(gateBuffer);
    const { worker, next } = startChannelWorker(callBuffer, gateBuffer);
    workers.push(worker);

    expect(await next(20_000)).toEqual({ type: 'call', seq: 1 });
    // The main thread wrote reply 1 and was descheduled before its notify.
    storeReply(calls, 1, 111);
    Atomics.store(gate, 0, 1);
    Atomics.notify(gate, 0);
    expect(await next(5_000)).toEqual({ type: 'result', seq: 1, value: 111 });
    expect(await next(5_000)).toEqual({ type: 'call', seq: 2 });

    // The late notify of reply 1 now reaches the worker waiting for reply 2.
    wakeWorker(calls);
    expect(await next(300)).toBeUndefined();

    sendReply(calls, 2, 222);
    expect(await next(5_000)).toEqual({ type: 'result', seq: 2, value: 222 });
  });

  test('two boards get their own replies', async () => {
    // Every seek() returns the new position, so a reply that belongs to another call
    // or another board shows as a wrong position. Each board makes at least 2000
    // calls, then stops at runMs or at 40000 calls.
    const runMs = 3_000;
    const main = `
import time
f = open('/blob.bin', 'rb')
end = time.ticks_add(time.ticks_ms(), ${runMs})
calls = 0
wrong = 0
while calls < 2000 or (calls < 40000 and time.ticks_diff(end, time.ticks_ms()) > 0):
    for position in range(500):
        if f.seek(position) != position:
            wrong += 1
    calls += 500
print('calls=%d wrong=%d' % (calls, wrong))
`;
    for (const uniqueIdHex of ['e6614c311b7e2f25', 'e6614c311b7e2f26']) {
      picos.push(new SimulatedPico({ files: { 'main.py': main, 'blob.bin': new Uint8Array(500) }, uart: new LoopbackPeer(), uniqueIdHex }));
    }
    await Promise.all(picos.map((pico) => pico.boot()));
    const results = await Promise.all(picos.map((pico) => pico.runUntil({ serialMatch: /^calls=/ }, { timeoutMs: runMs + 40_000 })));

    for (const [index, pico] of picos.entries()) {
      const detail = pico.serialLines().join('\n');
      expect(results[index]?.reason, detail).toBe('matched');
      const [, calls, wrong] = /^calls=(\d+) wrong=(\d+)$/.exec(results[index]?.line ?? '') ?? [];
      expect(Number(wrong), detail).toBe(0);
      expect(Number(calls), detail).toBeGreaterThanOrEqual(2_000);
    }
  });
});
