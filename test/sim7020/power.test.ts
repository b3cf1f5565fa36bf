// Modem power through PWRKEY on GP14 and power cuts, and the radio-connected model.

import { afterEach, describe, expect, it } from 'vitest';

import { Sim7020Simulator } from '../../tools/sim7020/index.ts';
import { COAP_GET_HEX, UartTap, command, expectSilence, pulsePwrkey, readyModem, sleep, startEchoServer, type EchoServer } from './helpers.ts';

let sim: Sim7020Simulator | undefined;
let server: EchoServer | undefined;

afterEach(async () => {
  await sim?.close();
  await server?.close();
  sim = undefined;
  server = undefined;
});

function offModem(): { sim: Sim7020Simulator; tap: UartTap } {
  const created = new Sim7020Simulator({ pwrkeyMinMs: 50, bootDelayMs: 40, networkAttachDelayMs: 0 });
  return { sim: created, tap: new UartTap(created) };
}

describe('sim7020 power', () => {
  it('stays silent while off', async () => {
    const modem = offModem();
    sim = modem.sim;
    expect(modem.sim.state).toBe('off');
    expect(await expectSilence(sim, modem.tap, 'AT')).toBe('');
  });

  it('boots on a PWRKEY pulse with echo on', async () => {
    const modem = offModem();
    sim = modem.sim;
    await pulsePwrkey(sim, 60);
    expect(sim.state).toBe('booting');
    expect(await expectSilence(sim, modem.tap, 'AT', 10)).toBe('');
    await sleep(50);
    expect(sim.state).toBe('on');
    expect(await command(sim, modem.tap, 'AT')).toEqual(['AT', 'OK']);
  });

  it('ignores a pulse shorter than pwrkeyMinMs', async () => {
    const logs: string[] = [];
    sim = new Sim7020Simulator({ pwrkeyMinMs: 50, bootDelayMs: 10, logger: (line) => logs.push(line) });
    await pulsePwrkey(sim, 5);
    await sleep(30);
    expect(sim.state).toBe('off');
    expect(logs.some((line) => line.includes('ignored, shorter than 50 ms'))).toBe(true);
  });

  it('ignores other pins', async () => {
    const modem = offModem();
    sim = modem.sim;
    sim.setPin(25, 1);
    await sleep(60);
    sim.setPin(25, 0);
    expect(sim.state).toBe('off');
  });

  it('turns off on a PWRKEY pulse and closes contexts', async () => {
    server = await startEchoServer(0, false);
    const modem = readyModem();
    sim = modem.sim;
    await command(sim, modem.tap, `AT+CCOAPNEW="127.0.0.1",${server.port},1`);
    await pulsePwrkey(sim, 60);
    expect(sim.state).toBe('off');
    expect(sim.localPortOf(1)).toBeUndefined();
    expect(await expectSilence(sim, modem.tap, 'AT')).toBe('');
  });

  it('turns off on a power cut', async () => {
    const modem = readyModem();
    sim = modem.sim;
    sim.setPin(14, 1);
    sim.powerCut();
    expect(sim.state).toBe('off');
    expect(await expectSilence(sim, modem.tap, 'AT')).toBe('');
    // The cut also released PWRKEY, so a fresh pulse is needed to boot.
    await pulsePwrkey(sim, 60);
    await sleep(70);
    expect(await command(sim, modem.tap, 'AT')).toEqual(['AT', 'OK']);
  });
});

describe('sim7020 radio model', () => {
  it('sums connected time per session', async () => {
    server = await startEchoServer();
    let clockMs = 1000;
    const modem = readyModem({ inactivityTimerMs: 100, now: () => clockMs });
    sim = modem.sim;
    await command(sim, modem.tap, `AT+CCOAPNEW="127.0.0.1",${server.port},1`);
    expect(sim.stats().radio).toEqual({ sessions: 0, connectedMs: 0, connectedNow: false });

    await command(sim, modem.tap, `AT+CCOAPSEND=1,4,"${COAP_GET_HEX}"`);
    await modem.tap.waitForLine(/^\+CCOAPNMI/);
    clockMs = 1050;
    await command(sim, modem.tap, `AT+CCOAPSEND=1,4,"${COAP_GET_HEX}"`);
    await modem.tap.waitForLine(/^\+CCOAPNMI/);
    expect(sim.stats().radio).toEqual({ sessions: 1, connectedMs: 150, connectedNow: true });

    clockMs = 5000;
    expect(sim.stats().radio.connectedNow).toBe(false);
    await command(sim, modem.tap, `AT+CCOAPSEND=1,4,"${COAP_GET_HEX}"`);
    await modem.tap.waitForLine(/^\+CCOAPNMI/);
    // Session 1 lasts from 1000 to 1050 plus the 100 ms timer, session 2 from 5000 plus the timer.
    expect(sim.stats().radio).toEqual({ sessions: 2, connectedMs: 250, connectedNow: true });

    sim.resetStats();
    expect(sim.stats().radio.sessions).toBe(0);
  });
});
