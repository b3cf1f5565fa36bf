// Flash filesystem of the simulated Pico, held on the main thread so that it
// survives reboots and power cuts. It models the durability of the rp2 port's
// littlefs: an open file's new content becomes durable only on flush() or
// close() (littlefs commits a file on sync), a file created by open() exists
// (empty) at once, and mkdir, rmdir, remove and rename are atomic. Every mutating
// operation gets a sequence number, so a test can cut power right before any one.

/** MicroPython errno values (py/mperrno.h). */
export const Errno = {
  ENOENT: 2,
  EBADF: 9,
  EEXIST: 17,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENOSPC: 28,
  ENOTEMPTY: 39,
} as const;

/** Directory and regular-file type bits of stat()'s st_mode and ilistdir(). */
export const S_IFDIR = 0x4000;
export const S_IFREG = 0x8000;

/** littlefs block size on the rp2 port, in bytes. */
export const BLOCK_SIZE_BYTES = 4096;
/** rp2 Pico (2 MB flash): 848 KiB filesystem by default. */
export const DEFAULT_CAPACITY_BYTES = 848 * 1024;

export type FsOpKind = 'open' | 'write' | 'flush' | 'close' | 'rename' | 'remove' | 'mkdir' | 'rmdir';

/** One mutating filesystem operation, in the order the firmware issued it. */
export interface FsOp {
  /** 1-based, counted over the board's whole life (all boots); an operation cut by power gets no number. */
  seq: number;
  boot: number;
  op: FsOpKind;
  path: string;
  /** Target of a rename. */
  toPath?: string;
  /** Bytes written by a write. */
  bytes?: number;
  /** Open mode of an open. */
  mode?: string;
}

/** Thrown by FlashFs when the operation with the cut sequence number is reached. */
export class PowerCutReached extends Error {
  constructor(readonly op: FsOp) {
    super(`power cut before filesystem operation ${op.seq} (${op.op} ${op.path})`);
  }
}

interface Handle {
  path: string;
  readable: boolean;
  writable: boolean;
  append: boolean;
  /**
   * Content visible through this handle: the durable content at open plus its own writes.
   * NOTE: each handle keeps its own snapshot; whether littlefs shows one handle's synced data
   * to another open handle of the same file is not modelled.
   */
  content: Uint8Array;
  size: number;
  position: number;
}

export class FlashError extends Error {
  constructor(readonly errno: number, message: string) {
    super(message);
  }
}

/** Normalizes an absolute path: no '.', '..', repeated or trailing slashes. */
export function normalizePath(path: string): string {
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return '/' + parts.join('/');
}

function parentOf(path: string): string {
  const index = path.lastIndexOf('/');
  return index <= 0 ? '/' : path.slice(0, index);
}

export class FlashFs {
  private readonly files = new Map<string, Uint8Array>();
  private readonly dirs = new Set<string>(['/']);
  private handles = new Map<number, Handle>();
  private nextHandle = 1;
  readonly ops: FsOp[] = [];
  /** The operation with this sequence number is not applied: power is cut first. */
  powerCutAtOp: number | undefined;
  boot = 0;

  constructor(readonly capacityBytes = DEFAULT_CAPACITY_BYTES) {}

  /** Adds a file outside of any counted operation (the initial flash image). */
  seed(path: string, content: Uint8Array): void {
    const target = normalizePath(path);
    let dir = parentOf(target);
    const missing: string[] = [];
    while (!this.dirs.has(dir)) {
      missing.push(dir);
      dir = parentOf(dir);
    }
    for (const created of missing.reverse()) this.dirs.add(created);
    this.files.set(target, content.slice());
  }

  /** Forgets open files: their unsynced data is lost, as on a reset or power cut. */
  dropHandles(): void {
    this.handles = new Map();
  }

  snapshot(): Record<string, Uint8Array> {
    const out: Record<string, Uint8Array> = {};
    for (const [path, content] of [...this.files].sort(([a], [b]) => (a < b ? -1 : 1))) {
      out[path] = content.slice();
    }
    return out;
  }

  directories(): string[] {
    return [...this.dirs].sort();
  }

  readFile(path: string): Uint8Array | undefined {
    return this.files.get(normalizePath(path))?.slice();
  }

  private record(op: Omit<FsOp, 'seq' | 'boot'>): void {
    const entry: FsOp = { seq: this.ops.length + 1, boot: this.boot, ...op };
    if (entry.seq === this.powerCutAtOp) {
      // One cut per setting: the next power-on runs on, and the next applied operation takes this number.
      this.powerCutAtOp = undefined;
      throw new PowerCutReached(entry);
    }
    this.ops.push(entry);
  }

  private handle(id: number): Handle {
    const handle = this.handles.get(id);
    if (handle === undefined) throw new FlashError(Errno.EBADF, `file handle ${id} is not open`);
    return handle;
  }

  private usedBytes(): number {
    let total = 0;
    for (const content of this.files.values()) total += content.length;
    for (const handle of this.handles.values()) if (handle.writable) total += handle.size;
    return total;
  }

  private requireDir(path: string): void {
    if (this.files.has(path)) throw new FlashError(Errno.ENOTDIR, `${path} is a file, not a directory`);
    if (!this.dirs.has(path)) throw new FlashError(Errno.ENOENT, `directory ${path} does not exist`);
  }

  /** Opens a file with a Python mode string (r, w, a, x, each with optional b and +). */
  open(rawPath: string, mode: string): number {
    const path = normalizePath(rawPath);
    const kind = mode.replace(/[bt]/g, '');
    const plus = kind.includes('+');
    const base = kind.replace('+', '');
    if (!['r', 'w', 'a', 'x'].includes(base)) {
      throw new FlashError(Errno.EINVAL, `open mode ${JSON.stringify(mode)} is invalid: use r, w, a or x`);
    }

    if (this.dirs.has(path)) throw new FlashError(Errno.EISDIR, `${path} is a directory`);
    const existing = this.files.get(path);
    const writable = base !== 'r' || plus;
    if (base === 'r' && existing === undefined) throw new FlashError(Errno.ENOENT, `${path} does not exist`);
    if (base === 'x' && existing !== undefined) throw new FlashError(Errno.EEXIST, `${path} exists`);

    if (writable) {
      this.requireDir(parentOf(path));
      this.record({ op: 'open', path, mode });
      // littlefs writes the directory entry of a new file when it is opened.
      if (existing === undefined) this.files.set(path, new Uint8Array(0));
    }

    const start = base === 'w' || base === 'x' ? new Uint8Array(0) : (existing ?? new Uint8Array(0));
    const id = this.nextHandle++;
    this.handles.set(id, {
      path,
      readable: base === 'r' || plus,
      writable,
      append: base === 'a',
      content: start.slice(),
      size: start.length,
      position: 0,
    });
    return id;
  }

  read(id: number, maxBytes: number, untilNewline = false): Uint8Array {
    const handle = this.handle(id);
    if (!handle.readable) throw new FlashError(Errno.EBADF, `${handle.path} is not open for reading`);
    let end = Math.min(handle.size, handle.position + maxBytes);
    if (untilNewline) {
      const newline = handle.content.subarray(handle.position, end).indexOf(0x0a);
      if (newline >= 0) end = handle.position + newline + 1;
    }
    const bytes = handle.content.slice(handle.position, end);
    handle.position = end;
    return bytes;
  }

  write(id: number, data: Uint8Array): number {
    const handle = this.handle(id);
    if (!handle.writable) throw new FlashError(Errno.EBADF, `${handle.path} is not open for writing`);
    const start = handle.append ? handle.size : handle.position;
    const end = start + data.length;
    const growth = Math.max(0, end - handle.size);
    if (this.usedBytes() + growth > this.capacityBytes) {
      throw new FlashError(Errno.ENOSPC, `no space left for ${data.length} bytes in ${handle.path}`);
    }
    this.record({ op: 'write', path: handle.path, bytes: data.length });
    if (end > handle.content.length) {
      const grown = new Uint8Array(Math.max(end, handle.content.length * 2));
      grown.set(handle.content.subarray(0, handle.size));
      handle.content = grown;
    }
    handle.content.set(data, start);
    handle.size = Math.max(handle.size, end);
    handle.position = end;
    return data.length;
  }

  seek(id: number, offset: number, whence: number): number {
    const handle = this.handle(id);
    let base: number;
    switch (whence) {
      case 0:
        base = 0;
        break;
      case 1:
        base = handle.position;
        break;
      case 2:
        base = handle.size;
        break;
      default:
        throw new FlashError(Errno.EINVAL, `seek whence ${whence} is invalid: use 0, 1 or 2`);
    }
    const position = base + offset;
    if (!(position >= 0)) {
      throw new FlashError(Errno.EINVAL, `seek to offset ${offset} from whence ${whence} is invalid`);
    }
    handle.position = position;
    return position;
  }

  private sync(handle: Handle): void {
    this.files.set(handle.path, handle.content.slice(0, handle.size));
  }

  flush(id: number): void {
    const handle = this.handle(id);
    if (!handle.writable) return;
    this.record({ op: 'flush', path: handle.path });
    this.sync(handle);
  }

  close(id: number): void {
    const handle = this.handle(id);
    if (handle.writable) {
      this.record({ op: 'close', path: handle.path });
      this.sync(handle);
    }
    this.handles.delete(id);
  }

  stat(rawPath: string): number[] {
    const path = normalizePath(rawPath);
    if (this.dirs.has(path)) return [S_IFDIR, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    const content = this.files.get(path);
    if (content === undefined) throw new FlashError(Errno.ENOENT, `${path} does not exist`);
    return [S_IFREG, 0, 0, 0, 0, 0, content.length, 0, 0, 0];
  }

  /** Entries of a directory as [name, type, size]. */
  list(rawPath: string): Array<[string, number, number]> {
    const path = normalizePath(rawPath);
    this.requireDir(path);
    const prefix = path === '/' ? '/' : path + '/';
    const entries: Array<[string, number, number]> = [];
    for (const dir of this.dirs) {
      if (dir !== path && parentOf(dir) === path) entries.push([dir.slice(prefix.length), S_IFDIR, 0]);
    }
    for (const [file, content] of this.files) {
      if (parentOf(file) === path) entries.push([file.slice(prefix.length), S_IFREG, content.length]);
    }
    return entries.sort(([a], [b]) => (a < b ? -1 : 1));
  }

  mkdir(rawPath: string): void {
    const path = normalizePath(rawPath);
    if (this.dirs.has(path) || this.files.has(path)) throw new FlashError(Errno.EEXIST, `${path} exists`);
    this.requireDir(parentOf(path));
    this.record({ op: 'mkdir', path });
    this.dirs.add(path);
  }

  rmdir(rawPath: string): void {
    const path = normalizePath(rawPath);
    this.requireDir(path);
    if (path === '/') throw new FlashError(Errno.EINVAL, 'the root directory cannot be removed');
    if (this.list(path).length > 0) throw new FlashError(Errno.ENOTEMPTY, `directory ${path} is not empty`);
    this.record({ op: 'rmdir', path });
    this.dirs.delete(path);
  }

  remove(rawPath: string): void {
    const path = normalizePath(rawPath);
    if (this.dirs.has(path)) throw new FlashError(Errno.EISDIR, `${path} is a directory: use rmdir`);
    if (!this.files.has(path)) throw new FlashError(Errno.ENOENT, `${path} does not exist`);
    this.record({ op: 'remove', path });
    this.files.delete(path);
  }

  /** Renames atomically; an existing target file (or empty directory) is replaced, as in littlefs. */
  rename(rawFrom: string, rawTo: string): void {
    const from = normalizePath(rawFrom);
    const to = normalizePath(rawTo);
    const isDir = this.dirs.has(from);
    if (!isDir && !this.files.has(from)) throw new FlashError(Errno.ENOENT, `${from} does not exist`);
    this.requireDir(parentOf(to));
    if (isDir) {
      if (to === from || to.startsWith(from + '/')) {
        throw new FlashError(Errno.EINVAL, `cannot move directory ${from} into itself (${to})`);
      }
      if (this.files.has(to)) throw new FlashError(Errno.ENOTDIR, `${to} is a file`);
      if (this.dirs.has(to) && this.list(to).length > 0) {
        throw new FlashError(Errno.ENOTEMPTY, `directory ${to} is not empty`);
      }
    } else if (this.dirs.has(to)) {
      throw new FlashError(Errno.EISDIR, `${to} is a directory`);
    }
    this.record({ op: 'rename', path: from, toPath: to });
    if (!isDir) {
      const content = this.files.get(from)!;
      this.files.delete(from);
      this.files.set(to, content);
      return;
    }
    const moveUnder = (path: string): string => to + path.slice(from.length);
    for (const dir of [...this.dirs]) {
      if (dir === from || dir.startsWith(from + '/')) {
        this.dirs.delete(dir);
        this.dirs.add(moveUnder(dir));
      }
    }
    for (const [path, content] of [...this.files]) {
      if (path.startsWith(from + '/')) {
        this.files.delete(path);
        this.files.set(moveUnder(path), content);
      }
    }
  }

  /** statvfs() tuple: block size, fragment size, blocks, free blocks, available blocks, 0... , max name length. */
  statvfs(): number[] {
    const blocks = Math.floor(this.capacityBytes / BLOCK_SIZE_BYTES);
    const free = Math.max(0, blocks - Math.ceil(this.usedBytes() / BLOCK_SIZE_BYTES));
    return [BLOCK_SIZE_BYTES, BLOCK_SIZE_BYTES, blocks, free, free, 0, 0, 0, 0, 255];
  }
}
