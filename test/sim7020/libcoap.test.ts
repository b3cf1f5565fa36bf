// Interop: a CoAP request carried by the simulator reaches libcoap's coap-server, and
// the server's response comes back as +CCOAPNMI.

import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';

import { afterEach, describe, expect, it } from 'vitest';

import { Sim7020Simulator } from '../../tools/sim7020/index.ts';
import { command, readyModem, sleep } from './helpers.ts';

let sim: Sim7020Simulator | undefined;
let server: ChildProcess | undefined;

afterEach(async () => {
  await sim?.close();
  server?.kill();
  sim = undefined;
  server = undefined;
});

async function freeUdpPort(): Promise<number> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind({ address: '127.0.0.1', port: 0 }, resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

describe('sim7020 with libcoap', () => {
  it('carries a GET to coap-server', async () => {
    const port = await freeUdpPort();
    server = spawn('coap-server-notls', ['-A', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
    const modem = readyModem();
    sim = modem.sim;
    await command(sim, modem.tap, `AT+CCOAPNEW="127.0.0.1",${port},1`);

    // CON GET with message id 0x0001 and no token, then Uri-Path ".well-known" (option 11,
    // length 11: 0xbb) and "core" (delta 0, length 4: 0x04), per RFC 7252 sections 3 and 3.1.
    const request = '40010001' + 'bb' + Buffer.from('.well-known').toString('hex') + '04' + Buffer.from('core').toString('hex');
    const length = request.length / 2;
    let urc: string | undefined;
    // The server may still be starting, so the request is repeated, as a CoAP client would.
    for (let attempt = 0; attempt < 20 && urc === undefined; attempt++) {
      expect(await command(sim, modem.tap, `AT+CCOAPSEND=1,${length},"${request}"`)).toEqual(['OK']);
      await sleep(100);
      urc = modem.tap.lines().find((line) => line.startsWith('+CCOAPNMI'));
    }
    // ACK (0x60) with code 2.05 (0x45) for message id 0x0001.
    expect(urc).toMatch(/^\+CCOAPNMI: 1,\d+,60450001/);
    const [, lengthText, hex] = /^\+CCOAPNMI: 1,(\d+),([0-9a-f]+)$/.exec(urc!)!;
    expect(hex!.length / 2).toBe(Number(lengthText));
  });
});
