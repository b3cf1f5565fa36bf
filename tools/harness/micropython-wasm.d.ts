// Types for the parts of @micropython/micropython-webassembly-pyscript 1.27 that
// the harness uses (the package ships no declarations).

declare module '@micropython/micropython-webassembly-pyscript' {
  export interface MicroPythonOptions {
    /** Python stack size in words. */
    pystack?: number;
    /** Initial GC heap in bytes (this build grows the heap past it on demand). */
    heapsize?: number;
    stdout?: (line: string) => void;
    stderr?: (line: string) => void;
    /** When true (the default), stdout and stderr get whole lines without the newline. */
    linebuffer?: boolean;
  }

  export interface EmscriptenModule {
    getValue(pointer: number, type: 'i8'): number;
    setValue(pointer: number, value: number, type: 'i8'): void;
    /** C malloc of the WebAssembly memory (outside MicroPython's GC heap). */
    _malloc(bytes: number): number;
  }

  /** The Emscripten filesystem that the interpreter mounts at / when it starts. */
  export interface EmscriptenFS {
    mkdir(path: string): void;
    writeFile(path: string, data: string | Uint8Array): void;
  }

  export interface MicroPython {
    _module: EmscriptenModule;
    FS: EmscriptenFS;
    runPython(code: string): unknown;
    registerJsModule(name: string, module: object): void;
  }

  export function loadMicroPython(options?: MicroPythonOptions): Promise<MicroPython>;
}
