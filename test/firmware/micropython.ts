// Runs firmware modules on the real MicroPython 1.27 WebAssembly build: the files
// of firmware/ are copied into the interpreter's filesystem root, as on a Pico.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const FIRMWARE_DIR = fileURLToPath(new URL('../../firmware/', import.meta.url));

interface EmscriptenFs {
  writeFile(path: string, data: string | Uint8Array): void;
  readFile(path: string, options?: { encoding: 'binary' }): Uint8Array;
  mkdir(path: string): void;
}

interface MicroPythonModule {
  loadMicroPython(options: { stdout: (line: string) => void; stderr: (line: string) => void }): Promise<{
    runPython(code: string): unknown;
    FS: EmscriptenFs;
  }>;
}

export interface Interpreter {
  /** Runs code and returns what it printed; a Python exception rejects with its traceback. */
  run(code: string): string;
  /** Runs code that prints one JSON document and returns it parsed. */
  json<T = unknown>(code: string): T;
  fs: EmscriptenFs;
}

// A computed specifier keeps TypeScript from needing type declarations for the
// package, which ships none.
const PACKAGE: string = '@micropython/micropython-webassembly-pyscript';

/** Starts a fresh interpreter with every firmware/*.py file in its root folder. */
export async function startFirmware(extraFiles: Record<string, string> = {}): Promise<Interpreter> {
  const { loadMicroPython } = (await import(PACKAGE)) as MicroPythonModule;
  let output: string[] = [];
  const mp = await loadMicroPython({
    stdout: (line) => output.push(line),
    stderr: (line) => output.push(line),
  });
  for (const name of readdirSync(FIRMWARE_DIR)) {
    if (name.endsWith('.py') && name !== 'main.py') {
      mp.FS.writeFile(`/${name}`, readFileSync(FIRMWARE_DIR + name));
    }
  }
  for (const [path, text] of Object.entries(extraFiles)) mp.FS.writeFile(path, text);
  const run = (code: string): string => {
    output = [];
    try {
      mp.runPython(code);
    } catch (err) {
      throw new Error(`${String(err)}\n--- output ---\n${output.join('\n')}`);
    }
    return output.join('\n');
  };
  return {
    run,
    json: <T>(code: string): T => {
      const lines = run(code).trim().split('\n');
      return JSON.parse(lines[lines.length - 1] ?? 'null') as T;
    },
    fs: mp.FS,
  };
}

/** Python literal of bytes, for passing test vectors into the interpreter. */
export function pyBytes(data: Uint8Array): string {
  return `bytes.fromhex('${Buffer.from(data).toString('hex')}')`;
}
