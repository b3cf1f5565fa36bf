// CoAP contexts over real UDP on 127.0.0.1: AT+CCOAPNEW/SEND/DEL, +CCOAPNMI URCs,
// send checks, target restriction, URC interleaving and byte counters.

import { afterEach, describe, expect, it } from 'vitest';

import { Sim7020Simulator } from '../../tools/sim7020/index.ts';
import { COAP_GET_HEX, command, readyModem, sleep, startEchoServer, write, type EchoServer } from './helpers.ts';

let sim: Sim7020Simulator | undefined;
let server: EchoServer | undefined;

afterEach(async () => {
  await sim?.close();
  await server?.close();
  sim = undefined;
  server = undefined;
});

describe('sim7020 coap contexts', () => {
  it('round-trips a datagram with exact counters', async () => {
    server = await startEchoServer();
    const modem = readyModem();
    sim = modem.sim;
    expect(await command(sim, modem.tap, `AT+CCOAPNEW="127.0.0.1",${server.port},1`)).toEqual(['+CCOAPNEW: 1', 'OK']);
    expect(await command(sim, modem.tap, `AT+CCOAPSEND=1,4,"${COAP_GET_HEX}"`)).toEqual(['OK']);
    expect(await modem.tap.waitForLine(/^\+CCOAPNMI/)).toBe(`+CCOAPNMI: 1,4,${COAP_GET_HEX}`);
    expect(server.received.map((datagram) => datagram.toString('hex'))).toEqual([COAP_GET_HEX]);

    const stats = sim.stats();
    // 4 CoAP bytes + 8 UDP + 20 IPv4 = 32 bytes per direction.
    const oneDatagram = { datagrams: 1, coapBytes: 4, ipBytes: 32 };
    expect(stats.uplink).toEqual(oneDatagram);
    expect(stats.downlink).toEqual(oneDatagram);
    expect(stats.contexts).toEqual([
      { id: 1, target: `127.0.0.1:${server.port}`, uplink: oneDatagram, downlink: oneDatagram },
    ]);
    expect(stats.atCommands).toBe(2);
  });

  it('counts bytes per context and in total', async () => {
    server = await startEchoServer(0, false);
    const modem = readyModem();
    sim = modem.sim;
    await command(sim, modem.tap, `AT+CCOAPNEW="127.0.0.1",${server.port},1`);
    expect(await command(sim, modem.tap, `AT+CCOAPNEW="127.0.0.1",${server.port},1`)).toEqual(['+CCOAPNEW: 2', 'OK']);
    await command(sim, modem.tap, 'AT+CCOAPSEND=1,2,"0102"');
    await command(sim, modem.tap, `AT+CCOAPSEND=2,10,"${'ab'.repeat(10)}"`);
    await command(sim, modem.tap, 'AT+CCOAPSEND=2,1,"ff"');
    const stats = sim.stats();
    expect(stats.uplink).toEqual({ datagrams: 3, coapBytes: 13, ipBytes: 13 + 3 * 28 });
    expect(stats.contexts.map((context) => context.uplink)).toEqual([
      { datagrams: 1, coapBytes: 2, ipBytes: 30 },
      { datagrams: 2, coapBytes: 11, ipBytes: 67 },
    ]);
    sim.resetStats();
    expect(sim.stats().uplink).toEqual({ datagrams: 0, coapBytes: 0, ipBytes: 0 });
    expect(sim.stats().contexts.map((context) => context.uplink.datagrams)).toEqual([0, 0]);
    expect(sim.stats().atCommands).toBe(0);
  });

  it('accepts quoted and unquoted hex', async () => {
    server = await startEchoServer(0, false);
    const modem = readyModem();
    sim = modem.sim;
    await command(sim, modem.tap, `AT+CCOAPNEW="127.0.0.1",${server.port},1`);
    expect(await command(sim, modem.tap, 'AT+CCOAPSEND=1,2,"A1b2"')).toEqual(['OK']);
    expect(await command(sim, modem.tap, 'AT+CCOAPSEND=1,2,c3d4')).toEqual(['OK']);
    await sleep(30);
    expect(server.received.map((datagram) => datagram.toString('hex'))).toEqual(['a1b2', 'c3d4']);
  });

  it('quotes NMI hex when configured', async () => {
    server = await startEchoServer();
    const modem = readyModem({ quoteNmiHex: true });
    sim = modem.sim;
    await command(sim, modem.tap, `AT+CCOAPNEW="127.0.0.1",${server.port},1`);
    await command(sim, modem.tap, `AT+CCOAPSEND=1,4,"${COAP_GET_HEX}"`);
    expect(await modem.tap.waitForLine(/^\+CCOAPNMI/)).toBe(`+CCOAPNMI: 1,4,"${COAP_GET_HEX}"`);
  });

  it('rejects a length that is not the byte count', async () => {
    server = await startEchoServer();
    const modem = readyModem();
    sim = modem.sim;
    await command(sim, modem.tap, `AT+CCOAPNEW="127.0.0.1",${server.port},1`);
    // 8 is the hex character count of a 4-byte message, a typical driver mistake.
    expect(await command(sim, modem.tap, `AT+CCOAPSEND=1,8,"${COAP_GET_HEX}"`)).toEqual(['ERROR']);
    expect(await command(sim, modem.tap, `AT+CCOAPSEND=1,3,"${COAP_GET_HEX}"`)).toEqual(['ERROR']);
    expect(await command(sim, modem.tap, 'AT+CCOAPSEND=1,2,"abc"')).toEqual(['ERROR']);
    expect(await command(sim, modem.tap, 'AT+CCOAPSEND=1,2,"zz00"')).toEqual(['ERROR']);
    await sleep(30);
    expect(server.received).toEqual([]);
    expect(sim.stats().uplink.datagrams).toBe(0);
  });

  it('rejects more than 512 bytes', async () => {
    server = await startEchoServer(0, false);
    const modem = readyModem();
    sim = modem.sim;
    await command(sim, modem.tap, `AT+CCOAPNEW="127.0.0.1",${server.port},1`);
    expect(await command(sim, modem.tap, `AT+CCOAPSEND=1,513,"${'00'.repeat(513)}"`)).toEqual(['ERROR']);
    expect(await command(sim, modem.tap, `AT+CCOAPSEND=1,512,"${'00'.repeat(512)}"`)).toEqual(['OK']);
    await sleep(30);
    expect(server.received.map((datagram) => datagram.length)).toEqual([512]);
    expect(sim.stats().uplink).toEqual({ datagrams: 1, coapBytes: 512, ipBytes: 540 });
  });

  it('rejects a non-loopback target', async () => {
    const modem = readyModem();
    sim = modem.sim;
    expect(await command(sim, modem.tap, 'AT+CCOAPNEW="192.0.2.10",5683,1')).toEqual(['ERROR']);
    expect(await command(sim, modem.tap, 'AT+CCOAPNEW="ota.example",5683,1')).toEqual(['ERROR']);
    expect(await command(sim, modem.tap, 'AT+CCOAPSEND=1,4,"40011234"')).toEqual(['ERROR']);
    expect(sim.stats().contexts).toEqual([]);
  });

  it('rejects a bad port or cid', async () => {
    const modem = readyModem();
    sim = modem.sim;
    expect(await command(sim, modem.tap, 'AT+CCOAPNEW="127.0.0.1",0,1')).toEqual(['ERROR']);
    expect(await command(sim, modem.tap, 'AT+CCOAPNEW="127.0.0.1",70000,1')).toEqual(['ERROR']);
    expect(await command(sim, modem.tap, 'AT+CCOAPNEW="127.0.0.1",5683,11')).toEqual(['ERROR']);
  });

  it('closes a context on CCOAPDEL', async () => {
    server = await startEchoServer(50);
    const modem = readyModem();
    sim = modem.sim;
    await command(sim, modem.tap, `AT+CCOAPNEW="127.0.0.1",${server.port},1`);
    await command(sim, modem.tap, `AT+CCOAPSEND=1,4,"${COAP_GET_HEX}"`);
    expect(await command(sim, modem.tap, 'AT+CCOAPDEL=1')).toEqual(['OK']);
    expect(await command(sim, modem.tap, `AT+CCOAPSEND=1,4,"${COAP_GET_HEX}"`)).toEqual(['ERROR']);
    // The echo, 50 ms late, finds the context closed.
    await sleep(100);
    expect(modem.tap.raw).not.toContain('+CCOAPNMI');
    expect(server.received).toHaveLength(1);
    expect(await command(sim, modem.tap, `AT+CCOAPNEW="127.0.0.1",${server.port},1`)).toEqual(['+CCOAPNEW: 1', 'OK']);
  });

  it('limits open contexts', async () => {
    const modem = readyModem({ maxContexts: 2 });
    sim = modem.sim;
    expect(await command(sim, modem.tap, 'AT+CCOAPNEW="127.0.0.1",5683,1')).toEqual(['+CCOAPNEW: 1', 'OK']);
    expect(await command(sim, modem.tap, 'AT+CCOAPNEW="127.0.0.1",5683,1')).toEqual(['+CCOAPNEW: 2', 'OK']);
    expect(await command(sim, modem.tap, 'AT+CCOAPNEW="127.0.0.1",5683,1')).toEqual(['ERROR']);
  });

  it('drops datagrams from other senders', async () => {
    server = await startEchoServer(0, false);
    const stranger = await startEchoServer(0, false);
    const logs: string[] = [];
    const modem = readyModem({ logger: (line) => logs.push(line) });
    sim = modem.sim;
    await command(sim, modem.tap, `AT+CCOAPNEW="127.0.0.1",${server.port},1`);
    const port = sim.localPortOf(1)!;
    modem.tap.clear();
    stranger.sendTo(Buffer.from('6000abcd', 'hex'), port);
    server.sendTo(Buffer.from('6000abcd', 'hex'), port);
    await modem.tap.waitForLine(/^\+CCOAPNMI/);
    await sleep(30);
    await stranger.close();
    expect(modem.tap.lines()).toEqual(['+CCOAPNMI: 1,4,6000abcd']);
    expect(logs.some((line) => line.includes('dropped a datagram from 127.0.0.1'))).toBe(true);
  });

  it('rejects CCOAPNEW before attach', async () => {
    const modem = readyModem();
    sim = modem.sim;
    await command(sim, modem.tap, 'AT+CFUN=0');
    expect(await command(sim, modem.tap, 'AT+CCOAPNEW="127.0.0.1",5683,1')).toEqual(['ERROR']);
  });
});

describe('sim7020 urc interleaving', () => {
  it('puts an NMI between echo and OK', async () => {
    server = await startEchoServer();
    const modem = readyModem({ echo: true, commandDelayMs: 150 });
    sim = modem.sim;
    await command(sim, modem.tap, `AT+CCOAPNEW="127.0.0.1",${server.port},1`);
    const lines = await command(sim, modem.tap, `AT+CCOAPSEND=1,4,"${COAP_GET_HEX}"`);
    expect(lines).toEqual([`AT+CCOAPSEND=1,4,"${COAP_GET_HEX}"`, `+CCOAPNMI: 1,4,${COAP_GET_HEX}`, 'OK']);
  });

  it('puts an NMI between two commands', async () => {
    server = await startEchoServer(40);
    const modem = readyModem();
    sim = modem.sim;
    await command(sim, modem.tap, `AT+CCOAPNEW="127.0.0.1",${server.port},1`);
    modem.tap.clear();
    write(sim, `AT+CCOAPSEND=1,4,"${COAP_GET_HEX}"\r`);
    await modem.tap.waitForLine(/^\+CCOAPNMI/);
    write(sim, 'AT+CSQ\r');
    await modem.tap.waitForLine(/^\+CSQ/);
    await sleep(10);
    expect(modem.tap.lines()).toEqual(['OK', `+CCOAPNMI: 1,4,${COAP_GET_HEX}`, '+CSQ: 20,99', 'OK']);
  });

  it('sends an unsolicited datagram as NMI', async () => {
    server = await startEchoServer(0, false);
    const modem = readyModem();
    sim = modem.sim;
    await command(sim, modem.tap, `AT+CCOAPNEW="127.0.0.1",${server.port},1`);
    const port = sim.localPortOf(1)!;
    modem.tap.clear();
    server.sendTo(Buffer.from('5000beef', 'hex'), port);
    expect(await modem.tap.waitForLine(/^\+CCOAPNMI/)).toBe('+CCOAPNMI: 1,4,5000beef');
    expect(sim.stats().downlink).toEqual({ datagrams: 1, coapBytes: 4, ipBytes: 32 });
  });
});
