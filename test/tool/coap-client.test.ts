// ota-tool's CoAP client: message codec against hand-built bytes, Block2 values, and
// downloads from libcoap's coap-server and from a scripted UDP peer.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CoapClient,
  decodeBlock,
  decodeMessage,
  encodeBlock,
  encodeMessage,
  MessageType,
  OptionNumber,
  parseCoapUri,
  szxOf,
  type CoapMessage,
} from '../../tools/ota-tool/coap-client.ts';
import { jsonOf, makeTempDir, runLibcoap, runTool } from './helpers.ts';

describe('coap codec', () => {
  // RFC 7252 section 3: 0x44 = version 1, CON, token length 4; code 0.01 GET; mid 0x1234.
  // Options: Uri-Path (11) "d" = b1 64, Uri-Path "abc" = 03 616263 (delta 0),
  // Block2 (23) NUM 2 SZX 6 = c1 26 (delta 12), Size2 (28) empty = 50 (delta 5).
  const getBlock = Buffer.from('44011234aabbccddb164036162 63c12650'.replace(/ /g, ''), 'hex');
  const getMessage: CoapMessage = {
    type: MessageType.con,
    code: 1,
    mid: 0x1234,
    token: Buffer.from('aabbccdd', 'hex'),
    options: [
      { number: OptionNumber.uriPath, value: Buffer.from('d') },
      { number: OptionNumber.uriPath, value: Buffer.from('abc') },
      { number: OptionNumber.block2, value: Buffer.from([0x26]) },
      { number: OptionNumber.size2, value: Buffer.alloc(0) },
    ],
    payload: Buffer.alloc(0),
  };

  it('encodes GET with Block2', () => {
    expect(encodeMessage(getMessage).toString('hex')).toBe(getBlock.toString('hex'));
  });

  it('decodes GET with Block2', () => {
    expect(decodeMessage(getBlock)).toEqual(getMessage);
  });

  it('round-trips extended delta and payload', () => {
    // Option 60 (Size1) after option 0 needs delta 60 = nibble 13 plus one byte 47.
    const message: CoapMessage = {
      type: MessageType.ack,
      code: 69,
      mid: 7,
      token: Buffer.alloc(0),
      options: [{ number: 60, value: Buffer.alloc(300, 1) }],
      payload: Buffer.from('hello'),
    };
    const bytes = encodeMessage(message);
    expect(bytes.subarray(4, 8).toString('hex')).toBe('de2f001f');
    expect(decodeMessage(bytes)).toEqual(message);
  });

  it('rejects payload marker without payload', () => {
    expect(() => decodeMessage(Buffer.from('40010001ff', 'hex'))).toThrow(/payload marker/);
  });

  it('encodes block values', () => {
    // NUM << 4 | M << 3 | SZX (RFC 7959 section 2.2).
    expect(encodeBlock({ num: 0, more: false, szx: 0 }).toString('hex')).toBe('');
    expect(encodeBlock({ num: 2, more: true, szx: 6 }).toString('hex')).toBe('2e');
    expect(encodeBlock({ num: 300, more: false, szx: 2 }).toString('hex')).toBe('12c2');
    expect(decodeBlock(Buffer.from('12ca', 'hex'))).toEqual({ num: 300, more: true, szx: 2 });
  });

  it('maps block size to szx', () => {
    expect(szxOf(16)).toBe(0);
    expect(szxOf(1024)).toBe(6);
    expect(() => szxOf(2048)).toThrow(/16..1024/);
    expect(() => szxOf(100)).toThrow(/power of two/);
  });

  it('parses coap URIs', () => {
    expect(parseCoapUri('coap://127.0.0.1:5684/d/abc?x=1')).toEqual({ host: '127.0.0.1', port: 5684, path: ['d', 'abc'], query: ['x=1'] });
    expect(parseCoapUri('coap://[::1]/c').host).toBe('::1');
    expect(parseCoapUri('coap://localhost/c').port).toBe(5683);
    expect(() => parseCoapUri('http://127.0.0.1/c')).toThrow(/coap:\/\//);
  });
});

/** Binds a UDP socket on 127.0.0.1 that sends reply(request) back, or nothing when it returns null. */
async function scriptedPeer(reply: (request: CoapMessage, count: number) => CoapMessage | null) {
  const socket = dgram.createSocket('udp4');
  let count = 0;
  socket.on('message', (data, remote) => {
    const request = decodeMessage(data);
    count += 1;
    const response = reply(request, count);
    if (response) socket.send(encodeMessage(response), remote.port, remote.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { port: socket.address().port, close: () => socket.close(), requests: () => count };
}

function requestedBlock(request: CoapMessage): { num: number; szx: number } {
  return decodeBlock(request.options.find((option) => option.number === OptionNumber.block2)?.value ?? Buffer.alloc(0));
}

/** Builds the 2.05 response to a Block2 request with an ETag. */
function blockMessage(request: CoapMessage, etag: string, more: boolean, payload: Buffer): CoapMessage {
  const block = requestedBlock(request);
  return {
    type: MessageType.ack,
    code: 69,
    mid: request.mid,
    token: request.token,
    options: [
      { number: OptionNumber.etag, value: Buffer.from(etag, 'hex') },
      { number: OptionNumber.block2, value: encodeBlock({ num: block.num, more, szx: block.szx }) },
    ],
    payload,
  };
}

/** Builds a block filled with its own number; the last one (more false) has 5 bytes. */
function blockResponse(request: CoapMessage, etag: string, more: boolean): CoapMessage {
  const block = requestedBlock(request);
  return blockMessage(request, etag, more, Buffer.alloc(more ? 2 ** (block.szx + 4) : 5, block.num));
}

describe('coap client exchange', () => {
  it('retransmits after a lost reply', async () => {
    const peer = await scriptedPeer((request, count) =>
      count === 1 ? null : { type: MessageType.ack, code: 69, mid: request.mid, token: request.token, options: [], payload: Buffer.from('ok') },
    );
    const client = await CoapClient.connect('127.0.0.1', peer.port, { ackTimeoutMs: 50 });
    try {
      const response = await client.request({ path: ['x'], query: [] }, { code: 1 });
      expect(response.payload.toString()).toBe('ok');
      expect(client.retransmits).toBe(1);
    } finally {
      client.close();
      peer.close();
    }
  });

  it('gives up after MAX_RETRANSMIT', async () => {
    const peer = await scriptedPeer(() => null);
    const client = await CoapClient.connect('127.0.0.1', peer.port, { ackTimeoutMs: 20, maxRetransmit: 2 });
    try {
      await expect(client.request({ path: ['x'], query: [] }, { code: 1 })).rejects.toThrow(/after 3 transmissions/);
      expect(peer.requests()).toBe(3);
    } finally {
      client.close();
      peer.close();
    }
  });

  it('accepts a separate response', async () => {
    const socket = dgram.createSocket('udp4');
    socket.on('message', (data, remote) => {
      const request = decodeMessage(data);
      if (request.code === 0) return;
      const empty = { type: MessageType.ack, code: 0, mid: request.mid, token: Buffer.alloc(0), options: [], payload: Buffer.alloc(0) };
      socket.send(encodeMessage(empty), remote.port, remote.address);
      const later = { type: MessageType.con, code: 69, mid: 999, token: request.token, options: [], payload: Buffer.from('late') };
      setTimeout(() => socket.send(encodeMessage(later), remote.port, remote.address), 30);
    });
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const client = await CoapClient.connect('127.0.0.1', socket.address().port, { ackTimeoutMs: 20 });
    try {
      const response = await client.request({ path: ['x'], query: [] }, { code: 1 });
      expect(response.payload.toString()).toBe('late');
      expect(client.retransmits).toBe(0);
    } finally {
      client.close();
      socket.close();
    }
  });
});

describe('download', () => {
  const temp = makeTempDir('download');
  afterAll(() => temp.remove());

  it('detects a changed ETag', async () => {
    const peer = await scriptedPeer((request, count) => blockResponse(request, count === 1 ? 'aa' : 'bb', count < 3));
    try {
      const result = await runTool(['download', `coap://127.0.0.1:${peer.port}/d/x`, '--out', join(temp.dir, 'etag.bin'), '--block-size', '64']);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/ETag changed at block 1 from aa to bb/);
      expect(existsSync(join(temp.dir, 'etag.bin'))).toBe(false);
    } finally {
      peer.close();
    }
  });

  it('sends one request per block', async () => {
    const peer = await scriptedPeer((request, count) => blockResponse(request, 'aa', count < 4));
    try {
      const out = join(temp.dir, 'blocks.bin');
      const result = await runTool(['download', `coap://127.0.0.1:${peer.port}/d/x`, '--out', out, '--block-size', '32', '--size', '101', '--json']);
      expect(result.code).toBe(0);
      expect(peer.requests()).toBe(4);
      expect(jsonOf(result)).toMatchObject({ blocks: 4, blockSize: 32, size: 101, sizeMatches: true, etag: 'aa' });
      expect(readFileSync(out).subarray(32, 64)).toEqual(Buffer.alloc(32, 1));
    } finally {
      peer.close();
    }
  });
});

/**
 * Serves image in Block2 blocks of the requested size with an ETag, and stays silent
 * for blocks from silentFrom on, as a server that went away mid-download would.
 */
async function imagePeer(initial: { image: Buffer; etag: string; silentFrom?: number }) {
  const state = { ...initial, silentFrom: initial.silentFrom ?? Infinity, requested: [] as number[] };
  const peer = await scriptedPeer((request) => {
    const block = requestedBlock(request);
    state.requested.push(block.num);
    if (block.num >= state.silentFrom) return null;
    const size = 2 ** (block.szx + 4);
    if (block.num * size >= state.image.length) {
      // 4.02 Bad Option, the code ota-server returns for a block past the end.
      return { type: MessageType.ack, code: 130, mid: request.mid, token: request.token, options: [], payload: Buffer.from('past the last block') };
    }
    const more = (block.num + 1) * size < state.image.length;
    return blockMessage(request, state.etag, more, state.image.subarray(block.num * size, (block.num + 1) * size));
  });
  return { ...peer, state };
}

describe('download resume', () => {
  const temp = makeTempDir('resume');
  afterAll(() => temp.remove());
  // Ten blocks of 64 bytes and a last one of 5.
  const image = Buffer.from(Array.from({ length: 645 }, (_, i) => (i * 7 + 3) % 251));
  const digest = createHash('sha256').update(image).digest('hex');

  /** Runs one download that the peer cuts off after block 3 and returns the command line. */
  async function interrupted(peer: Awaited<ReturnType<typeof imagePeer>>, name: string): Promise<string[]> {
    const argv = ['download', `coap://127.0.0.1:${peer.port}/d/x`, '--out', join(temp.dir, name), '--block-size', '64', '--sha256', digest, '--timeout', '1'];
    const first = await runTool(argv);
    expect(first.code).not.toBe(0);
    expect(first.stderr).toContain('run the same command again to resume at byte 256');
    expect(existsSync(join(temp.dir, `${name}.part.json`))).toBe(true);
    return argv;
  }

  it('continues after the staged blocks', async () => {
    const peer = await imagePeer({ image, etag: 'aa01', silentFrom: 4 });
    try {
      const argv = await interrupted(peer, 'resume.bin');
      peer.state.silentFrom = Infinity;
      peer.state.requested = [];

      const second = await runTool([...argv, '--json']);

      expect(second.code).toBe(0);
      expect(second.stderr).toContain('at byte 256');
      expect(peer.state.requested).toEqual([4, 5, 6, 7, 8, 9, 10]);
      expect(jsonOf(second)).toMatchObject({ resumedFrom: 256, size: 645, sha256Matches: true, blocks: 7 });
      expect(readFileSync(join(temp.dir, 'resume.bin'))).toEqual(image);
      expect(existsSync(join(temp.dir, 'resume.bin.part.json'))).toBe(false);
    } finally {
      peer.close();
    }
  });

  it('starts over when the ETag changed', async () => {
    const peer = await imagePeer({ image: Buffer.alloc(645, 9), etag: 'bb01', silentFrom: 4 });
    try {
      const argv = await interrupted(peer, 'changed.bin');
      // The server now has another image under the same URI.
      Object.assign(peer.state, { image, etag: 'bb02', silentFrom: Infinity, requested: [] });

      const second = await runTool([...argv, '--json']);

      expect(second.code).toBe(0);
      expect(second.stderr).toContain(`the ETag is now bb02, the reused bytes were downloaded with bb01: ${join(temp.dir, 'changed.bin.part')} belongs to another image, so the download starts again at block 0`);
      expect(peer.state.requested).toEqual([4, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(jsonOf(second)).toMatchObject({ resumedFrom: 0, sha256Matches: true });
      expect(readFileSync(join(temp.dir, 'changed.bin'))).toEqual(image);
    } finally {
      peer.close();
    }
  });

  it('--restart discards FILE.part', async () => {
    const peer = await imagePeer({ image, etag: 'cc01', silentFrom: 4 });
    try {
      const argv = await interrupted(peer, 'restart.bin');
      Object.assign(peer.state, { silentFrom: Infinity, requested: [] });

      const second = await runTool([...argv, '--restart', '--json']);

      expect(second.code).toBe(0);
      expect(peer.state.requested[0]).toBe(0);
      expect(jsonOf(second)).toMatchObject({ resumedFrom: 0, blocks: 11, sha256Matches: true });
    } finally {
      peer.close();
    }
  });

  it('damaged part file starts over', async () => {
    // An 8-byte ETag from the digest, as ota-server sends, lets the tool check the reused bytes.
    const etag = digest.slice(0, 16);
    const peer = await imagePeer({ image, etag });
    try {
      const out = join(temp.dir, 'damaged.bin');
      writeFileSync(`${out}.part`, Buffer.alloc(300, 0xee));
      writeFileSync(`${out}.part.json`, JSON.stringify({ uri: `coap://127.0.0.1:${peer.port}/d/x`, etag }));

      const result = await runTool(['download', `coap://127.0.0.1:${peer.port}/d/x`, '--out', out, '--block-size', '64', '--json']);

      expect(result.code).toBe(0);
      expect(result.stderr).toContain('bytes reused from');
      expect(jsonOf(result)).toMatchObject({ resumedFrom: 0, sha256: digest });
      expect(readFileSync(out)).toEqual(image);
    } finally {
      peer.close();
    }
  });

  it('part file past the end starts over', async () => {
    const peer = await imagePeer({ image, etag: 'ee01' });
    try {
      const out = join(temp.dir, 'long.bin');
      writeFileSync(`${out}.part`, Buffer.alloc(2000, 1));
      writeFileSync(`${out}.part.json`, JSON.stringify({ uri: `coap://127.0.0.1:${peer.port}/d/x`, etag: 'ee01' }));

      const result = await runTool(['download', `coap://127.0.0.1:${peer.port}/d/x`, '--out', out, '--block-size', '64', '--json']);

      expect(result.code).toBe(0);
      expect(result.stderr).toContain('block 31 is past the end of the image');
      expect(readFileSync(out)).toEqual(image);
    } finally {
      peer.close();
    }
  });

  it('Ctrl-C leaves a resumable part', async () => {
    const peer = await imagePeer({ image, etag: 'ff01', silentFrom: 3 });
    const bin = fileURLToPath(new URL('../../bin/ota-tool.js', import.meta.url));
    const out = join(temp.dir, 'interrupted.bin');
    try {
      const child = spawn(process.execPath, [bin, 'download', `coap://127.0.0.1:${peer.port}/d/x`, '--out', out, '--block-size', '64'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      await expect.poll(() => peer.state.requested.includes(3), { timeout: 15_000 }).toBe(true);
      child.kill('SIGINT');

      expect(await exited).toBe(1);
      expect(stderr).toContain('interrupted at byte 192; run the same command again to resume at byte 192');
      expect(readFileSync(`${out}.part`)).toEqual(image.subarray(0, 192));
    } finally {
      peer.close();
    }
  }, 30_000);

  it('failed verification is not resumed', async () => {
    const peer = await imagePeer({ image, etag: 'dd01' });
    try {
      const out = join(temp.dir, 'verify.bin');
      const argv = ['download', `coap://127.0.0.1:${peer.port}/d/x`, '--out', out, '--block-size', '64', '--json'];
      const wrong = await runTool([...argv, '--sha256', '00'.repeat(32)]);
      expect(wrong.code).toBe(1);
      expect(existsSync(`${out}.part`)).toBe(true);
      peer.state.requested = [];

      const again = await runTool([...argv, '--sha256', digest]);

      expect(again.code).toBe(0);
      expect(peer.state.requested[0]).toBe(0);
      expect(jsonOf(again)).toMatchObject({ resumedFrom: 0, sha256Matches: true });
    } finally {
      peer.close();
    }
  });
});

describe('download from libcoap coap-server', () => {
  const temp = makeTempDir('libcoap');
  let port = 0;
  let stopServer: () => void = () => {};
  const image = Buffer.alloc(10_000);
  for (let i = 0; i < image.length; i += 1) image[i] = (i * 7919) & 0xff;

  beforeAll(async () => {
    const probe = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => probe.bind(0, '127.0.0.1', resolve));
    port = probe.address().port;
    probe.close();
    const { spawn } = await import('node:child_process');
    const server = spawn('coap-server-notls', ['-A', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
    stopServer = () => server.kill('SIGTERM');
    const file = join(temp.dir, 'image.bin');
    writeFileSync(file, image);
    // The server needs a moment to bind, so the PUT is retried until it succeeds.
    for (let attempt = 0; attempt < 20; attempt += 1) {
      const put = await runLibcoap('coap-client-notls', ['-m', 'put', '-B', '2', '-f', file, '-b', '1024', `coap://127.0.0.1:${port}/example_data`]);
      if (put.code === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`coap-server-notls on port ${port} did not accept the PUT of example_data`);
  });
  afterAll(() => {
    stopServer();
    temp.remove();
  });

  it('matches digest at 16-byte blocks', async () => {
    const digest = createHash('sha256').update(image).digest('hex');
    const out = join(temp.dir, 'got16.bin');
    const result = await runTool(['download', `coap://127.0.0.1:${port}/example_data`, '--out', out, '--block-size', '16', '--sha256', digest, '--json']);
    expect(result.code).toBe(0);
    expect(jsonOf(result)).toMatchObject({ size: image.length, sha256: digest, sha256Matches: true, blocks: 625 });
    expect(readFileSync(out).equals(image)).toBe(true);
  });

  it('flags a digest mismatch', async () => {
    const out = join(temp.dir, 'bad.bin');
    const result = await runTool(['download', `coap://127.0.0.1:${port}/example_data`, '--out', out, '--sha256', '00'.repeat(32)]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/MISMATCH/);
    expect(result.stderr).toMatch(/--sha256 expected 0{64}/);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(`${out}.part`)).toBe(true);
  });
});
