// ota-tool against the real ota-server: publish, check, Block2 downloads by ota-tool
// and by libcoap's coap-client, release management and the admin API's errors.
import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packBundle } from '../../src/protocol/bundle.ts';
import { Encoding } from '../../src/protocol/constants.ts';
import { signedMessage } from '../../src/protocol/manifest.ts';
import { jsonOf, makeTempDir, runLibcoap, runTool, startDaemon, type RunningDaemon } from './helpers.ts';

const temp = makeTempDir('daemon');
let daemon: RunningDaemon;
let key: string;
let admin: string[];

const bigFile = join(temp.dir, 'big.bin');
const bigData = randomBytes(100 * 1024);

beforeAll(async () => {
  daemon = await startDaemon(join(temp.dir, 'data'));
  admin = ['--server', daemon.adminUrl, '--token', daemon.token];
  key = join(temp.dir, 'release.key');
  expect((await runTool(['keygen', '--key', key])).code).toBe(0);
  writeFileSync(bigFile, bigData);
});

afterAll(async () => {
  await daemon?.stop();
  temp.remove();
});

function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

describe('publish and fetch 100 KiB', () => {
  let release: Record<string, unknown>;

  beforeAll(async () => {
    const result = await runTool(['publish', bigFile, '--name-as', 'app.py', '--version', '2.0.0', '--key', key, '--notes', 'random bytes', '--json', ...admin]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    release = jsonOf(result);
  });

  it('publishes random bytes raw', () => {
    const bundle = packBundle([{ name: 'app.py', data: bigData }]);
    expect(release).toMatchObject({ version: '2.0.0', channel: 'stable', encoding: 'raw', size: bundle.length, sha256: sha256Hex(bundle) });
  });

  for (const blockSize of ['1024', '64']) {
    it(`coap-client -b ${blockSize} matches digest`, async () => {
      const out = join(temp.dir, `libcoap-${blockSize}.bin`);
      const result = await runLibcoap('coap-client-notls', ['-m', 'get', '-b', blockSize, `${daemon.coapUrl}${String(release.path)}`, '-o', out]);
      expect(result.code).toBe(0);
      expect(sha256Hex(readFileSync(out))).toBe(release.sha256);
    });
  }

  it('check --json returns a verifiable manifest', async () => {
    const result = await runTool(['check', '--server', daemon.coapUrl, '--device', 'pico-check', '--current', '1.0.0', '--json']);
    expect(result.code).toBe(0);
    const manifest = jsonOf(result);
    expect(manifest).toMatchObject({
      update: true,
      version: '2.0.0',
      uri: `${daemon.coapUrl}${String(release.path)}`,
      size: release.size,
      sha256: release.sha256,
      signature: release.signature,
      encoding: 'raw',
    });

    const message = signedMessage({
      version: String(manifest.version),
      size: Number(manifest.size),
      sha256: Buffer.from(String(manifest.sha256), 'hex'),
      encoding: Encoding.raw,
    });
    const publicKey = createPublicKey(readFileSync(`${key}.pub`));
    expect(verify(null, message, publicKey, Buffer.from(String(manifest.signature), 'hex'))).toBe(true);
  });

  it('check --public-key verifies', async () => {
    const result = await runTool(['check', '--server', daemon.coapUrl, '--device', 'pico-check', '--current', '1.0.0', '--public-key', `${key}.pub`]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/signature verified with/);
  });

  it('check --public-key flags a foreign key', async () => {
    const other = join(temp.dir, 'other.key');
    expect((await runTool(['keygen', '--key', other])).code).toBe(0);
    const result = await runTool(['check', '--server', daemon.coapUrl, '--device', 'pico-check', '--current', '1.0.0', '--public-key', `${other}.pub`, '--json']);
    expect(result.code).toBe(1);
    expect(jsonOf(result).signatureValid).toBe(false);
    expect(result.stderr).toMatch(/does not verify/);
  });

  it('check reports no update', async () => {
    const result = await runTool(['check', '--server', daemon.coapUrl, '--device', 'pico-check', '--current', '2.0.0', '--json']);
    expect(result.code).toBe(0);
    expect(jsonOf(result)).toEqual({ update: false });
  });

  it('manual coap-client check names the version', async () => {
    const result = await runLibcoap('coap-client-notls', ['-m', 'get', '-A', '50', `coap://127.0.0.1:${daemon.coapPort}/c?d=pico-manual&v=1.0.0`]);
    expect(result.code).toBe(0);
    const answer = JSON.parse(result.stdout.trim());
    expect(answer).toMatchObject({ update: true, version: '2.0.0', path: release.path });
  });

  it('download verifies size and digest', async () => {
    const out = join(temp.dir, 'tool-512.bin');
    const result = await runTool([
      'download', `${daemon.coapUrl}${String(release.path)}`, '--out', out, '--block-size', '512',
      '--sha256', String(release.sha256), '--size', String(release.size), '--json',
    ]);
    expect(result.code).toBe(0);
    const report = jsonOf(result);
    expect(report).toMatchObject({ size: release.size, sha256: release.sha256, sizeMatches: true, sha256Matches: true, size2: release.size, blockSize: 512 });
    expect(report.etag).toBe(String(release.sha256).slice(0, 16));
    expect(report.blocks).toBe(Math.ceil(Number(release.size) / 512));
  });

  it('download detects a digest mismatch', async () => {
    const out = join(temp.dir, 'mismatch.bin');
    const wrong = 'f'.repeat(64);
    const result = await runTool(['download', `${daemon.coapUrl}${String(release.path)}`, '--out', out, '--sha256', wrong, '--json']);
    expect(result.code).toBe(1);
    expect(jsonOf(result)).toMatchObject({ sha256: release.sha256, sha256Matches: false, file: `${out}.part` });
    expect(result.stderr).toMatch(/SHA-256 is [0-9a-f]{64}, --sha256 expected f{64}/);
  });

  it('publish rejects a duplicate version', async () => {
    const result = await runTool(['publish', bigFile, '--version', '2.0.0', '--key', key, '--json', ...admin]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/rejected 2\.0\.0: a release with the precedence of 2\.0\.0 already exists.*publish the change under a higher version/);
    expect(jsonOf(result)).toMatchObject({ error: { code: 'RELEASE_EXISTS' } });
  });

  it('unknown image leaves no part file', async () => {
    const out = join(temp.dir, 'unknown.bin');
    const result = await runTool(['download', `${daemon.coapUrl}/d/ffffffffffff`, '--out', out]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('failed with 4.04');
    expect(existsSync(`${out}.part`)).toBe(false);
  });

  it('build metadata is no new version', async () => {
    const result = await runTool(['publish', bigFile, '--version', '2.0.0+build2', '--key', key, ...admin]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('build metadata after "+" does not count');
    expect(result.stderr).toContain('--version <a version above 2.0.0>');
  });

  it('same files under a higher version', async () => {
    const result = await runTool(['publish', bigFile, '--name-as', 'app.py', '--version', '2.0.1', '--key', key, '--json', ...admin]);
    expect(result.code).toBe(0);
    // The bytes of 2.0.0 again: the new release shares its download resource.
    expect(jsonOf(result)).toMatchObject({ version: '2.0.1', sha256: release.sha256, path: release.path });
  });

  it('public key as --key named', async () => {
    const result = await runTool(['publish', bigFile, '--version', '2.0.2', '--key', `${key}.pub`, ...admin]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`--key ${key}.pub is a public key; releases are signed with the private key, ${key}, that keygen wrote beside it`);
  });
});

describe('deflate release', () => {
  it('auto picks deflate and round-trips', async () => {
    const appFile = join(temp.dir, 'app.py');
    const libFile = join(temp.dir, 'util.py');
    writeFileSync(appFile, 'import util\nwhile True:\n    util.blink(500)\n'.repeat(200));
    writeFileSync(libFile, 'def blink(ms):\n    pass\n'.repeat(100));
    const published = await runTool(['publish', appFile, `lib/util.py=${libFile}`, '--version', '1.1.0', '--channel', 'text', '--key', key, '--json', ...admin]);
    expect(published.code).toBe(0);
    const release = jsonOf(published);
    expect(release.encoding).toBe('deflate');

    const check = jsonOf(await runTool(['check', '--server', daemon.coapUrl, '--device', 'pico-text', '--current', '1.0.0', '--channel', 'text', '--json']));
    expect(check).toMatchObject({ version: '1.1.0', encoding: 'deflate', sha256: release.sha256 });

    const out = join(temp.dir, 'deflate.bin');
    const downloaded = await runTool(['download', String(check.uri), '--out', out, '--block-size', '256', '--sha256', String(check.sha256), '--size', String(check.size)]);
    expect(downloaded.code).toBe(0);
    const expected = packBundle([
      { name: 'app.py', data: readFileSync(appFile) },
      { name: 'lib/util.py', data: readFileSync(libFile) },
    ]);
    expect(inflateSync(readFileSync(out)).equals(expected)).toBe(true);

    const unpacked = join(temp.dir, 'unpacked');
    expect((await runTool(['unpack', out, '--out', unpacked])).code).toBe(0);
    expect(readFileSync(join(unpacked, 'lib/util.py'))).toEqual(readFileSync(libFile));
  });
});

describe('admin errors', () => {
  it('publish with a wrong token fails', async () => {
    const result = await runTool(['publish', bigFile, '--version', '9.0.0', '--key', key, '--server', daemon.adminUrl, '--token', 'wrong-token-wrong-token']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/rejected the admin token \(403/);
  });

  it('publish without a token fails', async () => {
    const result = await runTool(['publish', bigFile, '--version', '9.0.0', '--key', key, '--server', daemon.adminUrl]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/needs the admin token \(401/);
  });

  it('reads the token from OTA_ADMIN_TOKEN', async () => {
    const result = await runTool(['rollout', '2.0.0', '100', '--server', daemon.adminUrl], { OTA_ADMIN_TOKEN: daemon.token });
    expect(result.code).toBe(0);
  });

  it('reads the token from --token-file', async () => {
    const tokenFile = join(temp.dir, 'admin-token');
    writeFileSync(tokenFile, `${daemon.token}\n`);
    const result = await runTool(['rollout', '2.0.0', '100', '--server', daemon.adminUrl, '--token-file', tokenFile]);
    expect(result.code).toBe(0);
  });

  it('names an unreachable server', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    const result = await runTool(['releases', '--server', `http://127.0.0.1:${port}`]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/ECONNREFUSED.*check that ota-server runs/);
  });

  it('revoke of an unknown version fails', async () => {
    const result = await runTool(['revoke', '7.7.7', ...admin]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/release 7.7.7 not found/);
  });
});

describe('release management', () => {
  it('rollout 0 withholds the release', async () => {
    const file = join(temp.dir, 'beta.py');
    writeFileSync(file, 'print("beta")\n');
    expect((await runTool(['publish', file, '--version', '3.0.0', '--channel', 'beta', '--key', key, ...admin])).code).toBe(0);

    const changed = await runTool(['rollout', '3.0.0', '0', '--json', ...admin]);
    expect(changed.code).toBe(0);
    expect(jsonOf(changed).rollout).toBe(0);
    const check = await runTool(['check', '--server', daemon.coapUrl, '--device', 'pico-beta', '--current', '1.0.0', '--channel', 'beta', '--json']);
    expect(jsonOf(check)).toEqual({ update: false });
  });

  it('revoke withdraws the release', async () => {
    const file = join(temp.dir, 'canary.py');
    writeFileSync(file, 'print("canary")\n');
    expect((await runTool(['publish', file, '--version', '4.0.0', '--channel', 'canary', '--key', key, ...admin])).code).toBe(0);
    const before = await runTool(['check', '--server', daemon.coapUrl, '--device', 'pico-canary', '--current', '1.0.0', '--channel', 'canary', '--json']);
    expect(jsonOf(before).version).toBe('4.0.0');

    const revoked = await runTool(['revoke', '4.0.0', '--json', ...admin]);
    expect(revoked.code).toBe(0);
    expect(jsonOf(revoked).revoked).toBe(true);
    const after = await runTool(['check', '--server', daemon.coapUrl, '--device', 'pico-canary', '--current', '1.0.0', '--channel', 'canary', '--json']);
    expect(jsonOf(after)).toEqual({ update: false });
  });

  it('releases lists highest first', async () => {
    const result = await runTool(['releases', '--json', '--server', daemon.adminUrl]);
    expect(result.code).toBe(0);
    const versions = (jsonOf(result).releases as { version: string }[]).map((release) => release.version);
    expect(versions.slice(0, 2)).toEqual(['4.0.0', '3.0.0']);
    expect(versions).toContain('2.0.0');
    const table = await runTool(['releases', '--server', daemon.adminUrl]);
    expect(table.stdout.split('\n')[0]).toMatch(/^version\s+channel\s+rollout/);
  });

  it('devices lists checked-in devices', async () => {
    const result = await runTool(['devices', '--json', '--server', daemon.adminUrl]);
    expect(result.code).toBe(0);
    const ids = (jsonOf(result).devices as { id: string }[]).map((device) => device.id);
    expect(ids).toEqual(expect.arrayContaining(['pico-check', 'pico-text', 'pico-canary']));
  });

  it('events filters by device', async () => {
    const result = await runTool(['events', '--device', 'pico-canary', '--limit', '5', '--json', '--server', daemon.adminUrl]);
    expect(result.code).toBe(0);
    const list = jsonOf(result).events as { device?: string }[];
    expect(list.length).toBeGreaterThan(0);
    expect(list.length).toBeLessThanOrEqual(5);
    expect(list.every((event) => event.device === 'pico-canary')).toBe(true);
  });
});

describe('server with --public-key', () => {
  it('publish with a foreign key names the mismatch', async () => {
    const dataDir = join(temp.dir, 'data-signed');
    const signed = await startDaemon(dataDir, ['--public-key', `${key}.pub`]);
    try {
      const other = join(temp.dir, 'foreign.key');
      expect((await runTool(['keygen', '--key', other])).code).toBe(0);
      const file = join(temp.dir, 'signed.py');
      writeFileSync(file, 'print("signed")\n');
      const serverArgs = ['--server', signed.adminUrl, '--token', signed.token];

      const rejected = await runTool(['publish', file, '--version', '1.0.1', '--key', other, '--json', ...serverArgs]);
      expect(rejected.code).toBe(1);
      expect(jsonOf(rejected)).toMatchObject({ error: { code: 'BAD_SIGNATURE' } });
      expect(rejected.stderr).toMatch(/--key .*foreign.key does not match the public key/);

      const accepted = await runTool(['publish', file, '--version', '1.0.1', '--key', key, ...serverArgs]);
      expect(accepted.code).toBe(0);
    } finally {
      await signed.stop();
    }
  });
});
