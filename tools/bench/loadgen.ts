// Builds and runs the C load generator (tools/bench/loadgen.c). It is compiled with the
// system's cc at benchmark time into a cache folder keyed by the source's hash, so an
// edit to the source always rebuilds it.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const SOURCE = fileURLToPath(new URL('./loadgen.c', import.meta.url));
const run = promisify(execFile);

export interface LoadResult {
  /** Requests answered. */
  requests: number;
  sent: number;
  /** Answers other than 2.05 Content. */
  errors: number;
  /** Middle blocks that carried less than a full block. */
  shortPayloads: number;
  /** Requests given up after 5 attempts. */
  unanswered: number;
  inFlightAtEnd: number;
  retransmissions: number;
  bytesIn: number;
  elapsedUs: number;
  p50Us: number;
  p99Us: number;
}

export interface LoadSpec {
  port: number;
  mode: 'block' | 'get' | 'post';
  /** Uri-Path segments joined by "/", such as "d/1192f5901eb8". */
  path: string;
  devices: number;
  maxRequests: number;
  timeLimitMs: number;
  /** Blocks to cycle over in block mode. */
  blocks?: number;
  szx?: number;
  payload?: Buffer;
  /** Payload offset where each device writes its index as 4 ASCII digits. */
  idOffset?: number;
}

/** Compiles loadgen.c once per source version and returns the binary's path. */
export async function buildLoadGenerator(): Promise<string> {
  const source = readFileSync(SOURCE);
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 12);
  const dir = path.join(os.tmpdir(), 'ota-bench-loadgen');
  const binary = path.join(dir, `loadgen-${hash}`);
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  try {
    await run('cc', ['-O2', '-Wall', '-o', binary, SOURCE]);
  } catch (err) {
    throw new Error(`compiling ${SOURCE} with cc failed; install gcc (apt-get install gcc): ${(err as Error).message}`);
  }
  return binary;
}

export async function runLoad(binary: string, spec: LoadSpec): Promise<LoadResult> {
  const args = [
    '-p', String(spec.port),
    '-m', spec.mode,
    '-u', spec.path,
    '-c', String(spec.devices),
    '-n', String(spec.maxRequests),
    '-t', String(spec.timeLimitMs),
    '-b', String(spec.blocks ?? 1),
    '-z', String(spec.szx ?? 6),
  ];
  if (spec.payload) args.push('-x', spec.payload.toString('hex'));
  if (spec.idOffset !== undefined) args.push('-i', String(spec.idOffset));
  const { stdout } = await run(binary, args, { timeout: spec.timeLimitMs + 15_000 });
  return JSON.parse(stdout) as LoadResult;
}

export function requestsPerSecond(result: LoadResult): number {
  return result.requests / (result.elapsedUs / 1e6);
}

export interface Reflector {
  port: number;
  close(): void;
}

/** Starts the generator's reflect mode: a minimal C responder that sends a 2.05 ACK of replyBytes to every request. */
export async function startReflector(binary: string, replyBytes: number): Promise<Reflector> {
  const child: ChildProcess = spawn(binary, ['-m', 'reflect', '-p', '0', '-r', String(replyBytes)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.stdout!.once('data', (data: Buffer) => resolve((JSON.parse(data.toString('utf8')) as { port: number }).port));
  });
  return { port, close: () => child.kill('SIGTERM') };
}
