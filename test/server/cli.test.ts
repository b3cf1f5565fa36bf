// ota-server's command line and process: option values parsed strictly, a private key
// rejected as --public-key, start-up failures that name the option to change, and a
// SIGTERM that ends the process even after its stdout reader has exited.
import { generateKeyPairSync } from 'node:crypto';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { UsageError, parseCli } from '../../src/daemon/cli.ts';
import { StartupError, startServer } from '../../src/daemon/server.ts';
import { TEST_TOKEN, startTestServer, tempDir } from './helpers.ts';

const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../bin/ota-server.js');

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Runs parseCli with extra OTA_* variables and resolves with the UsageError message, or '' when it passed. */
async function usageErrorOf(argv: string[], env: Record<string, string> = {}): Promise<string> {
  const saved = Object.keys(env).map((name) => [name, process.env[name]] as const);
  Object.assign(process.env, env);
  try {
    await parseCli(argv);
    return '';
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

describe('cli option values', () => {
  it('port accepts decimal', async () => {
    const options = await parseCli(['--coap-port', '15683', '--admin-port', '0']);
    expect(options?.coapPort).toBe(15683);
    expect(options?.adminPort).toBe(0);
  });

  it('port without value rejected', async () => {
    expect(await usageErrorOf(['--coap-port'])).toContain('coap-port');
    expect(await usageErrorOf(['--coap-port', '--admin-port', '0'])).toContain('coap-port');
  });

  it('odd port formats rejected', async () => {
    for (const value of ['abc', '0x3300', '1e3', '12.0', '-1', '65536', ' 80', '']) {
      const message = await usageErrorOf(['--admin-port', value]);
      expect(message, value).toContain(`--admin-port must be a decimal integer 0..65535`);
      expect(message, value).toContain(`got "${value}"`);
    }
  });

  it('empty or bad env port rejected', async () => {
    expect(await usageErrorOf([], { OTA_COAP_PORT: '' })).toContain(
      'OTA_COAP_PORT (the environment variable of --coap-port) must be a decimal integer 0..65535 (0 picks a free port), got ""',
    );
    expect(await usageErrorOf([], { OTA_COAP_PORT: 'abc' })).toContain('got "abc"');
  });

  it('flag error names the flag', async () => {
    // The flag wins over the variable, so the message names what was typed.
    const message = await usageErrorOf(['--coap-port', 'abc'], { OTA_COAP_PORT: '5683' });
    expect(message.startsWith('--coap-port must be a decimal integer')).toBe(true);
  });

  it('known devices only switch', async () => {
    expect((await parseCli([]))?.knownDevicesOnly).toBe(false);
    expect((await parseCli(['--known-devices-only']))?.knownDevicesOnly).toBe(true);
    expect((await parseCli(['--known-devices-only', '--coap-port', '0']))?.knownDevicesOnly).toBe(true);
    expect((await parseCli(['--known-devices-only=false']))?.knownDevicesOnly).toBe(false);
  });

  it('known devices only bad values', async () => {
    expect(await usageErrorOf(['--known-devices-only', 'yes'])).toContain('--known-devices-only must be true or false, got "yes"');
    expect(await usageErrorOf([], { OTA_KNOWN_DEVICES_ONLY: '1' })).toContain('got "1"');
    expect(await usageErrorOf([], { OTA_KNOWN_DEVICES_ONLY: '' })).toContain('got ""');
    expect(await usageErrorOf([], { OTA_KNOWN_DEVICES_ONLY: 'true' })).toBe('');
  });

  it('duplicate option named', async () => {
    const message = await usageErrorOf(['--coap-port', '15683', '--coap-port', '15684']);
    expect(message).toContain('--coap-port was given 2 times ("15683", "15684"); give it once');
    expect(await usageErrorOf(['--data-dir', 'a', '--data-dir', 'b'])).toContain('--data-dir was given 2 times');
  });

  it('private key as public key rejected', async () => {
    const dir = await tempDir();
    cleanups.push(dir.remove);
    const pair = generateKeyPairSync('ed25519');
    const privateFile = path.join(dir.dir, 'release.key');
    const publicFile = path.join(dir.dir, 'release.key.pub');
    writeFileSync(privateFile, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(publicFile, pair.publicKey.export({ type: 'spki', format: 'pem' }));

    expect(await usageErrorOf(['--public-key', privateFile])).toContain(`--public-key file ${privateFile} contains a private key`);
    expect(await usageErrorOf(['--public-key', publicFile])).toBe('');
  });

  it('usage error exits 2', async () => {
    const child = spawn(process.execPath, [BIN, '--coap-port'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', (status) => resolve(status)));
    expect(code).toBe(2);
    expect(stderr).toContain('coap-port');
  });
});

describe('start-up failures', () => {
  const quiet = pino({ level: 'silent' });

  it('locked data dir names --data-dir', async () => {
    const dir = await tempDir();
    cleanups.push(dir.remove);
    const first = await startTestServer(dir.dir);
    cleanups.push(() => first.close());
    const second = startServer({ dataDir: dir.dir, logger: quiet, coapPort: 0, bind: '127.0.0.1', adminPort: 0, adminToken: TEST_TOKEN });
    await expect(second).rejects.toThrow(StartupError);
    await expect(second).rejects.toThrow(`another ota-server uses ${dir.dir}`);
    await expect(second).rejects.toThrow('use another --data-dir');
  });

  it('busy coap port names --coap-port', async () => {
    const dir = await tempDir();
    cleanups.push(dir.remove);
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => socket.close(() => resolve())));
    const port = socket.address().port;
    const start = startServer({ dataDir: dir.dir, logger: quiet, coapPort: port, bind: '127.0.0.1', adminPort: 0, adminToken: TEST_TOKEN });
    await expect(start).rejects.toThrow(`UDP port ${port} of --coap-port is already in use`);
  });

  it('busy admin port names --admin-port', async () => {
    const dir = await tempDir();
    cleanups.push(dir.remove);
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = (server.address() as net.AddressInfo).port;
    const start = startServer({ dataDir: dir.dir, logger: quiet, coapPort: 0, bind: '127.0.0.1', adminPort: port, adminToken: TEST_TOKEN });
    await expect(start).rejects.toThrow(`TCP port ${port} of --admin-port is already in use`);
  });
});

/** Runs the daemon, stops reading its stdout after "listening", sends SIGTERM and resolves with the exit and its delay. */
async function stopWithClosedStdout(dataDir: string): Promise<{ code: number | null; signal: string | null; elapsedMs: number }> {
  const child = spawn(process.execPath, [BIN, '--coap-port', '0', '--admin-port', '0', '--bind', '127.0.0.1', '--data-dir', dataDir, '--admin-token', TEST_TOKEN, '--log-level', 'debug'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const lines = createInterface({ input: child.stdout! });
  await new Promise<void>((resolve) => lines.on('line', (line) => line.includes('"listening"') && resolve()));
  lines.close();
  child.stdout!.destroy();
  const started = Date.now();
  child.kill('SIGTERM');
  const outcome = await Promise.race([exited, new Promise<{ code: null; signal: 'timeout' }>((resolve) => setTimeout(() => resolve({ code: null, signal: 'timeout' }), 15_000))]);
  return { ...outcome, elapsedMs: Date.now() - started };
}

describe('shutdown', () => {
  it('SIGTERM exits with closed stdout', async () => {
    const dirs = await Promise.all([tempDir(), tempDir(), tempDir()]);
    for (const dir of dirs) cleanups.push(dir.remove);
    const outcomes = await Promise.all(dirs.map((dir) => stopWithClosedStdout(dir.dir)));
    for (const outcome of outcomes) {
      expect(outcome.signal).toBeNull();
      expect(outcome.code).toBe(0);
      expect(outcome.elapsedMs).toBeLessThan(10_000);
    }
  }, 60_000);
});
