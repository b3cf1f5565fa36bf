// ota-tool commands that need no server: keys, device configuration, unpack, the
// option rules and help text.
import { spawnSync } from 'node:child_process';
import { createPublicKey, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { packBundle } from '../../src/protocol/bundle.ts';
import { encodeBundle } from '../../tools/ota-tool/publish.ts';
import { EXAMPLES } from '../../tools/ota-tool/options.ts';
import { jsonOf, makeTempDir, runTool } from './helpers.ts';

const temp = makeTempDir('cli');
afterAll(() => temp.remove());

async function newKey(name: string): Promise<string> {
  const key = join(temp.dir, name);
  const result = await runTool(['keygen', '--key', key]);
  expect(result.code).toBe(0);
  return key;
}

describe('keygen', () => {
  it('writes private key with mode 0600', async () => {
    const key = join(temp.dir, 'mode.key');
    const result = await runTool(['keygen', '--key', key, '--json']);
    expect(result.code).toBe(0);
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(readFileSync(key, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(readFileSync(`${key}.pub`, 'utf8')).toMatch(/^-----BEGIN PUBLIC KEY-----/);
  });

  it('prints the raw public key', async () => {
    const key = join(temp.dir, 'raw.key');
    const output = jsonOf(await runTool(['keygen', '--key', key, '--json']));
    const jwk = createPublicKey(readFileSync(`${key}.pub`)).export({ format: 'jwk' });
    expect(output.publicKey).toBe(Buffer.from(jwk.x ?? '', 'base64url').toString('hex'));
    expect(output.publicKey).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses to overwrite a key', async () => {
    const key = await newKey('keep.key');
    const before = readFileSync(key, 'utf8');
    const result = await runTool(['keygen', '--key', key]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/already exists.*--force/);
    expect(result.stderr).toMatch(/example: ota-tool keygen --key/);
    expect(readFileSync(key, 'utf8')).toBe(before);
  });

  it('overwrites with --force and keeps 0600', async () => {
    const key = await newKey('force.key');
    const before = readFileSync(key, 'utf8');
    const result = await runTool(['keygen', '--key', key, '--force']);
    expect(result.code).toBe(0);
    expect(readFileSync(key, 'utf8')).not.toBe(before);
    expect(statSync(key).mode & 0o777).toBe(0o600);
  });
});

describe('device add', () => {
  it('writes a valid config', async () => {
    const key = await newKey('device.key');
    const out = join(temp.dir, 'dev1');
    const result = await runTool([
      'device', 'add', 'pico-001', '--server', 'ota.example.net:5999', '--apn', 'iot.1nce.net',
      '--public-key', `${key}.pub`, '--channel', 'beta', '--check-interval', '600', '--out', out,
    ]);
    expect(result.code).toBe(0);
    const config = JSON.parse(readFileSync(join(out, 'ota_config.json'), 'utf8'));
    const jwk = createPublicKey(readFileSync(`${key}.pub`)).export({ format: 'jwk' });
    expect(config).toEqual({
      device_id: 'pico-001',
      server: 'ota.example.net',
      port: 5999,
      apn: 'iot.1nce.net',
      channel: 'beta',
      check_interval_s: 600,
      public_key: Buffer.from(jwk.x ?? '', 'base64url').toString('hex'),
    });
  });

  it('defaults port, channel and interval', async () => {
    const key = await newKey('defaults.key');
    const out = join(temp.dir, 'dev2');
    const result = await runTool(['device', 'add', 'pico-002', '--server', '192.0.2.10', '--apn', 'nb.iot', '--public-key', `${key}.pub`, '--out', out, '--json']);
    expect(result.code).toBe(0);
    expect(jsonOf(result).config).toMatchObject({ port: 5683, channel: 'stable', check_interval_s: 3600 });
  });

  it('warns about a loopback server', async () => {
    const key = await newKey('loopback.key');
    const out = join(temp.dir, 'dev-loopback');
    const result = await runTool(['device', 'add', 'pico-003', '--server', '127.0.0.1:5683', '--apn', 'nb.iot', '--public-key', `${key}.pub`, '--out', out]);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain("warning: --server 127.0.0.1 is this computer's loopback address");
    expect(existsSync(join(out, 'ota_config.json'))).toBe(true);
  });

  it('rejects a bad device id', async () => {
    const key = await newKey('badid.key');
    const out = join(temp.dir, 'dev3');
    const result = await runTool(['device', 'add', 'pico 001/x', '--server', '127.0.0.1', '--apn', 'nb.iot', '--public-key', `${key}.pub`, '--out', out]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/<id> "pico 001\/x" must be 1..64 letters/);
    expect(existsSync(join(out, 'ota_config.json'))).toBe(false);
  });

  it('rejects a bad server and APN', async () => {
    const key = await newKey('badserver.key');
    const badServer = await runTool(['device', 'add', 'pico-004', '--server', 'coap://x', '--apn', 'nb.iot', '--public-key', `${key}.pub`, '--out', temp.dir]);
    expect(badServer.code).toBe(2);
    expect(badServer.stderr).toMatch(/--server "coap:\/\/x" must be HOST or HOST:PORT/);
    const badApn = await runTool(['device', 'add', 'pico-004', '--server', 'x', '--apn', 'nb "iot"', '--public-key', `${key}.pub`, '--out', temp.dir]);
    expect(badApn.code).toBe(2);
    expect(badApn.stderr).toMatch(/--apn/);
  });

  it('rejects a private key as public key', async () => {
    const key = await newKey('swap.key');
    const out = join(temp.dir, 'dev5');
    const result = await runTool(['device', 'add', 'pico-005', '--server', 'x', '--apn', 'nb.iot', '--public-key', key, '--out', out]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/is a private key; pass the public key file/);
    expect(existsSync(join(out, 'ota_config.json'))).toBe(false);
  });

  it('refuses to overwrite a config', async () => {
    const key = await newKey('over.key');
    const out = join(temp.dir, 'dev6');
    const args = ['device', 'add', 'pico-006', '--server', 'x', '--apn', 'nb.iot', '--public-key', `${key}.pub`, '--out', out];
    expect((await runTool(args)).code).toBe(0);
    const again = await runTool(args);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists; pass --force/);
    expect((await runTool([...args, '--force'])).code).toBe(0);
  });
});

describe('option rules', () => {
  const cases: { name: string; argv: string[]; message: RegExp }[] = [
    { name: 'publish non-semver', argv: ['publish', 'a.py', '--version', '1.0', '--key', 'k'], message: /--version "1.0" is not a semantic version/ },
    { name: 'publish version too long', argv: ['publish', 'a.py', '--version', `1.0.0-${'a'.repeat(40)}`, '--key', 'k'], message: /the maximum is 32/ },
    { name: 'token with token-file', argv: ['releases', '--token', 't', '--token-file', 'f'], message: /--token and --token-file/ },
    { name: 'name-as with two files', argv: ['publish', 'a.py', 'b.py', '--name-as', 'x.py', '--version', '1.0.0', '--key', 'k'], message: /--name-as names one file/ },
    { name: 'rollout above 100', argv: ['rollout', '1.0.0', '101'], message: /<percent> must be an integer percentage/ },
    { name: 'publish rollout fraction', argv: ['publish', 'a.py', '--version', '1.0.0', '--key', 'k', '--rollout', '2.5'], message: /--rollout must be/ },
    { name: 'publish bad channel', argv: ['publish', 'a.py', '--version', '1.0.0', '--key', 'k', '--channel', 'Beta'], message: /--channel "Beta"/ },
    { name: 'check bad device', argv: ['check', '--server', 'coap://127.0.0.1', '--device', 'a b', '--current', '1.0.0'], message: /--device "a b"/ },
    { name: 'check bad current', argv: ['check', '--server', 'coap://127.0.0.1', '--device', 'p', '--current', 'v1'], message: /--current "v1"/ },
    { name: 'download bad block size', argv: ['download', 'coap://127.0.0.1/d/x', '--out', 'f', '--block-size', '100'], message: /--block-size: block size must be a power of two/ },
    { name: 'download bad sha256', argv: ['download', 'coap://127.0.0.1/d/x', '--out', 'f', '--sha256', 'abc'], message: /--sha256 must be 64 hex/ },
    { name: 'events limit zero', argv: ['events', '--limit', '0'], message: /--limit must be an integer in 1..1000/ },
    { name: 'device check interval', argv: ['device', 'add', 'p1', '--server', 'x', '--apn', 'a', '--public-key', 'k', '--check-interval', '5'], message: /--check-interval must be whole seconds/ },
    { name: 'missing required flag', argv: ['publish', 'a.py', '--key', 'k'], message: /Missing required argument: version/ },
    { name: 'unknown flag', argv: ['releases', '--colour'], message: /Unknown argument/ },
  ];

  for (const rule of cases) {
    it(rule.name, async () => {
      const result = await runTool(rule.argv);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(rule.message);
      expect(result.stderr).toMatch(/example: ota-tool /);
    });
  }

  it('reports usage errors as JSON', async () => {
    const result = await runTool(['publish', 'a.py', '--version', 'x', '--key', 'k', '--json']);
    expect(jsonOf(result)).toMatchObject({ error: { code: 'USAGE', example: EXAMPLES.publish } });
  });
});

describe('help', () => {
  const commands = [['keygen'], ['publish'], ['releases'], ['devices'], ['events'], ['revoke'], ['rollout'], ['schedule'], ['check'], ['download'], ['device', 'add'], ['unpack']];
  for (const command of commands) {
    it(`documents ${command.join(' ')}`, async () => {
      const result = await runTool([...command, '--help']);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(`ota-tool ${command.join(' ')}`);
      expect(result.stdout).toContain('--json');
    });
  }
});

describe('publish encoding', () => {
  it('auto keeps random bytes raw', () => {
    const bundle = packBundle([{ name: 'r.bin', data: randomBytes(4096) }]);
    expect(encodeBundle(bundle, 'auto').encoding).toBe('raw');
  });

  it('auto deflates text with a 1 KiB window', () => {
    const bundle = packBundle([{ name: 'app.py', data: Buffer.from('print("hello")\n'.repeat(500)) }]);
    const encoded = encodeBundle(bundle, 'auto');
    expect(encoded.encoding).toBe('deflate');
    // RFC 1950 section 2.2: CMF 0x28 = CM 8 (deflate) with CINFO 2 (2^10-byte window).
    expect(encoded.payload[0]).toBe(0x28);
    expect(encoded.payload.length).toBeLessThan(bundle.length);
  });
});

describe('unpack', () => {
  it('inflates and writes the files', async () => {
    const bundle = packBundle([
      { name: 'app.py', data: Buffer.from('print(1)\n') },
      { name: 'lib/util.py', data: Buffer.from('X = 2\n') },
    ]);
    const file = join(temp.dir, 'payload.bin');
    writeFileSync(file, deflateSync(bundle, { windowBits: 10 }));
    const out = join(temp.dir, 'unpacked');
    mkdirSync(out);
    const result = await runTool(['unpack', file, '--out', out, '--json']);
    expect(result.code).toBe(0);
    expect(jsonOf(result)).toMatchObject({ encoding: 'deflate', files: [{ name: 'app.py', size: 9 }, { name: 'lib/util.py', size: 6 }] });
    expect(readFileSync(join(out, 'lib/util.py'), 'utf8')).toBe('X = 2\n');
  });

  it('rejects a file that is no bundle', async () => {
    const file = join(temp.dir, 'junk.bin');
    writeFileSync(file, 'not a bundle');
    const result = await runTool(['unpack', file, '--out', join(temp.dir, 'junk')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/neither a bundle .* nor a zlib stream/);
  });
});

describe('bin/ota-tool.js', () => {
  const root = new URL('../../', import.meta.url).pathname;

  it('runs a command and exits 0', () => {
    const key = join(temp.dir, 'bin.key');
    const child = spawnSync(process.execPath, ['bin/ota-tool.js', 'keygen', '--key', key, '--json'], { cwd: root, encoding: 'utf8' });
    expect(child.status).toBe(0);
    expect(JSON.parse(child.stdout).publicKeyFile).toBe(`${key}.pub`);
  });

  it('exits 2 on a usage error', () => {
    const child = spawnSync(process.execPath, ['bin/ota-tool.js', 'publish', 'a.py', '--version', '1.0', '--key', 'k'], { cwd: root, encoding: 'utf8' });
    expect(child.status).toBe(2);
    expect(child.stderr).toMatch(/--version "1.0" is not a semantic version/);
  });
});
