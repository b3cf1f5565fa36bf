// publish command: packs files into a bundle, encodes it, signs it with the release
// key and uploads the release to the admin API.
import { sign } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { deflateSync } from 'node:zlib';
import { bundleNameProblem, packBundle, type BundleFile } from '../../src/protocol/bundle.ts';
import { Encoding, type EncodingName } from '../../src/protocol/constants.ts';
import { sha256, signedMessage } from '../../src/protocol/manifest.ts';
import { AdminClient, AdminRequestError, type AdminArgs } from './admin-client.ts';
import { EXAMPLES } from './options.ts';
import { CliError, printResult, type CliIo, type CommonArgs } from './io.ts';
import { loadPrivateKey } from './keys.ts';
import { formatRelease, type Release } from './releases.ts';

/**
 * zlib window of 2^10 bytes, so the device inflates with about 1 KiB of history. The
 * window size travels in the zlib header (CINFO = 2, RFC 1950 section 2.2).
 */
export const DEFLATE_WINDOW_BITS = 10;

export interface PublishArgs extends CommonArgs, AdminArgs {
  files: string[];
  version: string;
  channel: string;
  notes: string;
  key: string;
  rollout: number;
  encoding: 'auto' | EncodingName;
  nameAs?: string;
  allowEmpty: boolean;
  /** Start time as an absolute UTC instant, because validateArgs resolves forms such as +2h. */
  startAt?: string;
}

export interface EncodedPayload {
  encoding: EncodingName;
  payload: Buffer;
}

const FILES_EXAMPLE = 'ota-tool publish main.py lib/sensor.py=src/sensor.py --version 1.1.0 --key release.key';

/**
 * Splits a file argument into its bundle name and path. An argument that names an
 * existing file is a path, "=" included. Otherwise it is NAME=PATH, split at the first
 * "=", when the part before it is a valid bundle name. Anything else is a path.
 */
export function splitFileSpec(spec: string): { name: string | undefined; path: string } {
  const split = spec.indexOf('=');
  if (split <= 0 || existsSync(spec)) return { name: undefined, path: spec };
  const name = spec.slice(0, split);
  if (bundleNameProblem(name) !== null) return { name: undefined, path: spec };
  return { name, path: spec.slice(split + 1) };
}

/** Reads the files; a NAME=PATH argument sets the name in the bundle, otherwise it is the base name. */
export function readBundleFiles(specs: string[], nameAs?: string, allowEmpty = false): BundleFile[] {
  return specs.map((spec) => {
    const { name: givenName, path } = nameAs === undefined ? splitFileSpec(spec) : { name: nameAs, path: spec };
    const name = givenName ?? basename(path);
    let data: Buffer;
    try {
      data = readFileSync(path);
    } catch (error) {
      throw new CliError(`file ${path} cannot be read: ${(error as Error).message}`, FILES_EXAMPLE);
    }
    if (data.length === 0 && !allowEmpty) {
      throw new CliError(`file ${path} is empty, so the device would install a ${name} of 0 bytes; pass --allow-empty if that is intended`, FILES_EXAMPLE, 'EMPTY_FILE');
    }
    const problem = bundleNameProblem(name);
    if (problem !== null) {
      throw new CliError(`${problem}; give the file a bundle name as NAME=PATH or with --name-as`, `ota-tool publish app.py=${path} --version 1.1.0 --key release.key`, 'USAGE');
    }
    return { name, data };
  });
}

/** Encodes the bundle; "auto" picks deflate only when it makes the bytes sent fewer. */
export function encodeBundle(bundle: Buffer, choice: 'auto' | EncodingName): EncodedPayload {
  if (choice === 'raw') return { encoding: 'raw', payload: bundle };
  const deflated = deflateSync(bundle, { windowBits: DEFLATE_WINDOW_BITS, level: 9 });
  if (choice === 'deflate' || deflated.length < bundle.length) return { encoding: 'deflate', payload: deflated };
  return { encoding: 'raw', payload: bundle };
}

export async function publish(args: PublishArgs, io: CliIo): Promise<void> {
  const admin = new AdminClient(args, io, EXAMPLES.publish ?? 'ota-tool --help');
  const key = loadPrivateKey(args.key);

  let bundle: Buffer;
  try {
    bundle = packBundle(readBundleFiles(args.files, args.nameAs, args.allowEmpty));
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(`the files cannot be packed: ${(error as Error).message}`, 'ota-tool publish app.py lib/util.py=build/util.py --version 1.1.0 --key release.key');
  }
  const { encoding, payload } = encodeBundle(bundle, args.encoding);
  const digest = sha256(payload);
  const signature = sign(null, signedMessage({ version: args.version, size: payload.length, sha256: digest, encoding: Encoding[encoding] }), key);

  let release: Release;
  try {
    release = await admin.request<Release>('POST', '/api/releases', {
      version: args.version,
      channel: args.channel,
      notes: args.notes,
      encoding,
      rollout: args.rollout,
      size: payload.length,
      sha256: digest.toString('hex'),
      signature: signature.toString('hex'),
      payload: payload.toString('base64'),
      ...(args.startAt === undefined ? {} : { startAt: args.startAt }),
    });
  } catch (error) {
    throw explainPublishFailure(error, args);
  }

  printResult(
    io,
    args,
    { ...release, bundleSize: bundle.length },
    `published ${release.version} on channel ${release.channel}: ${encoding}, ${payload.length} bytes sent (bundle ${bundle.length} bytes)${
      release.startAt ? `; offered from ${release.startAt}` : ''
    }\n${formatRelease(release)}`,
  );
}

function explainPublishFailure(error: unknown, args: PublishArgs): unknown {
  if (!(error instanceof AdminRequestError)) return error;
  const { status, code, message } = error.server;
  if (code === 'RELEASE_EXISTS') {
    // The server compares versions by precedence, so 1.0.0+b collides with 1.0.0+a.
    return new CliError(
      `${args.server} rejected ${args.version}: ${message}. Versions are immutable and build metadata after "+" does not count, so publish the change under a higher version`,
      `ota-tool publish ${args.files.join(' ')} --version <a version above ${args.version.split('+')[0]}> --key ${args.key}`,
      code,
    );
  }
  if (status === 409) {
    return new CliError(`${args.server} rejected ${args.version}: ${message}`, 'ota-tool releases', code);
  }
  if (status === 413) {
    return new CliError(`the upload of release ${args.version} is larger than the server accepts (413): ${message}`, undefined, code);
  }
  if (code === 'BAD_SIGNATURE') {
    return new CliError(
      `the server rejected the signature of ${args.version} (${message}); --key ${args.key} does not match the public key the server was started with`,
      `ota-tool publish ${args.files.join(' ')} --version ${args.version} --key <the key whose .pub the server uses>`,
      code,
    );
  }
  return error;
}
