// AT command parsing, echo and the reply format of every command the firmware uses.

import { afterEach, describe, expect, it } from 'vitest';

import { Sim7020Simulator } from '../../tools/sim7020/index.ts';
import { UartTap, command, readyModem, sleep, write } from './helpers.ts';

let sim: Sim7020Simulator | undefined;

afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

describe('sim7020 command parsing', () => {
  it('joins a command split across writes', async () => {
    const modem = readyModem();
    sim = modem.sim;
    write(sim, 'A');
    write(sim, 'T+C');
    write(sim, 'SQ');
    await sleep(10);
    expect(modem.tap.raw).toBe('');
    write(sim, '\r');
    await modem.tap.waitForLine(/^OK$/);
    expect(modem.tap.lines()).toEqual(['+CSQ: 20,99', 'OK']);
  });

  it('runs two commands from one write in order', async () => {
    const modem = readyModem();
    sim = modem.sim;
    write(sim, 'AT+CFUN?\rAT+CGATT?\r');
    await modem.tap.waitForLine(/^\+CGATT/);
    await modem.tap.waitForLine(/^OK$/);
    await sleep(10);
    expect(modem.tap.lines()).toEqual(['+CFUN: 1', 'OK', '+CGATT: 1', 'OK']);
  });

  it('ignores LF and blank lines', async () => {
    const modem = readyModem();
    sim = modem.sim;
    write(sim, '\r\n\r\nAT\r\n');
    await modem.tap.waitForLine(/^OK$/);
    await sleep(10);
    expect(modem.tap.lines()).toEqual(['OK']);
    expect(sim.stats().atCommands).toBe(1);
  });

  it('frames replies with CR LF', async () => {
    const modem = readyModem({ echo: true });
    sim = modem.sim;
    write(sim, 'AT\r');
    await modem.tap.waitForLine(/^OK$/);
    expect(modem.tap.raw).toBe('AT\r\r\nOK\r\n');
  });

  it('echoes commands until ATE0', async () => {
    const modem = readyModem({ echo: true });
    sim = modem.sim;
    expect(await command(sim, modem.tap, 'AT')).toEqual(['AT', 'OK']);
    expect(await command(sim, modem.tap, 'ATE0')).toEqual(['ATE0', 'OK']);
    expect(await command(sim, modem.tap, 'AT')).toEqual(['OK']);
    expect(sim.echoEnabled).toBe(false);
    expect(await command(sim, modem.tap, 'ATE1')).toEqual(['OK']);
    expect(await command(sim, modem.tap, 'AT')).toEqual(['AT', 'OK']);
  });

  it('rejects an unknown command', async () => {
    const modem = readyModem();
    sim = modem.sim;
    expect(await command(sim, modem.tap, 'AT+NOSUCH')).toEqual(['ERROR']);
    expect(await command(sim, modem.tap, 'AT+CSQ=?')).toEqual(['ERROR']);
  });

  it('rejects an overlong line', async () => {
    const modem = readyModem();
    sim = modem.sim;
    expect(await command(sim, modem.tap, `AT+CDNSGIP="${'a'.repeat(3000)}"`)).toEqual(['ERROR']);
    expect(await command(sim, modem.tap, 'AT')).toEqual(['OK']);
  });
});

describe('sim7020 reply formats', () => {
  const cases: [string, string[]][] = [
    ['AT', ['OK']],
    ['at', ['OK']],
    ['AT+CPIN?', ['+CPIN: READY', 'OK']],
    ['AT+CSQ', ['+CSQ: 20,99', 'OK']],
    ['AT+CFUN?', ['+CFUN: 1', 'OK']],
    ['AT+CFUN=1', ['OK']],
    ['AT*MCGDEFCONT="IP","iot.example"', ['OK']],
    ['AT+CGATT?', ['+CGATT: 1', 'OK']],
    ['AT+CEREG?', ['+CEREG: 0,1', 'OK']],
    ['AT+CEREG=1', ['OK']],
    ['AT+CPSMS=1,,,"00100001","00000101"', ['OK']],
    ['AT+CPSMS?', ['+CPSMS: 0,,,"",""', 'OK']],
    ['AT+CEDRXS=1,5,"0101"', ['OK']],
    ['AT+CEDRXS?', ['OK']],
    ['AT+CCOAPDEL=1', ['ERROR']],
    ['AT+CFUN=7', ['ERROR']],
  ];

  for (const [line, expected] of cases) {
    it(`answers ${line}`, async () => {
      const modem = readyModem();
      sim = modem.sim;
      expect(await command(sim, modem.tap, line)).toEqual(expected);
    });
  }

  it('reports the APN in AT+CGCONTRDP', async () => {
    const modem = readyModem();
    sim = modem.sim;
    await command(sim, modem.tap, 'AT*MCGDEFCONT="IP","iot.example"');
    expect(await command(sim, modem.tap, 'AT+CGCONTRDP')).toEqual([
      '+CGCONTRDP: 1,5,"iot.example","10.0.0.2.255.255.255.255"',
      'OK',
    ]);
  });

  it('reports CEREG searching, then home', async () => {
    const sim0 = new Sim7020Simulator({ startOn: false, pwrkeyMinMs: 10, bootDelayMs: 10, networkAttachDelayMs: 150 });
    sim = sim0;
    const tap = new UartTap(sim0);
    sim0.setPin(14, 1);
    await sleep(15);
    sim0.setPin(14, 0);
    await sleep(40);
    expect(await command(sim0, tap, 'ATE0')).toEqual(['ATE0', 'OK']);
    expect(await command(sim0, tap, 'AT+CEREG?')).toEqual(['+CEREG: 0,2', 'OK']);
    expect(await command(sim0, tap, 'AT+CGATT?')).toEqual(['+CGATT: 0', 'OK']);
    expect(await command(sim0, tap, 'AT+CGCONTRDP')).toEqual(['OK']);
    await sleep(200);
    expect(await command(sim0, tap, 'AT+CEREG?')).toEqual(['+CEREG: 0,1', 'OK']);
  });

  it('reports CEREG roaming', async () => {
    const modem = readyModem({ registration: 'roaming' });
    sim = modem.sim;
    await command(sim, modem.tap, 'AT+CEREG=2');
    expect(await command(sim, modem.tap, 'AT+CEREG?')).toEqual(['+CEREG: 2,5', 'OK']);
  });

  it('detaches on AT+CFUN=0', async () => {
    const modem = readyModem();
    sim = modem.sim;
    expect(await command(sim, modem.tap, 'AT+CFUN=0')).toEqual(['OK']);
    expect(await command(sim, modem.tap, 'AT+CFUN?')).toEqual(['+CFUN: 0', 'OK']);
    expect(await command(sim, modem.tap, 'AT+CEREG?')).toEqual(['+CEREG: 0,0', 'OK']);
    expect(await command(sim, modem.tap, 'AT+CGATT?')).toEqual(['+CGATT: 0', 'OK']);
    expect(await command(sim, modem.tap, 'AT+CSQ')).toEqual(['+CSQ: 99,99', 'OK']);
    expect(await command(sim, modem.tap, 'AT+CFUN=1')).toEqual(['OK']);
    await sleep(20);
    expect(await command(sim, modem.tap, 'AT+CGATT?')).toEqual(['+CGATT: 1', 'OK']);
  });

  it('resolves a name with a CDNSGIP URC', async () => {
    const modem = readyModem({ dns: { 'ota.example': '127.0.0.1' }, dnsDelayMs: 30 });
    sim = modem.sim;
    expect(await command(sim, modem.tap, 'AT+CDNSGIP="ota.example"')).toEqual(['OK']);
    expect(await modem.tap.waitForLine(/^\+CDNSGIP/)).toBe('+CDNSGIP: 1,"ota.example","127.0.0.1"');
  });

  it('reports an unknown name in a CDNSGIP URC', async () => {
    const modem = readyModem();
    sim = modem.sim;
    expect(await command(sim, modem.tap, 'AT+CDNSGIP="missing.example"')).toEqual(['OK']);
    expect(await modem.tap.waitForLine(/^\+CDNSGIP/)).toBe('+CDNSGIP: 0,8');
  });

  it('records and decodes PSM and eDRX settings', async () => {
    const modem = readyModem();
    sim = modem.sim;
    await command(sim, modem.tap, 'AT+CPSMS=1,,,"00100001","00000101"');
    await command(sim, modem.tap, 'AT+CEDRXS=1,5,"0101"');
    expect(await command(sim, modem.tap, 'AT+CPSMS?')).toEqual(['+CPSMS: 1,,,"00100001","00000101"', 'OK']);
    expect(await command(sim, modem.tap, 'AT+CEDRXS?')).toEqual(['+CEDRXS: 5,"0101"', 'OK']);
    const { psm, edrx } = sim.stats().powerSaving;
    // 001 00001 = 1 x 1 h; 000 00101 = 5 x 2 s (3GPP TS 24.008 tables 10.5.163a and 10.5.163).
    expect(psm).toEqual({ mode: 1, periodicTau: '00100001', activeTime: '00000101', periodicTauS: 3600, activeTimeS: 10 });
    expect(edrx).toEqual({ mode: 1, actType: 5, value: '0101' });
  });
});
