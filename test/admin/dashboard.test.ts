// The dashboard page rendered by headless Chromium against the real admin server and
// a real Store: published releases and devices appear, and store values that look
// like HTML stay text.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, test } from 'vitest';
import { call, releaseBody, startAdmin, type AdminHarness } from './helpers.ts';

const run = promisify(execFile);

const CHROMIUM_CANDIDATES = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];
const chromium = CHROMIUM_CANDIDATES.find((path): path is string => path !== undefined && path !== '' && existsSync(path));

/**
 * Loads a page in headless Chromium and returns the DOM after its scripts ran. The
 * virtual time budget lets the page's first refresh finish before the dump.
 */
async function dumpDom(url: string): Promise<string> {
  const profile = await mkdtemp(join(tmpdir(), 'ota-chromium-'));
  try {
    const { stdout } = await run(
      chromium!,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        `--user-data-dir=${profile}`,
        '--virtual-time-budget=3000',
        '--dump-dom',
        url,
      ],
      { timeout: 45_000, maxBuffer: 8 * 1024 * 1024 },
    );
    return stdout;
  } finally {
    await rm(profile, { recursive: true, force: true });
  }
}

let admin: AdminHarness | undefined;

afterEach(async () => {
  await admin?.close();
  admin = undefined;
});

describe('dashboard page', () => {
  test('page is self-contained', async () => {
    admin = await startAdmin();
    const response = await fetch(`${admin.baseUrl}/`);
    const html = await response.text();
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(response.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=/i);
    expect(html).toContain('/api/releases');
    // Without JavaScript (curl, a text browser) the page points to the JSON API.
    expect(html).toMatch(/<noscript>.*href="\/api\/devices".*<\/noscript>/s);
  });

  test.skipIf(!chromium)('chromium renders releases and devices', async () => {
    admin = await startAdmin();
    const published = await call(admin.baseUrl, 'POST', '/api/releases', { body: releaseBody('2.4.1', { channel: 'beta', rollout: 40 }) });
    expect(published.status).toBe(201);
    const scheduled = await call(admin.baseUrl, 'POST', '/api/releases', { body: releaseBody('2.5.0', { channel: 'beta', startAt: '2099-06-01T03:00:00+01:00' }) });
    expect(scheduled.status).toBe(201);
    await admin.store.putDevice({
      id: 'pico-dash-7',
      channel: 'beta',
      version: '2.4.1',
      lastSeen: new Date().toISOString(),
      address: '127.0.0.1:5683',
      status: 'confirmed',
      lastReport: { outcome: 'confirmed', target: '2.4.1', time: new Date().toISOString() },
    });

    const dom = await dumpDom(`${admin.baseUrl}/`);
    expect(dom).toContain('<td>2.4.1</td>');
    expect(dom).toContain('<td>pico-dash-7</td><td>no</td><td></td>');
    expect(dom).toContain('40%');
    expect(dom).toContain('<th>Starts</th>');
    expect(dom).toContain('<td>2099-06-01T02:00:00.000Z</td>');
    expect(dom).toContain('<td>publish</td>');
    expect(dom).toMatch(/<p id="status"[^>]*>Updated /);
  });

  test.skipIf(!chromium)('chromium shows HTML as text', async () => {
    admin = await startAdmin();
    // A device report's detail is free text from the field, the likeliest carrier of markup.
    await admin.store.putDevice({
      id: 'pico-xss',
      channel: 'stable',
      version: '1.0.0',
      lastSeen: new Date().toISOString(),
      address: '127.0.0.1:5683',
      status: '<b id="injected-status">bold</b>',
      lastReport: { outcome: 'failed', target: '2.0.0', detail: '<img id="injected-img" src="x">', time: new Date().toISOString() },
    });
    const published = await call(admin.baseUrl, 'POST', '/api/releases', { body: releaseBody('1.0.0', { notes: '<script id="injected-script">x</script>' }) });
    expect(published.status).toBe(201);

    const dom = await dumpDom(`${admin.baseUrl}/`);
    expect(dom).toContain('<td>pico-xss</td>');
    // Serialized text shows "<" as "&lt;", so a raw "<b id=" can only be a parsed element.
    expect(dom).not.toContain('<b id="injected-status"');
    expect(dom).not.toContain('<img id="injected-img"');
    expect(dom).not.toContain('<script id="injected-script"');
    expect(dom).toContain('&lt;b id="injected-status"&gt;bold&lt;/b&gt;');
    expect(dom).toContain('&lt;img id="injected-img" src="x"&gt;');
    expect(dom).toContain('&lt;script id="injected-script"&gt;x&lt;/script&gt;');
  });

  test.skipIf(!chromium)('chromium shows registration and label', async () => {
    admin = await startAdmin();
    // The label is free text, so it also carries markup that must stay text.
    const label = '<i id="injected-label">shed</i> 4';
    const registered = await call(admin.baseUrl, 'PUT', '/api/devices/pico-reg-1/registration', { body: { label } });
    expect(registered.status).toBe(201);

    const dom = await dumpDom(`${admin.baseUrl}/`);
    expect(dom).toContain('<td>pico-reg-1</td><td>yes</td><td>&lt;i id="injected-label"&gt;shed&lt;/i&gt; 4</td>');
    expect(dom).not.toContain('<i id="injected-label"');
    expect(dom).toContain('<td>not-seen</td>');
    expect(dom).toContain('<td>register</td>');
  });
});

if (!chromium) {
  test.skip(`chromium tests skipped: no browser at ${CHROMIUM_CANDIDATES.filter(Boolean).join(', ')}; install Debian's chromium package`, () => {});
}
