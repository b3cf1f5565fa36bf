// Switchable faults: injected ERROR and +CME ERROR replies, seeded datagram loss,
// duplicates, latency, a reset in the middle of a transfer and a hung modem.

import { afterEach, describe, expect, it } from 'vitest';

import { Sim7020Simulator, type Sim7020Faults } from '../../tools/sim7020/index.ts';
import {
  COAP_GET_HEX,
  command,
  expectSilence,
  pulsePwrkey,
  readyModem,
  sleep,
  startEchoServer,
  type EchoServer,
} from './helpers.ts';

let sims: Sim7020Simulator[] = [];
let servers: EchoServer[] = [];

afterEach(async () => {
  await Promise.all(sims.map((sim) => sim.close()));
  await Promise.all(servers.map((server) => server.close()));
  sims = [];
  servers = [];
});

async function connectedModem(faults: Sim7020Faults, replyDelayMs = 0, echo = true) {
  const server = await startEchoServer(replyDelayMs, echo);
  servers.push(server);
  const modem = readyModem({ faults });
  sims.push(modem.sim);
  expect(await command(modem.sim, modem.tap, `AT+CCOAPNEW="127.0.0.1",${server.port},1`)).toEqual(['+CCOAPNEW: 1', 'OK']);
  return { ...modem, server };
}

/** Sends count datagrams whose payload is their index, one byte each. */
async function sendNumbered(modem: Awaited<ReturnType<typeof connectedModem>>, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const hex = i.toString(16).padStart(2, '0');
    expect(await command(modem.sim, modem.tap, `AT+CCOAPSEND=1,1,"${hex}"`)).toEqual(['OK']);
  }
}

describe('sim7020 error faults', () => {
  it('replies ERROR a set number of times', async () => {
    const modem = readyModem({ faults: { errors: [{ match: 'AT+CSQ', count: 2 }] } });
    sims.push(modem.sim);
    expect(await command(modem.sim, modem.tap, 'AT+CSQ')).toEqual(['ERROR']);
    expect(await command(modem.sim, modem.tap, 'at+csq')).toEqual(['ERROR']);
    expect(await command(modem.sim, modem.tap, 'AT+CSQ')).toEqual(['+CSQ: 20,99', 'OK']);
    expect(await command(modem.sim, modem.tap, 'AT')).toEqual(['OK']);
  });

  it('replies +CME ERROR for a pattern', async () => {
    const modem = readyModem();
    sims.push(modem.sim);
    modem.sim.faults = { errors: [{ match: /^AT\+CCOAPNEW=/, cme: 50 }] };
    expect(await command(modem.sim, modem.tap, 'AT+CCOAPNEW="127.0.0.1",5683,1')).toEqual(['+CME ERROR: 50']);
    expect(modem.sim.stats().contexts).toEqual([]);
    modem.sim.faults = {};
    expect(await command(modem.sim, modem.tap, 'AT+CCOAPNEW="127.0.0.1",5683,1')).toEqual(['+CCOAPNEW: 1', 'OK']);
  });

  it('repeats probabilistic errors for one seed', async () => {
    const outcomes: string[][] = [];
    for (let run = 0; run < 2; run++) {
      const modem = readyModem({ faults: { seed: 7, errors: [{ match: 'AT', probability: 0.5 }] } });
      sims.push(modem.sim);
      const finals: string[] = [];
      for (let i = 0; i < 24; i++) {
        finals.push((await command(modem.sim, modem.tap, 'AT')).at(-1)!);
      }
      outcomes.push(finals);
    }
    expect(outcomes[0]).toEqual(outcomes[1]);
    expect(outcomes[0]).toContain('OK');
    expect(outcomes[0]).toContain('ERROR');
  });
});

describe('sim7020 datagram faults', () => {
  it('loses uplink datagrams reproducibly', async () => {
    const delivered: string[][] = [];
    for (let run = 0; run < 2; run++) {
      const modem = await connectedModem({ seed: 42, uplinkLoss: 0.5 }, 0, false);
      await sendNumbered(modem, 20);
      await sleep(30);
      const stats = modem.sim.stats();
      // Lost uplink datagrams still went on air.
      expect(stats.uplink.datagrams).toBe(20);
      expect(modem.server.received.length).toBe(20 - stats.uplinkLost);
      expect(stats.uplinkLost).toBeGreaterThan(0);
      expect(stats.uplinkLost).toBeLessThan(20);
      delivered.push(modem.server.received.map((datagram) => datagram.toString('hex')));
    }
    expect(delivered[0]).toEqual(delivered[1]);
  });

  it('loses a downlink datagram', async () => {
    const modem = await connectedModem({ downlinkLoss: 1 });
    await command(modem.sim, modem.tap, `AT+CCOAPSEND=1,4,"${COAP_GET_HEX}"`);
    await sleep(50);
    expect(modem.server.received).toHaveLength(1);
    expect(modem.tap.raw).not.toContain('+CCOAPNMI');
    expect(modem.sim.stats().downlinkLost).toBe(1);
    expect(modem.sim.stats().downlink.datagrams).toBe(0);
  });

  it('duplicates datagrams both ways', async () => {
    const modem = await connectedModem({ uplinkDuplicate: 1, downlinkDuplicate: 1 });
    await command(modem.sim, modem.tap, `AT+CCOAPSEND=1,4,"${COAP_GET_HEX}"`);
    await sleep(50);
    // Two copies reach the server, each echo reaches the modem twice.
    expect(modem.server.received).toHaveLength(2);
    const urcs = modem.tap.lines().filter((line) => line.startsWith('+CCOAPNMI'));
    expect(urcs).toEqual(Array(4).fill(`+CCOAPNMI: 1,4,${COAP_GET_HEX}`));
    const stats = modem.sim.stats();
    expect(stats.uplink.datagrams).toBe(1);
    expect(stats.uplinkDuplicated).toBe(1);
    expect(stats.downlink.datagrams).toBe(4);
    expect(stats.downlinkDuplicated).toBe(2);
  });

  it('flips a bit in a chosen downlink datagram', async () => {
    const modem = await connectedModem({ corruptDownlink: [2] });
    const urcs: string[] = [];
    for (let i = 0; i < 3; i++) {
      await command(modem.sim, modem.tap, `AT+CCOAPSEND=1,4,"${COAP_GET_HEX}"`);
      urcs.push(await modem.tap.waitForLine(/^\+CCOAPNMI/));
    }
    // 0x34 with bit 0 flipped is 0x35.
    expect(urcs).toEqual([`+CCOAPNMI: 1,4,${COAP_GET_HEX}`, '+CCOAPNMI: 1,4,40011235', `+CCOAPNMI: 1,4,${COAP_GET_HEX}`]);
    // Only the copy on the UART changed: the server received three intact requests.
    expect(modem.server.received.map((datagram) => datagram.toString('hex'))).toEqual(Array(3).fill(COAP_GET_HEX));
    expect(modem.sim.stats().downlinkCorrupted).toBe(1);
  });

  it('adds latency per direction', async () => {
    const modem = await connectedModem({ uplinkLatencyMs: 300, downlinkLatencyMs: 200 });
    const startMs = performance.now();
    await command(modem.sim, modem.tap, `AT+CCOAPSEND=1,4,"${COAP_GET_HEX}"`);
    await sleep(100);
    expect(modem.server.received).toHaveLength(0);
    await modem.tap.waitForLine(/^\+CCOAPNMI/);
    const roundTripMs = performance.now() - startMs;
    expect(modem.server.received).toHaveLength(1);
    expect(roundTripMs).toBeGreaterThanOrEqual(495);
    expect(roundTripMs).toBeLessThan(2000);
  });
});

describe('sim7020 reset and hang faults', () => {
  it('resets after N sends mid-transfer', async () => {
    const modem = await connectedModem({ resetAfterSends: 2 }, 20);
    await command(modem.sim, modem.tap, `AT+CCOAPSEND=1,4,"${COAP_GET_HEX}"`);
    await modem.tap.waitForLine(/^\+CCOAPNMI/);
    expect(await command(modem.sim, modem.tap, `AT+CCOAPSEND=1,4,"${COAP_GET_HEX}"`)).toEqual(['OK']);
    expect(modem.sim.state).toBe('booting');
    expect(await expectSilence(modem.sim, modem.tap, 'AT', 20)).toBe('');
    // The echo of the second send arrives while the modem boots and is lost.
    await sleep(60);
    expect(modem.server.received).toHaveLength(2);
    expect(modem.tap.raw).toBe('');
    expect(await command(modem.sim, modem.tap, 'AT')).toEqual(['AT', 'OK']);
    expect(await command(modem.sim, modem.tap, 'ATE0')).toEqual(['ATE0', 'OK']);
    expect(await command(modem.sim, modem.tap, `AT+CCOAPSEND=1,4,"${COAP_GET_HEX}"`)).toEqual(['ERROR']);
    expect(modem.sim.stats().resets).toBe(1);
  });

  it('resets at a chosen moment', async () => {
    const modem = await connectedModem({});
    modem.sim.resetModem();
    expect(await expectSilence(modem.sim, modem.tap, 'AT', 20)).toBe('');
    await sleep(50);
    expect(await command(modem.sim, modem.tap, 'AT')).toEqual(['AT', 'OK']);
    expect(modem.sim.localPortOf(1)).toBeUndefined();
    expect(modem.sim.stats().resets).toBe(1);
  });

  it('hangs until PWRKEY power-cycles it', async () => {
    const modem = await connectedModem({});
    modem.sim.hang();
    expect(await expectSilence(modem.sim, modem.tap, 'AT')).toBe('');
    await pulsePwrkey(modem.sim, 5);
    expect(modem.sim.state).toBe('hung');
    await pulsePwrkey(modem.sim, 60);
    expect(modem.sim.state).toBe('off');
    expect(await expectSilence(modem.sim, modem.tap, 'AT')).toBe('');
    await pulsePwrkey(modem.sim, 60);
    await sleep(60);
    expect(modem.sim.state).toBe('on');
    expect(await command(modem.sim, modem.tap, 'AT')).toEqual(['AT', 'OK']);
    expect(modem.sim.stats().powerOns).toBe(1);
  });
});
