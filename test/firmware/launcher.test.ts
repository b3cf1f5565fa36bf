// firmware/main.py (the launcher) on real MicroPython with a fake `machine`: trial boot
// counting, rollback after unconfirmed boots or a failed import, slot isolation.
import { readFileSync } from 'node:fs';
import { beforeEach, describe, expect, test } from 'vitest';
import { FIRMWARE_DIR, startFirmware, type Interpreter } from './micropython.ts';
import { FAKE_MACHINE } from './fakes.ts';

// main.py ends by running the launcher forever; the tests load it without that line
// and drive Launcher.boot() themselves.
const LAUNCHER = readFileSync(`${FIRMWARE_DIR}main.py`, 'utf8').replace(/\nLauncher\(\)\.run\(\)\n$/, '\n');

let mp: Interpreter;

interface BootResult {
  reset: boolean;
  app: string | null;
  state: { active: string; trial: boolean; boots: number; rejected: string[] };
  pending: unknown[];
}

function boot(): BootResult {
  return mp.json<BootResult>(`
launcher = launcher_module.Launcher()
launcher.led.sos = lambda *args: None
reset = False
try:
    launcher.boot()
except machine.ResetCalled:
    reset = True
print(json.dumps({"reset": reset, "app": getattr(launcher.app, "NAME", None), "state": slots.load(),
                  "pending": reports.pending()}))
`);
}

function writeApp(slot: string, source: string): void {
  mp.run(`
slots.clear("${slot}")
with open("/app_slots/${slot}/app.py", "w") as f:
    f.write(${JSON.stringify(source)})
`);
}

beforeEach(async () => {
  mp = await startFirmware({ '/machine.py': FAKE_MACHINE, '/launcher_main.py': LAUNCHER });
  mp.fs.writeFile('/ota_config.json', JSON.stringify({ device_id: 'pico-test-2', trial_boots: 2 }));
  mp.run('import json, sys, machine, slots, reports\nimport launcher_main as launcher_module');
  writeApp('a', 'NAME = "a"\ndef step(led): pass\n');
  writeApp('b', 'NAME = "b"\ndef step(led): pass\n');
});

describe('Launcher.boot', () => {
  test('led_pin moves the status LED', () => {
    mp.fs.writeFile('/ota_config.json', JSON.stringify({ device_id: 'pico-test-2', led_pin: 'LED' }));
    boot();
    expect(mp.run('print(launcher.led.pin.number)').trim()).toBe('LED');
    mp.fs.writeFile('/ota_config.json', JSON.stringify({ device_id: 'pico-test-2' }));
    boot();
    expect(mp.run('print(launcher.led.pin.number)').trim()).toBe('25');
  });

  test('factory boot imports slot a', () => {
    const out = boot();
    expect(out).toMatchObject({ reset: false, app: 'a', state: { active: 'a', trial: false } });
  });

  test('trial boot counted', () => {
    mp.run('slots.save(slots.begin_trial(slots.load(), "b", "2.0.0"))');
    const out = boot();
    expect(out).toMatchObject({ reset: false, app: 'b', state: { active: 'b', trial: true, boots: 1 } });
  });

  test('rollback after trial_boots', () => {
    mp.run('slots.save(slots.begin_trial(slots.load(), "b", "2.0.0"))');
    expect(boot().reset).toBe(false);
    expect(boot().reset).toBe(false);
    const third = boot();
    expect(third.reset).toBe(true);
    expect(third.state).toMatchObject({ active: 'a', trial: false, rejected: ['2.0.0'] });
    expect(third.pending).toEqual([[3, '2.0.0', 'not confirmed after 2 boots']]);
    expect(boot()).toMatchObject({ reset: false, app: 'a' });
  });

  test('import error in trial rolls back', () => {
    writeApp('b', 'raise RuntimeError("broken release")\n');
    mp.run('slots.save(slots.begin_trial(slots.load(), "b", "2.0.0"))');
    const out = boot();
    expect(out.reset).toBe(true);
    expect(out.state).toMatchObject({ active: 'a', trial: false });
    expect(out.pending).toEqual([[3, '2.0.0', "import failed: RuntimeError('broken release',)"]]);
  });

  test('import error outside trial keeps running', () => {
    writeApp('a', 'import missing_module\n');
    const out = boot();
    expect(out).toMatchObject({ reset: false, app: null, state: { active: 'a' } });
  });

  test('switch drops the other slot modules', () => {
    writeApp('a', 'import helper\nNAME = "a" + helper.TAG\ndef step(led): pass\n');
    writeApp('b', 'import helper\nNAME = "b" + helper.TAG\ndef step(led): pass\n');
    mp.run(`
open("/app_slots/a/helper.py", "w").write("TAG = '-a'\\n")
open("/app_slots/b/helper.py", "w").write("TAG = '-b'\\n")
`);
    expect(boot().app).toBe('a-a');
    mp.run('slots.save(slots.begin_trial(slots.load(), "b", "2.0.0"))');
    expect(boot().app).toBe('b-b');
  });
});
