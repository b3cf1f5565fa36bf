// A server under benchmark, in its own Node process so that its CPU and memory are
// its own: either the real daemon (CoAP, admin API and LevelDB in a temporary folder)
// a bare node-coap 1.5.0 server that answers every GET with two bytes, or a Node dgram
// echo that answers every datagram with a fixed 2.05 ACK of 1024 bytes (the cost of
// Node's UDP I/O alone, with no CoAP work).
// The parent (tools/bench/main.ts) drives it over the fork IPC channel:
//   -> { type: 'publish', version, size, seed }    <- { type: 'published', downloadId }
//   -> { type: 'memory' }                          <- { type: 'memory', heapUsed, rss, peakRss }
//   -> { type: 'sample', intervalMs }              <- nothing; starts sampling the live heap
//   -> { type: 'sampled' }                         <- { type: 'sampled', maxHeapUsed }
//   -> { type: 'close' }                           <- exit 0
// Run: node --import tsx --expose-gc tools/bench/server-process.ts daemon|bare|echo
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createServer } from 'coap';
import pino from 'pino';
import { startServer, type RunningServer } from '../../src/daemon/server.ts';
import { downloadId } from '../../src/protocol/manifest.ts';
import type { ReleaseRecord } from '../../src/storage/store.ts';

export type ParentMessage =
  | { type: 'publish'; version: string; size: number; seed: number }
  | { type: 'memory' }
  | { type: 'sample'; intervalMs: number }
  | { type: 'sampled' }
  | { type: 'close' };

export type ChildMessage =
  | { type: 'ready'; port: number }
  | { type: 'published'; downloadId: string }
  | { type: 'memory'; heapUsed: number; rss: number; peakRss: number }
  | { type: 'sampled'; maxHeapUsed: number }
  | { type: 'failed'; message: string };

/** Builds deterministic bytes, so every run serves the same payload. */
export function benchPayload(size: number, seed: number): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(`bench ${seed}`).digest();
  for (let offset = 0; offset < size; offset += 32) {
    block.copy(out, offset, 0, Math.min(32, size - offset));
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

function reply(message: ChildMessage): void {
  process.send?.(message);
}

function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('the server process needs --expose-gc to measure the live heap');
  gc();
}

/** Peak resident set size from Linux /proc (VmHWM, reported there in KiB). */
function peakRss(): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return Number(match?.[1] ?? 0) * 1024;
}

async function publishRelease(server: RunningServer, version: string, size: number, seed: number): Promise<string> {
  const payload = benchPayload(size, seed);
  const digest = createHash('sha256').update(payload).digest();
  const record: ReleaseRecord = {
    version,
    channel: 'stable',
    notes: `benchmark release of ${size} bytes`,
    encoding: 'raw',
    rollout: 100,
    size,
    sha256: digest.toString('hex'),
    // The server never verifies signatures on this path; 64 fixed bytes stand in.
    signature: Buffer.alloc(64, 0x5a).toString('hex'),
    downloadId: downloadId(digest),
    revoked: false,
    publishedAt: new Date(0).toISOString(),
  };
  await server.store.putRelease(record, payload);
  return record.downloadId;
}

async function main(): Promise<void> {
  const kind = process.argv[2];
  let daemon: RunningServer | undefined;
  let temp: string | undefined;
  let closeBare: (() => void) | undefined;
  let port: number;

  if (kind === 'daemon') {
    temp = await mkdtemp(path.join(os.tmpdir(), 'ota-bench-'));
    daemon = await startServer({
      dataDir: temp,
      logger: pino({ level: 'silent' }),
      coapPort: 0,
      bind: '127.0.0.1',
      adminPort: 0,
      adminToken: 'benchmark-admin-token-0123456789',
      // The benchmark measures capacity, not policy: its clients send checks far
      // faster than the per-device limit allows, so the limit is off.
      deviceRate: 'off',
    });
    port = daemon.coapPort;
  } else if (kind === 'bare') {
    const bare = createServer({ type: 'udp4' });
    bare.on('request', (_req: unknown, res: { end(payload: string): void }) => res.end('ok'));
    await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', () => resolve()));
    port = (bare as unknown as { _sock: { address(): { port: number } } })._sock.address().port;
    closeBare = () => bare.close();
  } else if (kind === 'echo') {
    const socket = dgram.createSocket('udp4');
    const reply = Buffer.alloc(4 + 8 + 1 + 1024, 0x5a);
    socket.on('message', (msg, rsinfo) => {
      const tokenLength = msg[0]! & 0x0f;
      reply[0] = 0x60 | tokenLength;
      reply[1] = 0x45;
      msg.copy(reply, 2, 2, 4 + tokenLength);
      reply[4 + tokenLength] = 0xff;
      socket.send(reply, 0, 4 + tokenLength + 1 + 1024, rsinfo.port, rsinfo.address);
    });
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
    port = socket.address().port;
    closeBare = () => socket.close();
  } else {
    throw new Error(`server kind must be "daemon", "bare" or "echo", got ${JSON.stringify(kind)}`);
  }

  let maxHeapUsed = 0;
  let sampler: NodeJS.Timeout | undefined;
  process.on('message', (message: ParentMessage) => {
    void (async () => {
      switch (message.type) {
        case 'publish': {
          if (!daemon) throw new Error('publish needs the daemon, not the bare server');
          reply({ type: 'published', downloadId: await publishRelease(daemon, message.version, message.size, message.seed) });
          break;
        }
        case 'memory': {
          collectGarbage();
          const usage = process.memoryUsage();
          reply({ type: 'memory', heapUsed: usage.heapUsed, rss: usage.rss, peakRss: peakRss() });
          break;
        }
        case 'sample': {
          maxHeapUsed = 0;
          sampler = setInterval(() => {
            collectGarbage();
            maxHeapUsed = Math.max(maxHeapUsed, process.memoryUsage().heapUsed);
          }, message.intervalMs);
          break;
        }
        case 'sampled': {
          clearInterval(sampler);
          reply({ type: 'sampled', maxHeapUsed });
          break;
        }
        case 'close': {
          await daemon?.close();
          closeBare?.();
          if (temp) await rm(temp, { recursive: true, force: true });
          process.disconnect();
          break;
        }
      }
    })().catch((err: unknown) => reply({ type: 'failed', message: (err as Error).stack ?? String(err) }));
  });
  reply({ type: 'ready', port });
}

if (process.send) {
  main().catch((err: unknown) => {
    reply({ type: 'failed', message: (err as Error).stack ?? String(err) });
    process.exitCode = 1;
  });
}
