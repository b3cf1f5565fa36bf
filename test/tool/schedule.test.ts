// Start times in ota-tool: publish --start-at, the schedule command and the releases
// listing against the real ota-server, and the command-line rules for the options.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveStartTime } from '../../tools/ota-tool/schedule.ts';
import { jsonOf, makeTempDir, runTool, startDaemon, type RunningDaemon } from './helpers.ts';

const HOUR_MS = 3_600_000;

describe('start time forms', () => {
  const nowMs = Date.parse('2026-12-04T20:00:00.000Z');

  it('relative hours from now', () => {
    expect(resolveStartTime('+2h', nowMs)).toMatchObject({ ok: true, iso: '2026-12-04T22:00:00.000Z' });
  });

  it('relative seconds, minutes, days', () => {
    expect(resolveStartTime('+90s', nowMs)).toMatchObject({ iso: '2026-12-04T20:01:30.000Z' });
    expect(resolveStartTime('+15m', nowMs)).toMatchObject({ iso: '2026-12-04T20:15:00.000Z' });
    expect(resolveStartTime('+1d', nowMs)).toMatchObject({ iso: '2026-12-05T20:00:00.000Z' });
  });

  it('absolute instant with offset', () => {
    expect(resolveStartTime('2026-12-05T03:00:00+01:00', nowMs)).toMatchObject({ ok: true, iso: '2026-12-05T02:00:00.000Z' });
  });

  it('relative form beyond 2999 rejected', () => {
    expect(resolveStartTime('+999999d', nowMs)).toMatchObject({ ok: false });
  });
});

describe('schedule option rules', () => {
  const cases: { name: string; argv: string[]; message: RegExp }[] = [
    { name: 'at without offset', argv: ['schedule', '1.0.0', '--at', '2026-12-05T02:00:00'], message: /--at "2026-12-05T02:00:00" is not an ISO 8601 instant with Z or a UTC offset/ },
    { name: 'at in words', argv: ['schedule', '1.0.0', '--at', 'tomorrow'], message: /or \+N followed by s, m, h or d/ },
    { name: 'at impossible date', argv: ['schedule', '1.0.0', '--at', '2026-02-30T00:00:00Z'], message: /names no calendar date/ },
    { name: 'at and now', argv: ['schedule', '1.0.0', '--at', '+1h', '--now'], message: /pass only one/ },
    { name: 'neither at nor now', argv: ['schedule', '1.0.0'], message: /pass --at <instant> .* or --now/ },
    { name: 'bad version', argv: ['schedule', 'v1', '--now'], message: /<version> "v1"/ },
    { name: 'publish start-at year', argv: ['publish', 'a.py', '--version', '1.0.0', '--key', 'k', '--start-at', '1999-12-31T00:00:00Z'], message: /--start-at .*year 1999/ },
  ];
  for (const rule of cases) {
    it(rule.name, async () => {
      const result = await runTool(rule.argv);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(rule.message);
      expect(result.stderr).toMatch(/example: ota-tool /);
    });
  }
});

describe('schedule against the daemon', () => {
  const temp = makeTempDir('schedule');
  let daemon: RunningDaemon;
  let admin: string[];
  let key: string;
  const file = join(temp.dir, 'app.py');

  beforeAll(async () => {
    daemon = await startDaemon(join(temp.dir, 'data'));
    admin = ['--server', daemon.adminUrl, '--token', daemon.token];
    key = join(temp.dir, 'release.key');
    expect((await runTool(['keygen', '--key', key])).code).toBe(0);
    writeFileSync(file, 'print("night release")\n');
  });

  afterAll(async () => {
    await daemon?.stop();
    temp.remove();
  });

  async function check(device: string): Promise<Record<string, unknown>> {
    const result = await runTool(['check', '--server', daemon.coapUrl, '--device', device, '--current', '1.0.0', '--json']);
    expect(result.code).toBe(0);
    return jsonOf(result);
  }

  it('publish --start-at withholds it', async () => {
    const before = Date.now();
    const result = await runTool(['publish', file, '--version', '2.0.0', '--key', key, '--start-at', '+2h', '--json', ...admin]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const startMs = Date.parse(String(jsonOf(result).startAt));
    expect(startMs).toBeGreaterThanOrEqual(before + 2 * HOUR_MS);
    expect(startMs).toBeLessThanOrEqual(Date.now() + 2 * HOUR_MS);
    expect(await check('pico-night-1')).toEqual({ update: false });
  });

  it('releases shows the start', async () => {
    const listed = jsonOf(await runTool(['releases', '--json', '--server', daemon.adminUrl])).releases as { version: string; startAt: string | null }[];
    const startAt = listed.find((release) => release.version === '2.0.0')?.startAt;
    expect(startAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);

    const table = (await runTool(['releases', '--server', daemon.adminUrl])).stdout.split('\n');
    expect(table[0]).toMatch(/\bpublished\s+starts\s+notes$/);
    expect(table.find((line) => line.startsWith('2.0.0'))).toContain(startAt);
  });

  it('schedule --at sets the instant', async () => {
    const result = await runTool(['schedule', '2.0.0', '--at', '2099-06-01T03:00:00+01:00', ...admin]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^2\.0\.0 is offered from 2099-06-01T02:00:00\.000Z\n/);
    const events = jsonOf(await runTool(['events', '--limit', '1', '--json', '--server', daemon.adminUrl])).events as { type: string; detail: string }[];
    expect(events[0]).toMatchObject({ type: 'schedule', detail: expect.stringContaining('-> 2099-06-01T02:00:00.000Z') });
  });

  it('schedule --now offers it', async () => {
    const result = await runTool(['schedule', '2.0.0', '--now', '--json', ...admin]);
    expect(result.code).toBe(0);
    expect(jsonOf(result)).toMatchObject({ version: '2.0.0', startAt: null });
    expect(await check('pico-night-2')).toMatchObject({ update: true, version: '2.0.0' });
    const table = (await runTool(['releases', '--server', daemon.adminUrl])).stdout;
    expect(table.split('\n').find((line) => line.startsWith('2.0.0'))).toMatch(/Z\s+-\s*$/);
  });

  it('schedule of unknown fails', async () => {
    const result = await runTool(['schedule', '7.7.7', '--now', ...admin]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/release 7.7.7 not found/);
  });
});
