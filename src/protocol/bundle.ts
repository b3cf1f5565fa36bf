// Release bundle: the files of one release in a single stream that the device can
// unpack while reading, one small header at a time, with no index to seek to.
//
//   bundle = MAGIC (3 bytes: "PB", 0x01) entry* END
//   entry  = nameLength (uint8, 1..64) name (UTF-8) size (uint32 big-endian) data
//   END    = nameLength 0
//
// Names are relative paths inside the application slot, such as "app.py" or
// "lib/sensor.py". The firmware (firmware/bundle.py) reads the same format.

export const BUNDLE_MAGIC = Buffer.from([0x50, 0x42, 0x01]);
export const MAX_NAME_BYTES = 64;
const NAME_PATTERN = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

export interface BundleFile {
  name: string;
  data: Buffer;
}

/** Returns why a file name cannot go into a bundle, or null when it can. */
export function bundleNameProblem(name: string): string | null {
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes === 0 || bytes > MAX_NAME_BYTES) {
    return `file name "${name}" must be 1..${MAX_NAME_BYTES} bytes, got ${bytes}`;
  }
  if (!NAME_PATTERN.test(name)) {
    return `file name "${name}" must be a relative path of letters, digits, ".", "_", "-" and "/"`;
  }
  if (name.split('/').some((part) => part === '.' || part === '..')) {
    return `file name "${name}" must not contain "." or ".." segments`;
  }
  return null;
}

export function packBundle(files: BundleFile[]): Buffer {
  if (files.length === 0) throw new Error('a bundle needs at least one file');
  const seen = new Set<string>();
  const parts: Buffer[] = [BUNDLE_MAGIC];
  for (const file of files) {
    const problem = bundleNameProblem(file.name);
    if (problem) throw new Error(problem);
    if (seen.has(file.name)) throw new Error(`file name "${file.name}" appears twice in the bundle`);
    seen.add(file.name);
    const name = Buffer.from(file.name, 'utf8');
    const header = Buffer.alloc(1 + name.length + 4);
    header.writeUInt8(name.length, 0);
    name.copy(header, 1);
    header.writeUInt32BE(file.data.length, 1 + name.length);
    parts.push(header, file.data);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

export function unpackBundle(bundle: Buffer): BundleFile[] {
  if (bundle.length < BUNDLE_MAGIC.length || !bundle.subarray(0, 3).equals(BUNDLE_MAGIC)) {
    throw new Error('not a release bundle: the first 3 bytes must be 50 42 01');
  }
  const files: BundleFile[] = [];
  let offset = BUNDLE_MAGIC.length;
  for (;;) {
    if (offset >= bundle.length) throw new Error(`bundle truncated at byte ${offset}: end marker missing`);
    const nameLength = bundle.readUInt8(offset);
    offset += 1;
    if (nameLength === 0) break;
    if (offset + nameLength + 4 > bundle.length) throw new Error(`bundle truncated in the header at byte ${offset}`);
    const name = bundle.subarray(offset, offset + nameLength).toString('utf8');
    offset += nameLength;
    const problem = bundleNameProblem(name);
    if (problem) throw new Error(problem);
    const size = bundle.readUInt32BE(offset);
    offset += 4;
    if (offset + size > bundle.length) throw new Error(`bundle truncated in "${name}": ${size} bytes announced`);
    files.push({ name, data: bundle.subarray(offset, offset + size) });
    offset += size;
  }
  if (offset !== bundle.length) throw new Error(`bundle has ${bundle.length - offset} bytes after the end marker`);
  return files;
}
