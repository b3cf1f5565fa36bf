// ota-tool device add with an admin token, device remove and the devices listing,
// against the real daemon process: registration on the server, the config file
// written only after the device is registered, and failures that name the cause.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonOf, makeTempDir, runTool, startDaemon, type RunningDaemon } from './helpers.ts';

let temp: { dir: string; remove: () => void };
let daemon: RunningDaemon;
let publicKey: string;

beforeAll(async () => {
  temp = makeTempDir('registry');
  daemon = await startDaemon(join(temp.dir, 'data'));
  const key = join(temp.dir, 'release.key');
  expect((await runTool(['keygen', '--key', key])).code).toBe(0);
  publicKey = `${key}.pub`;
});

afterAll(async () => {
  await daemon.stop();
  temp.remove();
});

function deviceAdd(id: string, out: string, extra: string[]): Promise<Awaited<ReturnType<typeof runTool>>> {
  return runTool(['device', 'add', id, '--server', '127.0.0.1', '--apn', 'nb.iot', '--public-key', publicKey, '--out', join(temp.dir, out), ...extra]);
}

async function registrationOf(id: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${daemon.adminUrl}/api/devices/${id}/registration`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('device registration from ota-tool', () => {
  it('device add registers', async () => {
    const result = await deviceAdd('pico-101', 'd101', ['--admin-server', daemon.adminUrl, '--token', daemon.token, '--label', 'bench 1', '--channel', 'beta']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`registered pico-101 on ${daemon.adminUrl} (new)`);
    expect(existsSync(join(temp.dir, 'd101', 'ota_config.json'))).toBe(true);
    const registration = await registrationOf('pico-101');
    expect(registration.status).toBe(200);
    expect(registration.body).toMatchObject({ id: 'pico-101', channel: 'beta', label: 'bench 1' });
  });

  it('device add again keeps label', async () => {
    expect((await deviceAdd('pico-102', 'd102', ['--admin-server', daemon.adminUrl, '--token', daemon.token, '--label', 'roof'])).code).toBe(0);
    const again = await deviceAdd('pico-102', 'd102', ['--admin-server', daemon.adminUrl, '--token', daemon.token, '--force', '--json']);
    expect(again.code).toBe(0);
    expect(jsonOf(again).registration).toMatchObject({ id: 'pico-102', label: 'roof' });
    const text = await deviceAdd('pico-102', 'd102', ['--admin-server', daemon.adminUrl, '--token', daemon.token, '--force']);
    expect(text.stdout).toContain('(unchanged)');
  });

  it('failed registration writes no file', async () => {
    const result = await deviceAdd('pico-103', 'd103', ['--admin-server', daemon.adminUrl, '--token', 'wrong-token-0123456789']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('device pico-103 was not registered, so');
    expect(result.stderr).toContain('ota_config.json was not written: the server rejected the admin token');
    expect(existsSync(join(temp.dir, 'd103', 'ota_config.json'))).toBe(false);
    expect((await registrationOf('pico-103')).status).toBe(404);
  });

  it('existing file stops before registering', async () => {
    expect((await deviceAdd('pico-104', 'd104', [])).code).toBe(0);
    const result = await deviceAdd('pico-104', 'd104', ['--token', daemon.token, '--admin-server', daemon.adminUrl]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('already exists; pass --force');
    expect((await registrationOf('pico-104')).status).toBe(404);
  });

  it('label without token exits 2', async () => {
    const result = await deviceAdd('pico-105', 'd105', ['--label', 'shed']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--label is stored with the registration on the server');
    expect(existsSync(join(temp.dir, 'd105', 'ota_config.json'))).toBe(false);
  });

  it('devices shows the flag', async () => {
    expect((await deviceAdd('pico-106', 'd106', ['--admin-server', daemon.adminUrl, '--token', daemon.token, '--label', 'window'])).code).toBe(0);
    const result = await runTool(['devices', '--server', daemon.adminUrl]);
    expect(result.code).toBe(0);
    const header = result.stdout.split('\n')[0]!;
    expect(header).toMatch(/^id\s+registered\s+channel\s+version\s+status\s+last seen\s+address\s+label$/);
    const row = result.stdout.split('\n').find((line) => line.startsWith('pico-106'));
    expect(row).toMatch(/^pico-106\s+yes\s+stable\s+not-seen\s+window$/);
  });

  it('device remove unregisters', async () => {
    expect((await deviceAdd('pico-107', 'd107', ['--admin-server', daemon.adminUrl, '--token', daemon.token])).code).toBe(0);
    const removed = await runTool(['device', 'remove', 'pico-107', '--server', daemon.adminUrl, '--token', daemon.token]);
    expect(removed.code).toBe(0);
    expect(removed.stdout).toContain('removed the registration of pico-107 (channel stable); its history stays on the server');
    expect((await registrationOf('pico-107')).status).toBe(404);
    expect(JSON.parse(readFileSync(join(temp.dir, 'd107', 'ota_config.json'), 'utf8')).device_id).toBe('pico-107');

    const again = await runTool(['device', 'remove', 'pico-107', '--server', daemon.adminUrl, '--token', daemon.token]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`device pico-107 is not registered on ${daemon.adminUrl}`);
  });

  it('device remove bad id exits 2', async () => {
    const result = await runTool(['device', 'remove', 'pico 1', '--server', daemon.adminUrl]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('<id> "pico 1" must be 1..64');
  });
});
