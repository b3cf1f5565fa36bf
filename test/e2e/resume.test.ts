// A download cut by a reset of the Pico resumes from the staged bytes: the blocks
// written before the reset are not fetched again.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import {
  APPS_DIR,
  deviceConfig,
  factoryImage,
  makeSigningKey,
  publishFiles,
  reported,
  runCleanups,
  serialText,
  startDaemon,
  startDevice,
  waitForDevice,
} from './fixture.ts';

afterEach(runCleanups);

const BLOCK_BYTES = 256;
const CUT_AT_BLOCK = 6;

/** The firmware's default block_window: block requests in flight at once. */
const BLOCK_WINDOW = 4;

test('download resumes after reset', async () => {
  const key = await makeSigningKey();
  const daemon = await startDaemon({ publicKeyPem: key.publicPem });
  // Random data stays raw, so the image has about 6000 / 256 = 24 blocks.
  const release = await publishFiles(
    daemon,
    key,
    '2.0.0',
    { 'app.py': readFileSync(join(APPS_DIR, '2.0.0', 'app.py')), 'data.bin': randomBytes(6000) },
    { encoding: 'raw' },
  );
  const { pico, tap } = await startDevice(factoryImage(await deviceConfig(daemon, key, { block_size: BLOCK_BYTES })));

  const cut = await pico.runUntil(() => tap.sent.some((request) => request.block === CUT_AT_BLOCK), { timeoutMs: 20_000 });
  expect(cut.reason).toBe('matched');
  pico.powerCut();
  // Blocks are requested BLOCK_WINDOW at a time, so the durable staging file, not the
  // last request, says where the download resumes.
  const stagedBytes = pico.readFile('ota_staging.bin')?.length ?? 0;
  const resumeBlock = Math.floor(stagedBytes / BLOCK_BYTES);
  expect(resumeBlock).toBeGreaterThanOrEqual(1);
  await pico.boot();
  await waitForDevice(daemon, reported('2.0.0', 'confirmed'), { timeoutMs: 30_000 }).catch((err: Error) => {
    throw new Error(`${err.message}\nserial:\n${serialText(pico)}`);
  });

  const blocks = Math.ceil(release.size / BLOCK_BYTES);
  const firstAfterCut = tap.sent.find((request) => request.boot === 2 && request.block !== undefined);
  expect(firstAfterCut?.block).toBe(resumeBlock);
  const counts = tap.blockRequests();
  for (let block = 0; block < resumeBlock; block++) expect(counts.get(block), `requests for block ${block}`).toBe(1);
  // Blocks requested but not yet durable at the cut are asked for again, once.
  for (let block = resumeBlock; block <= CUT_AT_BLOCK; block++) {
    expect(counts.get(block), `requests for block ${block}`).toBeLessThanOrEqual(2);
  }
  for (let block = CUT_AT_BLOCK + BLOCK_WINDOW; block < blocks; block++) {
    expect(counts.get(block), `requests for block ${block}`).toBe(1);
  }
  expect(counts.size).toBe(blocks);
  expect(pico.serialLines(2).some((line) => line.startsWith('I ota: resuming a staged download at byte'))).toBe(true);
});
