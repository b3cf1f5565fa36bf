// firmware/sim7020.py on real MicroPython against a scripted modem on a fake UART.
import { beforeEach, describe, expect, test } from 'vitest';
import { startFirmware, type Interpreter } from './micropython.ts';
import { FAKE_MACHINE, FAKE_MODEM } from './fakes.ts';

let mp: Interpreter;

beforeEach(async () => {
  mp = await startFirmware({ '/machine.py': FAKE_MACHINE, '/fake_modem.py': FAKE_MODEM });
  mp.run(`
import json, machine, sim7020, coap
from fake_modem import FakeModemUart

def ok(command):
    return ["OK"]

def make(handler=ok, powered=True, pwrkey_ms=20):
    uart = FakeModemUart(handler, powered)
    modem = sim7020.Sim7020(pwrkey_ms=pwrkey_ms, uart=uart, pwrkey=machine.Pin(14, machine.Pin.OUT))
    return modem, uart

def error_of(call):
    try:
        call()
        return "no error"
    except Exception as err:
        return type(err).__name__ + ": " + str(err)
`);
});

describe('Sim7020.command', () => {
  test('returns information lines', () => {
    const out = mp.json<string[]>(`
modem, uart = make(lambda c: ["+CSQ: 17,0", "OK"] if c == "AT+CSQ" else ["OK"])
print(json.dumps([line.decode() for line in modem.command(sim7020.CMD_SIGNAL_QUALITY)] + [str(modem.signal_quality())]))
`);
    expect(out).toEqual(['+CSQ: 17,0', '(17, 0)']);
  });

  test('skips echo before ATE0', () => {
    const out = mp.run(`
modem, uart = make(lambda c: ["+CPIN: READY", "OK"] if c == "AT+CPIN?" else ["OK"])
print(modem.command(sim7020.CMD_SIM_STATUS), uart.echo)
`);
    expect(out.trim()).toBe("[b'+CPIN: READY'] True");
  });

  test('ERROR and CME ERROR raise', () => {
    const out = mp.run(`
modem, uart = make(lambda c: ["ERROR"] if c == "AT+CFUN=1" else ["+CME ERROR: 10"])
print(error_of(lambda: modem.command(sim7020.CMD_RADIO_ON)))
print(error_of(lambda: modem.command(sim7020.CMD_SIM_STATUS)))
`).trim().split('\n');
    expect(out[0]).toBe("ModemError: b'AT+CFUN=1' failed: b'ERROR'");
    expect(out[1]).toBe("ModemError: b'AT+CPIN?' failed: b'+CME ERROR: 10'");
  });

  test('URC between command and OK queued', () => {
    // The datagram arrives after the command's echo and before its final OK.
    const out = mp.run(`
modem, uart = make(lambda c: ["+CCOAPNMI: 1,3,\\"6045AB\\"", "+CCOAPNMI: 2,2,C0DE", "OK"])
modem.command(sim7020.CMD_AT)
print(modem.coap_receive(2, 10), modem.coap_receive(1, 10), modem.coap_receive(1, 10))
`);
    expect(out.trim()).toBe("b'\\xc0\\xde' b'`E\\xab' None");
  });

  test('malformed CCOAPNMI dropped', () => {
    const out = mp.run(`
modem, uart = make()
uart.push("+CCOAPNMI: 1,4,\\"6045AB\\"", "+CCOAPNMI: x", "+CCOAPNMI: 1,1,ZZ", "+CCOAPNMI: 1,1,01")
print(modem.coap_receive(1, 50))
`);
    expect(out.trim().split('\n').pop()).toBe("b'\\x01'");
  });
});

describe('Sim7020 CoAP sending', () => {
  test('CCOAPSEND carries the PDU as hex', () => {
    const out = mp.run(`
modem, uart = make()
modem.command(sim7020.CMD_ECHO_OFF)
modem.coap_send(3, coap.encode(coap.TYPE_CON, coap.GET, 0x1234, b"\\xab", [(11, b"c")]))
print(uart.commands[-1], modem.bytes_sent)
`);
    // 4-byte header, 1-byte token, 2-byte option = 7 bytes.
    expect(out.trim()).toBe('AT+CCOAPSEND=3,7,"41011234ABB163" 7');
  });

  test('PDU over 512 bytes rejected', () => {
    const out = mp.run(`
modem, uart = make()
print(error_of(lambda: modem.coap_send(1, bytes(513))), len(uart.commands))
`);
    expect(out.trim()).toBe('ValueError: CoAP PDU of 513 bytes exceeds the 512 bytes AT+CCOAPSEND takes 0');
  });

  test('coap_open parses the context id', () => {
    const out = mp.run(`
modem, uart = make(lambda c: ["+CCOAPNEW: 4", "OK"] if c.startswith("AT+CCOAPNEW") else ["OK"])
transport = modem.coap_open("10.1.2.3", 5683)
print(transport.context, uart.commands[-1])
`);
    expect(out.trim()).toBe('4 AT+CCOAPNEW="10.1.2.3",5683,1');
  });
});

describe('Sim7020 network setup', () => {
  test('start sets APN and waits for attach', () => {
    const out = mp.json<string[]>(`
polls = []
def network(command):
    if command == "AT+CPIN?":
        return ["+CPIN: READY", "OK"]
    if command == "AT+CGATT?":
        polls.append(command)
        return ["+CGATT: %d" % (1 if len(polls) >= 3 else 0), "OK"]
    if command == "AT+CEREG?":
        return ["+CEREG: 0,1", "OK"]
    return ["OK"]
modem, uart = make(network)
modem.start("iot.example", 30000)
print(json.dumps(uart.commands))
`);
    expect(out).toEqual([
      'AT', 'ATE0', 'AT+CPIN?', 'AT+CGATT?', 'AT+CFUN=0', 'AT*MCGDEFCONT="IP","iot.example"', 'AT+CFUN=1',
      'AT+CGATT?', 'AT+CGATT?', 'AT+CEREG?',
    ]);
  });

  test('silent modem gets one PWRKEY pulse', () => {
    const out = mp.json<{ pulses: number[][]; width: number[]; commands: string[] }>(`
modem, uart = make(pwrkey_ms=30, powered=False)
machine.Pin.changes = []
original = modem.pulse_pwrkey
def pulse():
    original()
    uart.powered = True
modem.pulse_pwrkey = pulse
modem.power_on()
changes = machine.Pin.changes
print(json.dumps({"pulses": [[p, v] for p, v, _ in changes], "width": [changes[1][2] - changes[0][2]], "commands": uart.commands}))
`);
    expect(out.pulses).toEqual([[14, 1], [14, 0]]);
    expect(out.width[0]).toBeGreaterThanOrEqual(30);
    expect(out.commands).toEqual(['AT']);
  }, 20_000);

  test('answering modem gets no pulse', () => {
    const out = mp.run(`
modem, uart = make()
machine.Pin.changes = []
modem.power_on()
print(machine.Pin.changes)
`);
    expect(out.trim()).toBe('[]');
  });

  test('resolve reads the CDNSGIP URC', () => {
    const out = mp.run(`
def dns(command):
    if command == 'AT+CDNSGIP="ota.example.com"':
        return ["OK", '+CDNSGIP: 1,"ota.example.com","203.0.113.7"']
    if command == 'AT+CDNSGIP="nx.example.com"':
        return ["OK", "+CDNSGIP: 0,8"]
    return ["OK"]
modem, uart = make(dns)
print(modem.resolve("ota.example.com"), modem.resolve("192.0.2.1"))
print(error_of(lambda: modem.resolve("nx.example.com")))
`).trim().split('\n');
    expect(out[0]).toBe('203.0.113.7 192.0.2.1');
    expect(out[1]).toContain('DNS lookup of nx.example.com failed');
  });

  test('PSM and eDRX commands', () => {
    const out = mp.json<string[]>(`
modem, uart = make()
modem.set_psm(True, "00100001", "00000101")
modem.set_edrx(1, "0101")
print(json.dumps(uart.commands))
`);
    expect(out).toEqual(['AT+CPSMS=1,,,"00100001","00000101"', 'AT+CEDRXS=1,5,"0101"']);
  });
});
