// libcoap's example server (coap-server-notls, libcoap 4.3.1) as the reference peer: it
// serves a payload of our choosing at /example_data once we PUT it there, and answers
// Block2 requests for it with its own block-wise code (coap_add_data_large_response).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const LIBCOAP_RESOURCE = 'example_data';
const START_TIMEOUT_MS = 5000;

export interface LibcoapServer {
  port: number;
  close(): Promise<void>;
}

/** Returns the libcoap version the installed coap-server-notls reports, such as "4.3.1". */
export async function libcoapVersion(): Promise<string> {
  // coap-server-notls prints its usage with the version to stderr and exits with status 1 for -h without an argument.
  const result = await run('coap-server-notls', ['-h'], { timeout: 5000 }).catch((err: { stderr?: string }) => ({ stderr: err.stderr ?? '' }));
  return /v(\d+\.\d+\.\d+)/.exec(result.stderr)?.[1] ?? 'unknown';
}

/** Picks a UDP port that is free right now on 127.0.0.1. */
async function freeUdpPort(): Promise<number> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  const port = socket.address().port;
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/** Starts coap-server-notls on 127.0.0.1 and PUTs payload to /example_data. */
export async function startLibcoapServer(payload: Buffer): Promise<LibcoapServer> {
  const port = await freeUdpPort();
  const child: ChildProcess = spawn('coap-server-notls', ['-A', '127.0.0.1', '-p', String(port), '-v', '0'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ota-bench-libcoap-'));
  const file = path.join(dir, 'payload.bin');
  await writeFile(file, payload);
  const uri = `coap://127.0.0.1:${port}/${LIBCOAP_RESOURCE}`;
  const started = Date.now();
  // The server needs a moment to bind; the PUT is retried until it answers.
  for (;;) {
    try {
      await run('coap-client-notls', ['-m', 'put', '-b', '1024', '-B', '2', '-f', file, uri], { timeout: 10_000 });
      const { stdout } = await run('coap-client-notls', ['-m', 'get', '-b', '1024', '-B', '5', uri], { encoding: 'buffer', timeout: 30_000, maxBuffer: 64 * 2 ** 20 });
      if (stdout.subarray(0, payload.length).equals(payload)) break;
      throw new Error(`libcoap served ${stdout.length} bytes at /${LIBCOAP_RESOURCE}, not the ${payload.length} bytes PUT there`);
    } catch (err) {
      if (Date.now() - started > START_TIMEOUT_MS) {
        child.kill('SIGTERM');
        throw new Error(`coap-server-notls on port ${port} did not take the payload within ${START_TIMEOUT_MS} ms: ${(err as Error).message}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  await rm(dir, { recursive: true, force: true });
  return {
    port,
    async close() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
