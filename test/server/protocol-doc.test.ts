// docs/protocol.md against the real daemon: every hex example request is sent as
// written, and the daemon's answer must equal the documented response byte for byte.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDatagram } from '../../src/coap/datagram.ts';
import type { RunningServer } from '../../src/daemon/server.ts';
import { ERROR_CATALOGUE } from '../../src/errors.ts';
import { RawClient, startTestServer, tempDir } from './helpers.ts';
import { exampleRelease } from './protocol-fixture.ts';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '../..');
const protocolDoc = readFileSync(path.join(ROOT, 'docs/protocol.md'), 'utf8');

/** Reads every ```coap-request NAME and ```coap-response NAME block; "#" starts a comment. */
function hexExamples(markdown: string): Map<string, { request?: Buffer; response?: Buffer }> {
  const examples = new Map<string, { request?: Buffer; response?: Buffer }>();
  for (const match of markdown.matchAll(/```coap-(request|response) (\S+)\n([\s\S]*?)```/g)) {
    const [, kind, name, body] = match;
    const hex = body!
      .split('\n')
      .map((line) => line.replace(/#.*/, ''))
      .join('')
      .replace(/\s+/g, '');
    if (!/^([0-9a-f]{2})+$/.test(hex)) throw new Error(`example ${name} ${kind} is not hex pairs: ${hex}`);
    const entry = examples.get(name!) ?? {};
    entry[kind as 'request' | 'response'] = Buffer.from(hex, 'hex');
    examples.set(name!, entry);
  }
  return examples;
}

const examples = hexExamples(protocolDoc);

let temp: Awaited<ReturnType<typeof tempDir>>;
let server: RunningServer;
let client: RawClient;

beforeAll(async () => {
  temp = await tempDir();
  server = await startTestServer(temp.dir);
  const { record, payload } = exampleRelease();
  await server.store.putRelease(record, payload);
  client = new RawClient(server.coapPort);
});

afterAll(async () => {
  client.close();
  await server.close();
  await temp.remove();
});

describe('protocol.md hex examples', () => {
  it('examples cover every exchange', () => {
    const names = [...examples.keys()];
    for (const required of ['check-update', 'check-current', 'download-first', 'download-last', 'report', 'error-wrong-type', 'error-unknown-release', 'error-block-past-end', 'error-szx-reserved']) {
      expect(names).toContain(required);
    }
  });

  for (const [name, example] of examples) {
    it(`${name} matches the daemon`, async () => {
      expect(example.request, `${name} has a request block`).toBeDefined();
      expect(example.response, `${name} has a response block`).toBeDefined();
      expect(parseDatagram(example.request!).ok).toBe(true);
      client.send(example.request!);
      const answer = await client.next();
      expect(answer.toString('hex')).toBe(example.response!.toString('hex'));
    });
  }
});

describe('server.md error catalogue', () => {
  const serverDoc = readFileSync(path.join(ROOT, 'docs/server.md'), 'utf8');
  for (const [code, entry] of Object.entries(ERROR_CATALOGUE)) {
    it(`${code} listed with ${entry.coapCode}`, () => {
      expect(serverDoc).toMatch(new RegExp(`\\| \`${code}\` \\| ${entry.coapCode.replace('.', '\\.')} \\|`));
    });
  }
});
