// Unit tests of the pieces under the CoAP side: semantic version precedence, rollout
// cohorts, offer selection, the store's rules, and the command-line checks.
import { describe, expect, it, afterEach } from 'vitest';
import pino from 'pino';
import { parseCli, UsageError } from '../../src/daemon/cli.ts';
import { startServer } from '../../src/daemon/server.ts';
import { rolloutCohort, selectOffer } from '../../src/releases/select.ts';
import { compareVersions, parseSemVer } from '../../src/releases/semver.ts';
import { Store, StoreError, type ReleaseRecord } from '../../src/storage/store.ts';
import { Code, RawClient, TEST_TOKEN, path_, payloadOf, publish, tempDir } from './helpers.ts';

describe('semver precedence', () => {
  // The chain from semver.org 2.0.0 section 11, lowest first.
  const chain = ['1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-alpha.beta', '1.0.0-beta', '1.0.0-beta.2', '1.0.0-beta.11', '1.0.0-rc.1', '1.0.0', '1.0.1', '1.1.0', '2.0.0'];
  for (let i = 0; i + 1 < chain.length; i++) {
    it(`${chain[i]} below ${chain[i + 1]}`, () => {
      expect(compareVersions(chain[i]!, chain[i + 1]!)).toBe(-1);
      expect(compareVersions(chain[i + 1]!, chain[i]!)).toBe(1);
    });
  }

  it('build metadata ignored', () => {
    expect(compareVersions('1.0.0+a', '1.0.0+b')).toBe(0);
  });

  it('invalid versions rejected', () => {
    for (const text of ['1.0', '01.0.0', '1.0.0-', '1.0.0-01', 'v1.0.0', '']) expect(parseSemVer(text), text).toBeUndefined();
  });
});

describe('rollout cohort', () => {
  it('matches hand-computed value', () => {
    // printf 'pico-001/1.1.0' | sha256sum starts e24db89a; 0xe24db89a mod 100 = 46.
    expect(rolloutCohort('pico-001', '1.1.0')).toBe(46);
  });

  it('spreads devices over 0..99', () => {
    const cohorts = Array.from({ length: 2000 }, (_, i) => rolloutCohort(`pico-${i}`, '2.0.0'));
    const below50 = cohorts.filter((c) => c < 50).length;
    expect(Math.min(...cohorts)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...cohorts)).toBeLessThanOrEqual(99);
    expect(below50).toBeGreaterThan(850);
    expect(below50).toBeLessThan(1150);
  });
});

function record(version: string, extra: Partial<ReleaseRecord> = {}): ReleaseRecord {
  return {
    version,
    channel: 'stable',
    notes: '',
    encoding: 'raw',
    rollout: 100,
    size: 1,
    sha256: '00'.repeat(32),
    signature: '00'.repeat(64),
    downloadId: '000000000000',
    revoked: false,
    publishedAt: '2026-01-01T00:00:00.000Z',
    ...extra,
  };
}

describe('offer selection', () => {
  const device = { id: 'pico-001', version: parseSemVer('1.0.0')!, channel: 'stable' };
  const nowMs = Date.parse('2026-06-01T00:00:00.000Z');

  it('highest newer release', () => {
    const offer = selectOffer([record('1.1.0'), record('2.0.0'), record('0.9.0')], device, nowMs);
    expect(offer?.version).toBe('2.0.0');
  });

  it('skips revoked and other channels', () => {
    const offer = selectOffer([record('3.0.0', { revoked: true }), record('2.5.0', { channel: 'beta' }), record('1.2.0')], device, nowMs);
    expect(offer?.version).toBe('1.2.0');
  });

  it('pre-release below its release', () => {
    expect(selectOffer([record('1.0.0-rc.1')], device, nowMs)).toBeUndefined();
  });

  it('nothing at same version', () => {
    expect(selectOffer([record('1.0.0')], device, nowMs)).toBeUndefined();
  });

  it('rollout follows the cohort', () => {
    const cohort = rolloutCohort('pico-001', '2.0.0');
    expect(selectOffer([record('2.0.0', { rollout: cohort })], device, nowMs)).toBeUndefined();
    expect(selectOffer([record('2.0.0', { rollout: cohort + 1 })], device, nowMs)?.version).toBe('2.0.0');
  });
});

describe('store', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function openStore(): Promise<Store> {
    const temp = await tempDir();
    const store = await Store.open(temp.dir);
    cleanups.push(() => temp.remove(), () => store.close());
    return store;
  }

  it('same precedence rejected', async () => {
    const store = await openStore();
    await publish(store, '1.0.0+a', payloadOf(10, 1));
    await expect(publish(store, '1.0.0+b', payloadOf(10, 2))).rejects.toMatchObject({ code: 'RELEASE_EXISTS' });
  });

  it('concurrent same version once', async () => {
    const store = await openStore();
    const results = await Promise.allSettled([
      publish(store, '2.0.0', payloadOf(10, 1)),
      publish(store, '2.0.0', payloadOf(10, 2)),
    ]);
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((result) => result.status === 'rejected');
    expect(rejected).toMatchObject({ reason: { code: 'RELEASE_EXISTS' } });
    expect((await store.listReleases()).map((release) => release.version)).toEqual(['2.0.0']);
  });

  it('same payload shared by versions', async () => {
    const store = await openStore();
    const first = await publish(store, '1.0.0', payloadOf(10, 1));
    const second = await publish(store, '1.0.1', payloadOf(10, 1));

    expect(second.downloadId).toBe(first.downloadId);
    expect((await store.listReleases()).map((release) => release.version)).toEqual(['1.0.1', '1.0.0']);
    // The shared resource is served under the highest version that is not revoked.
    expect(store.releaseByDownloadId(first.downloadId)?.version).toBe('1.0.1');
    await store.updateRelease('1.0.1', { revoked: true });
    expect(store.releaseByDownloadId(first.downloadId)?.version).toBe('1.0.0');
    await store.updateRelease('1.0.0', { revoked: true });
    expect(store.releaseByDownloadId(first.downloadId)?.revoked).toBe(true);
  });

  it('same bytes with another encoding rejected', async () => {
    const store = await openStore();
    await publish(store, '1.0.0', payloadOf(10, 1));
    await expect(publish(store, '1.0.1', payloadOf(10, 1), { encoding: 'deflate' })).rejects.toMatchObject({ code: 'DOWNLOAD_ID_EXISTS' });
    expect((await store.listReleases()).map((release) => release.version)).toEqual(['1.0.0']);
  });

  it('wrong digest rejected', async () => {
    const store = await openStore();
    const good = record('1.0.0');
    await expect(store.putRelease(good, Buffer.from([1]))).rejects.toBeInstanceOf(StoreError);
    expect(await store.listReleases()).toEqual([]);
  });

  it('chunks of 1024 bytes', async () => {
    const store = await openStore();
    const payload = payloadOf(2500, 3);
    const release = await publish(store, '1.0.0', payload);
    expect((await store.readChunk(release.downloadId, 0))?.equals(payload.subarray(0, 1024))).toBe(true);
    expect((await store.readChunk(release.downloadId, 2))?.equals(payload.subarray(2048))).toBe(true);
    expect(await store.readChunk(release.downloadId, 3)).toBeUndefined();
  });

  it('releases highest first', async () => {
    const store = await openStore();
    for (const [i, version] of ['1.0.0', '1.10.0', '1.2.0', '1.10.0-rc.1'].entries()) await publish(store, version, payloadOf(5, i));
    expect((await store.listReleases()).map((r) => r.version)).toEqual(['1.10.0', '1.10.0-rc.1', '1.2.0', '1.0.0']);
  });

  it('update of missing release', async () => {
    const store = await openStore();
    await expect(store.updateRelease('9.9.9', { revoked: true })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('events newest first per device', async () => {
    const store = await openStore();
    for (let i = 0; i < 5; i++) {
      await store.appendEvent({ time: `t${i}`, type: 'check', device: i % 2 === 0 ? 'a' : 'ab' });
    }
    expect((await store.listEvents({ device: 'a' })).map((e) => e.time)).toEqual(['t4', 't2', 't0']);
    expect((await store.listEvents({ limit: 2 })).map((e) => e.time)).toEqual(['t4', 't3']);
  });
});

describe('command line', () => {
  async function usageError(argv: string[]): Promise<string> {
    try {
      await parseCli(argv);
    } catch (err) {
      if (err instanceof UsageError) return err.message;
      throw err;
    }
    throw new Error(`parseCli accepted ${argv.join(' ')}`);
  }

  it('defaults', async () => {
    const options = await parseCli([]);
    expect(options).toMatchObject({ coapPort: 5683, adminPort: 3000, adminBind: '127.0.0.1', dataDir: './data', logLevel: 'info' });
    expect(options?.bind).toBeUndefined();
  });

  it('port out of range', async () => {
    expect(await usageError(['--coap-port', '70000'])).toContain('--coap-port must be a decimal integer 0..65535');
  });

  it('port not a number', async () => {
    expect(await usageError(['--admin-port', 'http'])).toContain('--admin-port');
  });

  it('bind not an address', async () => {
    expect(await usageError(['--bind', 'localhost'])).toContain('--bind must be an IPv4 or IPv6 address, got "localhost"; example');
  });

  it('log level unknown', async () => {
    expect(await usageError(['--log-level', 'verbose'])).toContain('log-level');
  });

  it('public key missing', async () => {
    expect(await usageError(['--public-key', '/nonexistent/key.pem'])).toContain('--public-key file /nonexistent/key.pem cannot be read');
  });

  it('environment variable read', async () => {
    process.env.OTA_COAP_PORT = '6000';
    try {
      expect((await parseCli([]))?.coapPort).toBe(6000);
    } finally {
      delete process.env.OTA_COAP_PORT;
    }
  });
});

describe('default bind', () => {
  it('dual-stack serves IPv4', async () => {
    const temp = await tempDir();
    const server = await startServer({ dataDir: temp.dir, logger: pino({ level: 'silent' }), coapPort: 0, adminPort: 0, adminToken: TEST_TOKEN });
    const client = new RawClient(server.coapPort);
    try {
      const reply = await client.request({ code: Code.GET, options: path_('.well-known', 'core') });
      expect(reply.code).toBe('2.05');
    } finally {
      client.close();
      await server.close();
      await temp.remove();
    }
  });
});
