// RFC 7252 message rules and input checks on the real daemon: Empty and Reset messages,
// message format errors, option lengths, repeated CBOR keys and query parameters, the
// RFC 6690 query filter of /.well-known/core, and the log level of client faults.
import { Encoder } from 'cbor-x';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../src/daemon/server.ts';
import { Code, RawClient, TEST_TOKEN, encodeRequest, path_, payloadOf, publish, query, tempDir, uintOption } from './helpers.ts';

interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

const cbor = new Encoder({ useRecords: false, useTag259ForMaps: false } as object);
/** pino's numeric levels. */
const WARN = 40;
const ERROR = 50;

let temp: Awaited<ReturnType<typeof tempDir>>;
let server: RunningServer;
let client: RawClient;
const logLines: LogLine[] = [];

beforeAll(async () => {
  temp = await tempDir();
  const destination = { write: (line: string) => logLines.push(JSON.parse(line) as LogLine) };
  server = await startServer({
    dataDir: temp.dir,
    logger: pino({ level: 'debug' }, destination),
    coapPort: 0,
    bind: '127.0.0.1',
    adminPort: 0,
    adminToken: TEST_TOKEN,
  });
  await publish(server.store, '2.0.0', payloadOf(500));
  client = new RawClient(server.coapPort);
});

afterAll(async () => {
  client.close();
  await server.close();
  await temp.remove();
});

/** Sends raw bytes and returns the log lines written while the daemon stayed silent for 300 ms. */
async function sendExpectingSilence(bytes: Buffer): Promise<LogLine[]> {
  const before = logLines.length;
  client.send(bytes);
  expect(await client.silent(300)).toBe(true);
  return logLines.slice(before);
}

describe('empty and reset messages', () => {
  it('unsolicited Reset ignored', async () => {
    const lines = await sendExpectingSilence(Buffer.from('70000009', 'hex'));
    expect(lines.filter((line) => line.level >= WARN)).toEqual([]);
    expect(lines.map((line) => line.msg)).toContain('Reset ignored');
  });

  it('Empty NON ignored', async () => {
    const lines = await sendExpectingSilence(Buffer.from('5000000b', 'hex'));
    expect(lines.filter((line) => line.level >= WARN)).toEqual([]);
    expect(lines.map((line) => line.msg)).toContain('Empty NON ignored');
  });

  it('Empty CON gets Reset', async () => {
    client.send(Buffer.from('4000000c', 'hex'));
    expect((await client.next()).toString('hex')).toBe('7000000c');
  });

  it('Reset with code ignored', async () => {
    const lines = await sendExpectingSilence(encodeRequest({ type: 3, code: Code.GET, options: path_('c'), token: Buffer.alloc(0), mid: 13 }));
    expect(lines.filter((line) => line.level >= ERROR)).toEqual([]);
    expect(lines.map((line) => line.msg)).toContain('message format error ignored');
  });

  it('ACK carrying request ignored', async () => {
    const lines = await sendExpectingSilence(encodeRequest({ type: 2, code: Code.GET, options: [...path_('c'), ...query('d=p1', 'v=1.0.0')], mid: 14 }));
    expect(lines.filter((line) => line.level >= ERROR)).toEqual([]);
    expect(lines.map((line) => line.msg)).toContain('message format error ignored');
  });
});

describe('request input', () => {
  it('3-byte Uri-Port is 4.02', async () => {
    const reply = await client.request({ code: Code.GET, options: [...path_('c'), ...query('d=p1', 'v=1.0.0'), [7, Buffer.from([0, 0x16, 0x33])]] });
    expect(reply.code).toBe('4.02');
    expect(reply.payload.toString()).toContain('Uri-Port must be 0..2 bytes, got 3 bytes');
  });

  it('duplicate CBOR key is 4.00', async () => {
    // {0: "a", 1: "1.0.0", 0: "b"}: map header a3, then key 0 twice (RFC 8949 section 3.1).
    const payload = Buffer.from('a3' + '00' + '6161' + '01' + '65312e302e30' + '00' + '6162', 'hex');
    const reply = await client.request({ code: Code.POST, options: [...path_('c'), uintOption(12, 60)], payload });
    expect(reply.code).toBe('4.00');
    expect(reply.payload.toString()).toContain('key 0 appears more than once');
  });

  it('distinct CBOR keys accepted', async () => {
    const payload = cbor.encode(new Map<number, string>([[0, 'p2'], [1, '1.0.0']]));
    const reply = await client.request({ code: Code.POST, options: [...path_('c'), uintOption(12, 60)], payload });
    expect(reply.code).toBe('2.05');
  });

  it('repeated d= is 4.00', async () => {
    const reply = await client.request({ code: Code.GET, options: [...path_('c'), ...query('d=a', 'd=b', 'v=1.0.0')] });
    expect(reply.code).toBe('4.00');
    expect(reply.payload.toString()).toContain('query parameter "d" is given more than once');
  });

  it('Proxy-Uri logged as warn', async () => {
    const before = logLines.length;
    const reply = await client.request({ code: Code.GET, options: [...path_('c'), [35, Buffer.from('coap://example.net/c')]] });
    expect(reply.code).toBe('5.05');
    const rejected = logLines.slice(before).filter((line) => line.msg === 'request rejected');
    expect(rejected.map((line) => line.level)).toEqual([WARN]);
  });
});

describe('well-known core filter', () => {
  async function links(...filter: string[]): Promise<{ code: string; text: string }> {
    const reply = await client.request({ code: Code.GET, options: [...path_('.well-known', 'core'), ...query(...filter)] });
    return { code: reply.code, text: reply.payload.toString() };
  }

  it('rt filter keeps images', async () => {
    const { code, text } = await links('rt=ota.image');
    expect(code).toBe('2.05');
    expect(text).toMatch(/^<\/d\/[0-9a-f]{12}>;rt="ota.image"/);
    expect(text).not.toContain('</c>');
  });

  it('prefix filter on rt', async () => {
    const { text } = await links('rt=ota.c*');
    expect(text.startsWith('</c>;rt="ota.check"')).toBe(true);
    expect(text).not.toContain('</r>');
  });

  it('ct filter matches list entry', async () => {
    const { text } = await links('ct=50');
    expect(text.startsWith('</c>')).toBe(true);
    expect(text).not.toContain('</d/');
  });

  it('href filter', async () => {
    expect((await links('href=/r')).text).toBe('</r>;rt="ota.report";title="Report an update outcome";ct=60');
  });

  it('unmatched filter is empty', async () => {
    const { code, text } = await links('rt=nothing');
    expect(code).toBe('2.05');
    expect(text).toBe('');
  });

  it('two filters are 4.00', async () => {
    expect((await links('rt=ota.image', 'ct=42')).code).toBe('4.00');
  });

  it('no filter lists all', async () => {
    const reply = await client.request({ code: Code.GET, options: path_('.well-known', 'core') });
    const text = reply.payload.toString();
    expect(text.startsWith('</c>;rt="ota.check";title="Check for an update";ct="60 50"')).toBe(true);
    expect(text).toContain('</r>');
    expect(text).toContain('</d/');
  });
});
