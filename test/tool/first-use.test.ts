// ota-tool where a first-time user tripped: strict numbers, repeated options, exit
// statuses, examples that match the command, empty files, NAME=PATH, an unwritable
// --out, a failed verification and a server that never replies.
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/daemon/server.ts';
import { splitFileSpec } from '../../tools/ota-tool/publish.ts';
import { TEST_TOKEN, payloadOf, publish as putRelease, startTestServer } from '../server/helpers.ts';
import { makeTempDir, runTool } from './helpers.ts';

const temp = makeTempDir('first-use');
let server: RunningServer;
let key: string;
let silent: dgram.Socket;

beforeAll(async () => {
  server = await startTestServer(join(temp.dir, 'data'));
  key = join(temp.dir, 'release.key');
  expect((await runTool(['keygen', '--key', key])).code).toBe(0);
  silent = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  await new Promise<void>((resolve) => silent.close(() => resolve()));
  await server.close();
  temp.remove();
});

describe('number options', () => {
  const device = ['device', 'add', 'p1', '--server', 'x', '--apn', 'a', '--public-key', 'k'];
  const cases: Array<{ argv: string[]; flag: string; text: string }> = [
    { argv: ['publish', 'a.py', '--version', '1.0.0', '--key', 'k', '--rollout', 'abc'], flag: '--rollout', text: 'abc' },
    { argv: ['publish', 'a.py', '--version', '1.0.0', '--key', 'k', '--rollout', '0x10'], flag: '--rollout', text: '0x10' },
    { argv: ['rollout', '1.0.0', '1e1'], flag: '<percent>', text: '1e1' },
    { argv: ['download', 'coap://127.0.0.1/d/x', '--out', 'f', '--block-size', 'abc'], flag: '--block-size', text: 'abc' },
    { argv: ['download', 'coap://127.0.0.1/d/x', '--out', 'f', '--size', '1k'], flag: '--size', text: '1k' },
    { argv: ['check', '--server', 'coap://127.0.0.1', '--device', 'p', '--current', '1.0.0', '--timeout', '-1'], flag: '--timeout', text: '-1' },
    { argv: ['events', '--limit', '1e3'], flag: '--limit', text: '1e3' },
    { argv: [...device, '--check-interval', '1e3'], flag: '--check-interval', text: '1e3' },
  ];
  for (const { argv, flag, text } of cases) {
    it(`${flag} "${text}" rejected`, async () => {
      const result = await runTool(argv);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`${flag} must be a decimal integer, got "${text}"`);
      expect(result.stderr).not.toContain('NaN');
    });
  }

  it('repeated option named', async () => {
    const result = await runTool(['events', '--limit', '5', '--limit', '6']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--limit was given 2 times ("5", "6"); give it once');
  });
});

describe('server arguments', () => {
  it('check host:port exits 2', async () => {
    const result = await runTool(['check', '--server', '127.0.0.1:15684', '--device', 'p', '--current', '1.0.0']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('example: ota-tool check --server coap://127.0.0.1:15684 ');
    expect(result.stderr).not.toContain('/d/');
  });

  it('device add port range exits 2', async () => {
    const result = await runTool(['device', 'add', 'p1', '--server', 'h:99999', '--apn', 'a', '--public-key', `${key}.pub`, '--out', temp.dir]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--server port 99999 must be in 1..65535');
  });

  it('device add IPv6 suggests brackets', async () => {
    const result = await runTool(['device', 'add', 'p1', '--server', '::1', '--apn', 'a', '--public-key', `${key}.pub`, '--out', temp.dir]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--server [::1]');
  });

  it('device add bracketed IPv6 works', async () => {
    const result = await runTool(['device', 'add', 'p6', '--server', '[2001:db8::1]:5683', '--apn', 'a', '--public-key', `${key}.pub`, '--out', join(temp.dir, 'p6'), '--json']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });
});

describe('examples match the command', () => {
  it('device add private key example', async () => {
    const result = await runTool(['device', 'add', 'p1', '--server', 'x', '--apn', 'a', '--public-key', key, '--out', temp.dir]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('is a private key');
    expect(result.stderr).toContain('example: ota-tool device add ');
  });

  it('publish wrong token example', async () => {
    const file = join(temp.dir, 'token.py');
    writeFileSync(file, 'print(1)\n');
    const adminUrl = `http://127.0.0.1:${server.adminPort}`;
    const wrong = await runTool(['publish', file, '--version', '1.0.1', '--key', key, '--server', adminUrl, '--token', 'wrong-token-0123456789']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('example: ota-tool publish ');
    const missing = await runTool(['publish', file, '--version', '1.0.1', '--key', key, '--server', adminUrl]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('example: ota-tool publish ');
  });
});

describe('publish files', () => {
  it('empty file rejected', async () => {
    const file = join(temp.dir, 'empty.py');
    writeFileSync(file, '');
    const result = await runTool(['publish', file, '--version', '1.0.2', '--key', key, '--server', 'http://127.0.0.1:1', '--token', TEST_TOKEN]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`file ${file} is empty`);
    expect(result.stderr).toContain('--allow-empty');
  });

  it('empty file with allow-empty', async () => {
    const file = join(temp.dir, 'empty2.py');
    writeFileSync(file, '');
    const adminUrl = `http://127.0.0.1:${server.adminPort}`;
    const result = await runTool(['publish', file, '--version', '1.0.3', '--key', key, '--server', adminUrl, '--token', TEST_TOKEN, '--allow-empty']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it('split rule for "="', () => {
    const existing = join(temp.dir, 'v=1.py');
    writeFileSync(existing, 'x = 1\n');
    expect(splitFileSpec(existing)).toEqual({ name: undefined, path: existing });
    expect(splitFileSpec(`app.py=${existing}`)).toEqual({ name: 'app.py', path: existing });
    expect(splitFileSpec('bad name=x.py')).toEqual({ name: undefined, path: 'bad name=x.py' });
  });

  it('file with "=" publishes by name', async () => {
    const file = join(temp.dir, 'a=b.py');
    writeFileSync(file, 'print(2)\n');
    const adminUrl = `http://127.0.0.1:${server.adminPort}`;
    const bare = await runTool(['publish', file, '--version', '1.0.4', '--key', key, '--server', adminUrl, '--token', TEST_TOKEN]);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain('NAME=PATH');
    const named = await runTool(['publish', `app.py=${file}`, '--version', '1.0.4', '--key', key, '--server', adminUrl, '--token', TEST_TOKEN]);
    expect(named.stderr).toBe('');
    expect(named.code).toBe(0);
  });
});

describe('download and check failures', () => {
  it('unwritable --out exits 1', async () => {
    const result = await runTool(['download', `coap://127.0.0.1:${silent.address().port}/d/abc`, '--out', '/nonexistent/dir/img']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('--out /nonexistent/dir/img');
    expect(result.stderr).toContain('ENOENT');
  }, 10_000);

  it('failed digest leads the output', async () => {
    const payload = payloadOf(3000, 7);
    const record = await putRelease(server.store, '9.0.0', payload);
    const out = join(temp.dir, 'image.bin');
    const wrong = createHash('sha256').update('other').digest('hex');
    const uri = `coap://127.0.0.1:${server.coapPort}/d/${record.sha256.slice(0, 12)}`;
    const result = await runTool(['download', uri, '--out', out, '--sha256', wrong]);
    expect(result.code).toBe(1);
    expect(result.stdout.split('\n')[0]).toMatch(/^verification FAILED for /);
    expect(result.stdout.split('\n')[0]).toContain(`${out}.part`);
  });

  it('check --timeout bounds the wait', async () => {
    const started = performance.now();
    const result = await runTool(['check', '--server', `coap://127.0.0.1:${silent.address().port}`, '--device', 'p', '--current', '1.0.0', '--timeout', '4']);
    const elapsedMs = performance.now() - started;
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('retransmission 1 of 4');
    expect(result.stderr).toContain('no reply from');
    expect(elapsedMs).toBeGreaterThan(3900);
    expect(elapsedMs).toBeLessThan(6000);
  }, 15_000);
});
