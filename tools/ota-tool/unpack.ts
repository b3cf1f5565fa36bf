// unpack command (debug aid): inflates a release payload when it is a zlib stream and
// writes the files of the bundle into a folder.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { BUNDLE_MAGIC, unpackBundle } from '../../src/protocol/bundle.ts';
import { CliError, printResult, type CliIo, type CommonArgs } from './io.ts';

export interface UnpackArgs extends CommonArgs {
  bundle: string;
  out: string;
}

const EXAMPLE = 'ota-tool unpack image.bin --out unpacked/';

/** Returns the bundle bytes: the payload itself when it starts with the magic, else its inflated form. */
export function decodePayload(payload: Buffer): { encoding: 'raw' | 'deflate'; bundle: Buffer } {
  if (payload.subarray(0, BUNDLE_MAGIC.length).equals(BUNDLE_MAGIC)) return { encoding: 'raw', bundle: payload };
  try {
    return { encoding: 'deflate', bundle: inflateSync(payload) };
  } catch (error) {
    throw new CliError(`the payload is neither a bundle (first bytes 50 42 01) nor a zlib stream: ${(error as Error).message}`, EXAMPLE, 'BAD_BUNDLE');
  }
}

export async function unpack(args: UnpackArgs, io: CliIo): Promise<void> {
  let payload: Buffer;
  try {
    payload = readFileSync(args.bundle);
  } catch (error) {
    throw new CliError(`${args.bundle} cannot be read: ${(error as Error).message}`, EXAMPLE);
  }
  const { encoding, bundle } = decodePayload(payload);
  let files;
  try {
    files = unpackBundle(bundle);
  } catch (error) {
    throw new CliError(`${args.bundle} is not a valid bundle: ${(error as Error).message}`, EXAMPLE, 'BAD_BUNDLE');
  }

  // unpackBundle accepts only relative names without "." or ".." segments, so every
  // path stays inside args.out.
  for (const file of files) {
    const path = join(args.out, file.name);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, file.data);
  }
  const listing = files.map((file) => ({ name: file.name, size: file.data.length }));
  printResult(
    io,
    args,
    { encoding, bundleSize: bundle.length, out: args.out, files: listing },
    [`unpacked ${files.length} files (${encoding}, bundle ${bundle.length} bytes) into ${args.out}`, ...listing.map((file) => `  ${file.name}  ${file.size} bytes`)].join('\n'),
  );
}
