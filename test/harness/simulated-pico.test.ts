// SimulatedPico on real MicroPython (WebAssembly) with tiny Python scripts and a
// loopback UART peer. Timing checks have strict lower bounds (the semantics) and
// loose upper bounds, so a loaded CI machine does not make them flaky.

import { afterEach, describe, expect, test } from 'vitest';
import { HeapBudgetError, SimulatedPico, type SimulatedPicoOptions } from '../../tools/harness/simulated-pico.ts';
import { LoopbackPeer } from './loopback-peer.ts';

const picos: SimulatedPico[] = [];

function makePico(files: Record<string, string>, options: Partial<SimulatedPicoOptions> = {}): {
  pico: SimulatedPico;
  peer: LoopbackPeer;
} {
  const peer = new LoopbackPeer();
  const pico = new SimulatedPico({ files, uart: peer, ...options });
  picos.push(pico);
  return { pico, peer };
}

/** Value of the last serial line `key=value` printed by a script. */
function printed(pico: SimulatedPico, key: string): string | undefined {
  const prefix = key + '=';
  return pico.serialLines().reverse().find((line) => line.startsWith(prefix))?.slice(prefix.length);
}

afterEach(async () => {
  await Promise.all(picos.splice(0).map((pico) => pico.stop()));
});

describe('uart', () => {
  const script = `
import machine, time
uart = machine.UART(0, baudrate=115200, tx=machine.Pin(0), rx=machine.Pin(1), timeout=150, timeout_char=10)
start = time.ticks_ms()
print('empty=%r' % (uart.read(4),))
print('empty_ms=%d' % time.ticks_diff(time.ticks_ms(), start))
# The clock starts before the write: the echo timer runs from the write, and a
# descheduled worker could read the clock late after it.
start = time.ticks_ms()
uart.write(b'AT\\r\\n')
print('line=%r' % (uart.readline(),))
print('line_ms=%d' % time.ticks_diff(time.ticks_ms(), start))
uart.write('OK\\r\\n')
time.sleep_ms(60)
print('any=%d' % uart.any())
buf = bytearray(8)
print('readinto=%r' % (uart.readinto(buf),))
print('buf=%r' % (bytes(buf[:4]),))
print('after=%r' % (uart.read(),))
`;

  test('read times out with None', async () => {
    const { pico } = makePico({ 'main.py': script });
    await pico.boot();
    const result = await pico.runUntil({ serialMatch: /^after=/ }, { timeoutMs: 10_000 });
    expect(result.reason).toBe('matched');
    expect(printed(pico, 'empty')).toBe('None');
    expect(Number(printed(pico, 'empty_ms'))).toBeGreaterThanOrEqual(150);
    expect(Number(printed(pico, 'empty_ms'))).toBeLessThan(600);
  });

  test('readline blocks until echo', async () => {
    const { pico, peer } = makePico({ 'main.py': script });
    await pico.boot();
    await pico.runUntil({ serialMatch: /^after=/ }, { timeoutMs: 10_000 });
    expect(peer.receivedText()).toBe('AT\r\nOK\r\n');
    expect(printed(pico, 'line')).toBe("b'AT\\r\\n'");
    // The peer echoes after 20 ms; 4 bytes at 115200 baud take about 0.35 ms each way.
    expect(Number(printed(pico, 'line_ms'))).toBeGreaterThanOrEqual(19);
    expect(Number(printed(pico, 'line_ms'))).toBeLessThan(300);
  });

  test('any and readinto see echoed bytes', async () => {
    const { pico } = makePico({ 'main.py': script });
    await pico.boot();
    await pico.runUntil({ serialMatch: /^after=/ }, { timeoutMs: 10_000 });
    expect(printed(pico, 'any')).toBe('4');
    expect(printed(pico, 'readinto')).toBe('4');
    expect(printed(pico, 'buf')).toBe("b'OK\\r\\n'");
    expect(printed(pico, 'after')).toBe('None');
  });

  test('ring buffer overrun drops bytes', async () => {
    const { pico, peer } = makePico({
      'main.py': `
import machine, time
uart = machine.UART(0, baudrate=115200, timeout=50, rxbuf=64)
print('ready=1')
time.sleep_ms(300)
data = uart.read()
print('got=%d' % len(data))
`,
    });
    await pico.boot();
    await pico.runUntil({ serialMatch: /^ready=/ }, { timeoutMs: 10_000 });
    peer.send('x'.repeat(500));
    await pico.runUntil({ serialMatch: /^got=/ }, { timeoutMs: 10_000 });
    // 64 bytes of ring buffer plus the 32-byte hardware FIFO survive.
    expect(printed(pico, 'got')).toBe('96');
    expect(pico.uartStats.overrunBytes).toBe(404);
  });
});

describe('pins', () => {
  test('LED blink events timed', async () => {
    const { pico, peer } = makePico({
      'main.py': `
import machine, time
led = machine.Pin(25, machine.Pin.OUT)
for _ in range(3):
    led.on()
    time.sleep_ms(100)
    led.off()
    time.sleep_ms(100)
machine.Pin(14, machine.Pin.OUT).value(1)
print('done=1')
`,
    });
    await pico.boot();
    await pico.runUntil({ serialMatch: /^done=/ }, { timeoutMs: 10_000 });
    expect(pico.ledEvents.map((event) => event.value)).toEqual([1, 0, 1, 0, 1, 0]);
    const gaps = pico.ledEvents.slice(1).map((event, i) => event.atMs - pico.ledEvents[i]!.atMs);
    for (const gap of gaps) {
      expect(gap).toBeGreaterThanOrEqual(99);
      expect(gap).toBeLessThan(250);
    }
    expect(peer.pins).toContainEqual({ pin: 14, value: 1 });
  });

  test('clockScale shortens sleeps only', async () => {
    const { pico } = makePico(
      {
        'main.py': `
import machine, time
led = machine.Pin('LED', machine.Pin.OUT)
start = time.ticks_ms()
for _ in range(4):
    led.toggle()
    time.sleep(0.5)
print('board_ms=%d' % time.ticks_diff(time.ticks_ms(), start))
`,
      },
      { clockScale: 20 },
    );
    await pico.boot();
    const result = await pico.runUntil({ serialMatch: /^board_ms=/ }, { timeoutMs: 10_000 });
    expect(Number(printed(pico, 'board_ms'))).toBeGreaterThanOrEqual(2000);
    expect(result.elapsedMs).toBeLessThan(1500);
    expect(pico.ledEvents[1]!.atMs - pico.ledEvents[0]!.atMs).toBeGreaterThanOrEqual(500);
  });
});

describe('filesystem', () => {
  test('unflushed write lost on power cut', async () => {
    const { pico, peer } = makePico({
      'main.py': `
f = open('log.txt', 'w')
f.write('lost')
print('written=1')
import time
time.sleep(10)
`,
    });
    await pico.boot();
    await pico.runUntil({ serialMatch: /^written=/ }, { timeoutMs: 10_000 });
    pico.powerCut();
    expect(peer.powerCuts).toBe(1);
    // littlefs creates the file's entry at open; its data is not committed yet.
    expect(pico.readText('/log.txt')).toBe('');
  });

  test('flush and close make data durable', async () => {
    const { pico } = makePico({
      'main.py': `
f = open('a.txt', 'w')
f.write('flushed')
f.flush()
f.write(' and more')
with open('b.txt', 'wb') as g:
    g.write(b'closed')
print('written=1')
import time
time.sleep(10)
`,
    });
    await pico.boot();
    await pico.runUntil({ serialMatch: /^written=/ }, { timeoutMs: 10_000 });
    pico.powerCut();
    expect(pico.readText('/a.txt')).toBe('flushed');
    expect(pico.readText('/b.txt')).toBe('closed');
  });

  test('file API round trip', async () => {
    const { pico } = makePico({
      'main.py': `
import os, json
os.mkdir('data')
with open('data/c.json', 'w') as f:
    json.dump({'v': 3}, f)
with open('data/c.json') as f:
    print('json=%r' % (json.load(f),))
with open('data/lines.txt', 'w') as f:
    f.write('one\\ntwo\\n')
with open('data/lines.txt') as f:
    print('lines=%r' % ([line for line in f],))
with open('data/lines.txt', 'rb') as f:
    f.seek(4)
    print('seek=%r,%d' % (f.read(3), f.tell()))
with open('data/lines.txt', 'a') as f:
    f.write('three')
print('stat=%d' % os.stat('data/lines.txt')[6])
print('list=%r' % (sorted(os.listdir('data')),))
os.remove('data/c.json')
try:
    open('data/c.json')
except OSError as e:
    print('errno=%d' % e.errno)
print('statvfs=%d' % os.statvfs('/')[0])
`,
    });
    await pico.boot();
    const result = await pico.runUntil({ serialMatch: /^statvfs=/ }, { timeoutMs: 10_000 });
    expect(result.reason).toBe('matched');
    expect(printed(pico, 'json')).toBe("{'v': 3}");
    expect(printed(pico, 'lines')).toBe("['one\\n', 'two\\n']");
    expect(printed(pico, 'seek')).toBe("b'two',7");
    expect(printed(pico, 'stat')).toBe('13');
    expect(printed(pico, 'list')).toBe("['c.json', 'lines.txt']");
    expect(printed(pico, 'errno')).toBe('2');
    expect(printed(pico, 'statvfs')).toBe('4096');
    expect(pico.readText('/data/lines.txt')).toBe('one\ntwo\nthree');
  });

  test('import from flash and slot folder', async () => {
    const { pico } = makePico({
      'main.py': `
import sys
import helper
sys.path.insert(0, '/slots/a')
import app
print('values=%d,%d' % (helper.VALUE, app.run()))
`,
      'helper.py': 'VALUE = 42\n',
      'slots/a/app.py': 'def run():\n    return 7\n',
    });
    await pico.boot();
    await pico.runUntil({ serialMatch: /^values=/ }, { timeoutMs: 10_000 });
    expect(printed(pico, 'values')).toBe('42,7');
  });

  // Writes a new state through a temporary file and one rename.
  const updateScript = `
import os
def state():
    try:
        with open('state.txt') as f:
            return f.read()
    except OSError:
        return 'missing'
print('state=' + state())
if state() != 'v2':
    with open('state.tmp', 'w') as f:
        f.write('v2')
    os.rename('state.tmp', 'state.txt')
print('final=' + state())
`;

  test('power cut at every operation', async () => {
    const { pico: probe } = makePico({ 'main.py': updateScript, 'state.txt': 'v1' });
    await probe.boot();
    await probe.runUntil({ serialMatch: /^final=/ }, { timeoutMs: 10_000 });
    const ops = probe.fsOps.map((op) => op.op);
    expect(ops).toEqual(['open', 'write', 'close', 'rename']);

    for (let cutAt = 1; cutAt <= ops.length; cutAt++) {
      const { pico } = makePico({ 'main.py': updateScript, 'state.txt': 'v1' }, { powerCutAtOp: cutAt });
      await pico.boot();
      const cut = await pico.runUntil({ serialMatch: /^final=/ }, { timeoutMs: 10_000 });
      expect(cut.reason, `cut at ${cutAt}`).toBe('power-cut');
      expect(pico.fsOps.length, `cut at ${cutAt}`).toBe(cutAt - 1);
      expect(pico.readText('/state.txt'), `cut at ${cutAt}`).toBe('v1');

      await pico.boot();
      const again = await pico.runUntil({ serialMatch: /^final=/ }, { timeoutMs: 10_000 });
      expect(again.reason, `cut at ${cutAt}`).toBe('matched');
      expect(printed(pico, 'final'), `cut at ${cutAt}`).toBe('v2');
      expect(pico.readText('/state.txt'), `cut at ${cutAt}`).toBe('v2');
    }
  });
});

describe('resets', () => {
  test('machine.reset keeps files', async () => {
    const { pico } = makePico({
      'main.py': `
import machine
try:
    with open('boots.txt') as f:
        count = int(f.read())
except OSError:
    count = 0
count += 1
with open('boots.txt', 'w') as f:
    f.write(str(count))
print('boot=%d cause=%d' % (count, machine.reset_cause()))
if count < 3:
    machine.reset()
`,
    });
    await pico.boot();
    const result = await pico.runUntil({ serialMatch: /^boot=3/ }, { timeoutMs: 15_000 });
    expect(result.reason).toBe('matched');
    expect(pico.resets).toBe(2);
    expect(pico.resetLog.map((reset) => reset.cause)).toEqual(['machine.reset', 'machine.reset']);
    expect(pico.serialLines(1)).toContain('boot=1 cause=1');
    expect(pico.serialLines(3)).toContain('boot=3 cause=3');
    expect(pico.readText('/boots.txt')).toBe('3');
  });

  test('unfed watchdog resets board', async () => {
    const { pico } = makePico({
      'main.py': `
import machine, time
wdt = machine.WDT(timeout=300)
for _ in range(4):
    time.sleep_ms(100)
    wdt.feed()
print('starving=1')
while True:
    time.sleep_ms(50)
`,
    });
    await pico.boot();
    await pico.runUntil({ serialMatch: /^starving=/ }, { timeoutMs: 10_000 });
    const starvedAtMs = pico.nowMs();
    const result = await pico.runUntil({ resets: 1 }, { timeoutMs: 10_000 });
    expect(result.reason).toBe('matched');
    expect(pico.resetLog[0]!.cause).toBe('watchdog');
    expect(pico.resetLog[0]!.atMs - starvedAtMs).toBeGreaterThanOrEqual(250);
    expect(pico.resetLog[0]!.atMs - starvedAtMs).toBeLessThan(700);
  });

  test('watchdog over rp2 maximum rejected', async () => {
    const { pico } = makePico({ 'main.py': 'import machine\nmachine.WDT(timeout=9000)\n' });
    await pico.boot();
    const result = await pico.runUntil({ resets: 1 }, { timeoutMs: 10_000 });
    expect(result.reason).toBe('repl');
    expect(pico.serialLines().join('\n')).toMatch(/ValueError: timeout 9000 ms is longer than the rp2 maximum 8388 ms/);
  });

  test('exception prints traceback and stops', async () => {
    const { pico } = makePico({ 'main.py': 'def f():\n    raise ValueError("boom")\nf()\n' });
    await pico.boot();
    const result = await pico.runUntil({ serialMatch: /never printed/ }, { timeoutMs: 10_000 });
    expect(result.reason).toBe('repl');
    expect(pico.state).toBe('repl');
    expect(pico.serialLines().slice(0, 4)).toEqual([
      'Traceback (most recent call last):',
      '  File "main.py", line 3, in <module>',
      '  File "main.py", line 2, in f',
      'ValueError: boom',
    ]);
  });
});

describe('heap', () => {
  test('high-water mark reported', async () => {
    const { pico } = makePico({
      'main.py': `
import time
keep = bytearray(40000)
time.sleep_ms(1)
print('done=1')
`,
    });
    await pico.boot();
    await pico.runUntil({ serialMatch: /^done=/ }, { timeoutMs: 10_000 });
    expect(pico.heapHighWater).toBeGreaterThanOrEqual(40000);
    expect(pico.heapHighWater).toBeLessThan(60000);
  });

  test('gc figures relative to budget', async () => {
    const { pico } = makePico({
      'main.py': `
import gc
keep = bytearray(30000)
print('gc=%d,%d' % (gc.mem_alloc(), gc.mem_free()))
`,
    });
    await pico.boot();
    await pico.runUntil({ serialMatch: /^gc=/ }, { timeoutMs: 10_000 });
    const [allocated, free] = printed(pico, 'gc')!.split(',').map(Number);
    expect(allocated).toBeGreaterThanOrEqual(30000);
    expect(allocated).toBeLessThan(40000);
    // mem_free() samples the heap a moment after mem_alloc(), so the sum may fall a few bytes short.
    expect(allocated! + free!).toBeLessThanOrEqual(190 * 1024);
    expect(allocated! + free!).toBeGreaterThan(190 * 1024 - 256);
  });

  test('budget exceeded fails run', async () => {
    const { pico } = makePico(
      {
        'main.py': `
import time
keep = []
for _ in range(10):
    keep.append(bytearray(20000))
    time.sleep_ms(1)
print('survived=1')
`,
      },
      { heapBudgetBytes: 100 * 1024 },
    );
    await pico.boot();
    const run = pico.runUntil({ serialMatch: /^survived=/ }, { timeoutMs: 10_000 });
    await expect(run).rejects.toBeInstanceOf(HeapBudgetError);
    await expect(run).rejects.toThrow(/firmware heap \d+ bytes exceeds the budget of 102400 bytes/);
    expect(pico.serialLines()).not.toContain('survived=1');
    expect(pico.state).toBe('failed');
  });
});
