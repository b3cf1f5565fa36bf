// libcoap's coap-client-notls (Debian libcoap3-bin) against the real daemon: block-wise
// downloads at two block sizes write the exact image, and the JSON check names the
// offered version, as the one-liner in docs/protocol.md shows.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/daemon/server.ts';
import type { ReleaseRecord } from '../../src/storage/store.ts';
import { payloadOf, publish, startTestServer, tempDir } from './helpers.ts';

const run = promisify(execFile);
const CLIENT_TIMEOUT_MS = 30_000;

let temp: Awaited<ReturnType<typeof tempDir>>;
let server: RunningServer;
let release: ReleaseRecord;
let image: Buffer;

beforeAll(async () => {
  temp = await tempDir();
  server = await startTestServer(path.join(temp.dir, 'data'));
  image = payloadOf(70_000, 9);
  release = await publish(server.store, '1.4.2', image);
});

afterAll(async () => {
  await server.close();
  await temp.remove();
});

describe('coap-client-notls', () => {
  for (const blockSize of [1024, 64]) {
    it(`download with -b ${blockSize}`, async () => {
      const file = path.join(temp.dir, `image-${blockSize}.bin`);
      const uri = `coap://127.0.0.1:${server.coapPort}/d/${release.downloadId}`;
      await run('coap-client-notls', ['-m', 'get', '-b', String(blockSize), '-o', file, uri], { timeout: CLIENT_TIMEOUT_MS });
      const written = await readFile(file);
      expect(written.length).toBe(image.length);
      expect(written.equals(image)).toBe(true);
    });
  }

  it('JSON check names the offer', async () => {
    const uri = `coap://127.0.0.1:${server.coapPort}/c?d=pico-001&v=1.0.0`;
    const { stdout } = await run('coap-client-notls', ['-m', 'get', '-A', '50', uri], { timeout: CLIENT_TIMEOUT_MS });
    const answer = JSON.parse(stdout) as { update: boolean; version: string; path: string; sha256: string };
    expect(answer.update).toBe(true);
    expect(answer.version).toBe('1.4.2');
    expect(answer.path).toBe(`/d/${release.downloadId}`);
    expect(answer.sha256).toBe(release.sha256);
  });

  it('JSON check without update', async () => {
    const uri = `coap://127.0.0.1:${server.coapPort}/c?d=pico-001&v=1.4.2`;
    const { stdout } = await run('coap-client-notls', ['-m', 'get', '-A', '50', uri], { timeout: CLIENT_TIMEOUT_MS });
    expect(JSON.parse(stdout)).toEqual({ update: false });
  });
});
