// The simulated Pico wired to the real SIM7020E simulator: the UartPeer contract
// between the two (PWRKEY on GP14, AT commands and replies over UART0) holds.

import { afterEach, expect, test } from 'vitest';
import { SimulatedPico } from '../../tools/harness/simulated-pico.ts';
import { Sim7020Simulator } from '../../tools/sim7020/index.ts';

const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

const script = `
import machine, time
uart = machine.UART(0, baudrate=115200, tx=machine.Pin(0), rx=machine.Pin(1), timeout=300, timeout_char=20, rxbuf=1024)
pwrkey = machine.Pin(14, machine.Pin.OUT, value=0)

def command(text, wait_ms=1000):
    uart.write(text + '\\r')
    lines = []
    deadline = time.ticks_add(time.ticks_ms(), wait_ms)
    while time.ticks_diff(deadline, time.ticks_ms()) > 0:
        line = uart.readline()
        if line and line.strip():
            lines.append(line.strip().decode())
            if lines[-1] in ('OK', 'ERROR'):
                break
    return '|'.join(lines)

print('off=' + command('AT', 300))
pwrkey.on()
time.sleep_ms(80)
pwrkey.off()
time.sleep_ms(300)
print('on=' + command('AT'))
print('echo_off=' + command('ATE0'))
print('cpin=' + command('AT+CPIN?'))
`;

test('simulator answers AT after PWRKEY', async () => {
  const modem = new Sim7020Simulator({ pwrkeyMinMs: 50, bootDelayMs: 100 });
  const pico = new SimulatedPico({ files: { 'main.py': script }, uart: modem });
  cleanups.push(async () => {
    await pico.stop();
    await modem.close();
  });

  await pico.boot();
  const result = await pico.runUntil({ serialMatch: /^cpin=/ }, { timeoutMs: 10_000 });

  expect(result.reason).toBe('matched');
  const lines = pico.serialLines();
  expect(lines).toContain('off=');
  expect(lines).toContain('on=AT|OK');
  expect(lines).toContain('echo_off=ATE0|OK');
  expect(lines).toContain('cpin=+CPIN: READY|OK');
});
