// Restart of the real daemon process (bin/ota-server.js) in the middle of a download,
// after SIGTERM and after SIGKILL: the device resumes at the next block, the bytes
// match, and LevelDB holds exactly what it held before plus the new events.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeUint } from '../../src/coap/datagram.ts';
import { Store } from '../../src/storage/store.ts';
import { Code, RawClient, TEST_TOKEN, block2, optionOf, path_, payloadOf, publish, tempDir } from './helpers.ts';

const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../bin/ota-server.js');
const IMAGE_SIZE = 20_000;
const SZX = 5; // 512-byte blocks: 40 blocks for the image
const BLOCK_SIZE = 512;
const SPLIT_AT = 17;

interface Daemon {
  child: ChildProcess;
  coapPort: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function spawnDaemon(dataDir: string): Promise<Daemon> {
  const child = spawn(process.execPath, [BIN, '--coap-port', '0', '--admin-port', '0', '--bind', '127.0.0.1', '--data-dir', dataDir, '--admin-token', TEST_TOKEN], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const lines = createInterface({ input: child.stdout! });
  const coapPort = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('daemon logged no "listening" line within 20 s')), 20_000);
    lines.on('line', (line) => {
      const entry = JSON.parse(line) as { msg?: string; coapPort?: number };
      if (entry.msg === 'listening' && entry.coapPort) {
        clearTimeout(timer);
        resolve(entry.coapPort);
      }
    });
  });
  return { child, coapPort, exited };
}

async function fetchBlocks(port: number, id: string, from: number, to: number): Promise<Buffer[]> {
  const client = new RawClient(port);
  try {
    const parts: Buffer[] = [];
    for (let num = from; num <= to; num++) {
      const reply = await client.request({ code: Code.GET, options: [...path_('d', id), block2(num, SZX)] });
      expect(reply.code).toBe('2.05');
      expect(decodeUint(optionOf(reply, 23)!) >> 4).toBe(num);
      parts.push(reply.payload);
    }
    return parts;
  } finally {
    client.close();
  }
}

async function dump(dataDir: string): Promise<Array<[string, string]>> {
  const store = await Store.open(dataDir);
  try {
    return await store.dumpRaw();
  } finally {
    await store.close();
  }
}

/** Event keys start with the hex of "!event!". */
const EVENT_PREFIX = Buffer.from('!event!').toString('hex');

async function resumeAcrossRestart(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  const temp = await tempDir();
  cleanups.push(() => temp.remove());
  const image = payloadOf(IMAGE_SIZE, 7);
  const setup = await Store.open(temp.dir);
  const release = await publish(setup, '3.0.0', image);
  await setup.close();
  const lastNum = Math.ceil(IMAGE_SIZE / BLOCK_SIZE) - 1;

  const first = await spawnDaemon(temp.dir);
  const head = await fetchBlocks(first.coapPort, release.downloadId, 0, SPLIT_AT);
  first.child.kill(signal);
  const exit = await first.exited;
  if (signal === 'SIGTERM') expect(exit.code).toBe(0);
  else expect(exit.signal).toBe('SIGKILL');
  const beforeRestart = await dump(temp.dir);

  const second = await spawnDaemon(temp.dir);
  const tail = await fetchBlocks(second.coapPort, release.downloadId, SPLIT_AT + 1, lastNum);
  second.child.kill('SIGTERM');
  expect((await second.exited).code).toBe(0);
  const afterRestart = await dump(temp.dir);

  expect(Buffer.concat([...head, ...tail]).equals(image)).toBe(true);
  // Everything stored before the restart is still there, byte for byte...
  const after = new Map(afterRestart);
  for (const [key, value] of beforeRestart) expect(after.get(key), `key ${key}`).toBe(value);
  // ...and the second run added only the download-finished event.
  const added = afterRestart.filter(([key]) => !beforeRestart.some(([old]) => old === key));
  expect(added).toHaveLength(1);
  expect(added[0]![0].startsWith(EVENT_PREFIX)).toBe(true);
  expect(Buffer.from(added[0]![1], 'hex').toString('utf8')).toContain('download-finished');
}

describe('daemon restart', () => {
  it('resume after SIGTERM', () => resumeAcrossRestart('SIGTERM'));
  it('resume after SIGKILL', () => resumeAcrossRestart('SIGKILL'));
});
