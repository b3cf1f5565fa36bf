// Every module the firmware imports must exist on a Pico: either one of the firmware's
// own files or a built-in module of the rp2 port.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { FIRMWARE_DIR, startFirmware } from './micropython.ts';

// Built-in modules of the rp2 port of MicroPython 1.2x that the firmware may use: the
// hardware API fixed for this project (docs/firmware.md), which the test harness also
// provides, so what passes in tests runs on the board. The rp2 port has more (array,
// random, re, rp2, select); adding one here also needs it in the harness and the docs.
const RP2_BUILTINS = new Set([
  'binascii', 'deflate', 'errno', 'gc', 'hashlib', 'io', 'json', 'machine', 'micropython', 'os', 'struct', 'sys', 'time',
]);

// Written by another part of the project and copied flat next to the firmware.
const SIBLING_FILES = new Set(['ed25519', 'sha512']);

const IMPORT_LINE = /^\s*(?:import\s+([\w.,\s]+?)|from\s+([\w.]+)\s+import\s+.+?)\s*(?:#.*)?$/;

/** Module names imported by a Python source, top level and inside functions. */
function importsOf(source: string): string[] {
  const names: string[] = [];
  for (const line of source.split('\n')) {
    const match = IMPORT_LINE.exec(line);
    if (!match) continue;
    if (match[2]) names.push(match[2]);
    else for (const part of match[1]!.split(',')) names.push(part.trim().split(/\s+as\s+/)[0]!);
  }
  return names;
}

function pythonFiles(folder: string): string[] {
  return readdirSync(folder, { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.py'))
    .map((name) => folder + name);
}

const ownModules = new Set(readdirSync(FIRMWARE_DIR).filter((name) => name.endsWith('.py')).map((name) => name.slice(0, -3)));

describe('firmware imports', () => {
  test('import scanner finds all forms', () => {
    expect(importsOf('import a, b as c\nfrom d import e\n    import f  # lazy\nx = "import g"')).toEqual(['a', 'b', 'd', 'f']);
  });

  for (const file of pythonFiles(FIRMWARE_DIR)) {
    const name = file.slice(FIRMWARE_DIR.length);
    test(`${name} imports only rp2 modules`, () => {
      const unknown = importsOf(readFileSync(file, 'utf8')).filter(
        (module) => !RP2_BUILTINS.has(module) && !ownModules.has(module) && !SIBLING_FILES.has(module),
      );
      expect(unknown).toEqual([]);
    });
  }
});

describe('firmware sources', () => {
  test('all compile on MicroPython', async () => {
    const mp = await startFirmware();
    for (const file of pythonFiles(FIRMWARE_DIR)) {
      const name = file.slice(FIRMWARE_DIR.length);
      const hex = readFileSync(file).toString('hex');
      const out = mp.run(`
try:
    compile(bytes.fromhex("${hex}").decode(), "${name}", "exec")
    print("ok")
except SyntaxError as err:
    print("SyntaxError:", err)
`);
      expect(out.trim(), name).toBe('ok');
    }
  });

  test('bring-up pads PDUs to size', async () => {
    const mp = await startFirmware({ '/machine.py': 'def unique_id():\n    return b"\\x01"\n' });
    const source = readFileSync(`${FIRMWARE_DIR}tools/bringup.py`, 'utf8').replace(/\nmain\(\)\n$/, '\n');
    mp.fs.writeFile('/bringup.py', source);
    const out = mp.run('import bringup\nprint([len(bringup.padded_get(n, 1)) for n in bringup.PDU_SIZES])');
    expect(out.trim()).toBe('[64, 128, 256, 384, 512, 640, 768, 1024]');
  });
});
