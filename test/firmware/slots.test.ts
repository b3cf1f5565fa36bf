// firmware/slots.py on real MicroPython: the A/B state file and its safe fallbacks.
import { beforeEach, describe, expect, test } from 'vitest';
import { startFirmware, type Interpreter } from './micropython.ts';

let mp: Interpreter;

interface State {
  active: string;
  versions: Record<string, string | null>;
  trial: boolean;
  boots: number;
  rejected: string[];
}

const FACTORY: State = { active: 'a', versions: { a: '1.0.0', b: null }, trial: false, boots: 0, rejected: [] };

beforeEach(async () => {
  // A fresh interpreter per test: each starts from an empty filesystem.
  mp = await startFirmware();
  mp.run(`
import slots, json, os
def install(slot):
    slots.clear(slot)
    with open(slots.slot_dir(slot) + "/app.py", "w") as f:
        f.write("def step(led): pass\\n")
def state():
    print(json.dumps(slots.load()))
`);
});

function loadState(): State {
  return mp.json<State>('state()');
}

describe('slots.load', () => {
  test('missing file gives factory state', () => {
    mp.run('install("a")');
    expect(loadState()).toEqual(FACTORY);
  });

  test('corrupt file gives factory state', () => {
    mp.run('install("a")');
    mp.fs.writeFile('/ota_state.json', '{"active": "b", "vers');
    expect(loadState()).toEqual(FACTORY);
  });

  test('invalid fields give factory state', () => {
    mp.run('install("a"); install("b")');
    for (const text of ['[]', '{"active": "c", "versions": {}, "trial": false, "boots": 0}',
      '{"active": "b", "versions": {"a": 1}, "trial": false, "boots": 0}',
      '{"active": "b", "versions": {"a": "1.0.0"}, "trial": "yes", "boots": 0}',
      '{"active": "b", "versions": {"a": "1.0.0"}, "trial": true, "boots": -1}']) {
      mp.fs.writeFile('/ota_state.json', text);
      expect(loadState(), text).toEqual(FACTORY);
    }
  });

  test('active slot without app falls back', () => {
    mp.run('install("a"); slots.clear("b")');
    mp.fs.writeFile('/ota_state.json', JSON.stringify({ ...FACTORY, active: 'b', versions: { a: '1.0.0', b: '2.0.0' } }));
    expect(loadState().active).toBe('a');
  });

  test('empty slot a falls back to b', () => {
    mp.run('install("b")');
    expect(loadState()).toMatchObject({ active: 'b', versions: { a: null, b: '1.0.0' } });
  });

  test('older file without rejected list loads', () => {
    mp.run('install("a"); install("b")');
    mp.fs.writeFile('/ota_state.json', '{"active": "b", "versions": {"a": "1.0.0", "b": "2.0.0"}, "trial": true, "boots": 2}');
    expect(loadState()).toEqual({ active: 'b', versions: { a: '1.0.0', b: '2.0.0' }, trial: true, boots: 2, rejected: [] });
  });
});

describe('slots.save', () => {
  test('round trip leaves no temporary file', () => {
    mp.run('install("a"); install("b")');
    const out = mp.run(`
slots.save(slots.begin_trial(slots.load(), "b", "2.0.0"))
print("files", sorted(os.listdir("/")))
state()
`).trim().split('\n');
    const files = out.find((line) => line.startsWith('files'));
    expect(files).toContain('ota_state.json');
    expect(files).not.toContain('ota_state.tmp');
    expect(JSON.parse(out[out.length - 1]!)).toEqual({ active: 'b', versions: { a: '1.0.0', b: '2.0.0' }, trial: true, boots: 0, rejected: [] });
  });

  test('stale temporary file is ignored', () => {
    // A power cut after writing the temporary file but before the rename.
    mp.run('install("a"); install("b"); slots.save(slots.load())');
    mp.fs.writeFile('/ota_state.tmp', '{"active": "b", "half written');
    expect(loadState()).toEqual(FACTORY);
  });
});

describe('slots transitions', () => {
  test('rollback rejects trial version', () => {
    mp.run('install("a"); install("b")');
    const state = mp.json<State>(`
s = slots.rolled_back(slots.begin_trial(slots.load(), "b", "2.0.0"))
print(json.dumps(s))
`);
    expect(state).toEqual({ active: 'a', versions: { a: '1.0.0', b: '2.0.0' }, trial: false, boots: 0, rejected: ['2.0.0'] });
  });

  test('rejected list keeps newest four', () => {
    const state = mp.json<State>(`
s = slots.default_state()
for v in ("1", "2", "3", "4", "5", "3"):
    s = slots.rejecting(s, v)
print(json.dumps(s))
`);
    expect(state.rejected).toEqual(['2', '4', '5', '3']);
  });

  test('clear removes nested files', () => {
    const out = mp.run(`
install("b")
os.mkdir("/app_slots/b/lib"); os.mkdir("/app_slots/b/lib/x")
open("/app_slots/b/lib/x/y.py", "w").close()
slots.clear("b")
print(os.listdir("/app_slots/b"))
`);
    expect(out.trim()).toBe('[]');
  });
});
