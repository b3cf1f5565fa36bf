// download command: fetches an image block by block with Block2 (RFC 7959), one
// request per block, checking that the ETag stays the same, and verifies size and
// SHA-256 of what arrived.
import { createHash } from 'node:crypto';
import { open, rename } from 'node:fs/promises';
import { CoapClient, codeOf, commandTiming, decodeBlock, decodeUint, encodeBlock, encodeUint, findOption, formatCode, OptionNumber, parseCoapUri, szxOf, type CoapOption, type CoapTarget } from './coap-client.ts';
import { CliError, printResult, type CliIo, type CommonArgs } from './io.ts';

/** Largest image download accepts, in bytes; it stops a server that never sets M = 0. */
export const MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024;

export interface DownloadArgs extends CommonArgs {
  uri: string;
  out: string;
  blockSize: number;
  sha256?: string;
  size?: number;
  /** Seconds to wait for the response to one block request, retransmissions included. */
  timeout?: number;
}

export interface DownloadResult {
  uri: string;
  file: string;
  size: number;
  sha256: string;
  blocks: number;
  /** Block size in bytes the server served, which may be below the one requested (RFC 7959 section 2.4). */
  blockSize: number;
  etag: string | null;
  /** Total size from the server's Size2 option, when it sent one. */
  size2: number | null;
  retransmits: number;
  elapsedMs: number;
  sizeMatches: boolean | null;
  sha256Matches: boolean | null;
}

const EXAMPLE = 'ota-tool download coap://127.0.0.1:5683/d/3f2a9c01b7e4 --out image.bin --block-size 512';

/** Requests the blocks in order, passing each payload to write; resolves with the digest and counts. */
async function fetchBlocks(client: CoapClient, target: CoapTarget, requestedSzx: number, write: (data: Buffer) => Promise<void>) {
  const hash = createHash('sha256');
  let szx = requestedSzx;
  let offset = 0;
  let blocks = 0;
  let etag: Buffer | undefined;
  let size2: number | null = null;

  for (;;) {
    const blockSize = 2 ** (szx + 4);
    const num = offset / blockSize;
    const options: CoapOption[] = [{ number: OptionNumber.block2, value: encodeBlock({ num, more: false, szx }) }];
    // A Size2 option of 0 in a request requests the total size (RFC 7959 section 4).
    if (num === 0) options.push({ number: OptionNumber.size2, value: encodeUint(0) });

    const response = await client.request(target, { code: codeOf('0.01'), options });
    if (response.code !== codeOf('2.05')) {
      throw new CliError(`block ${num} of /${target.path.join('/')} failed with ${formatCode(response.code)}: ${response.payload.toString('utf8')}`, EXAMPLE, 'BLOCK_FAILED');
    }

    const responseEtag = findOption(response, OptionNumber.etag);
    if (blocks === 0) etag = responseEtag;
    else if (!etagEquals(etag, responseEtag)) {
      throw new CliError(
        `the ETag changed at block ${num} from ${hex(etag)} to ${hex(responseEtag)}: the resource changed during the download, so start it again`,
        EXAMPLE,
        'ETAG_CHANGED',
      );
    }
    const size2Value = findOption(response, OptionNumber.size2);
    if (size2Value) size2 = decodeUint(size2Value);

    const block2Value = findOption(response, OptionNumber.block2);
    if (!block2Value) {
      if (num !== 0) throw new CliError(`the response to block ${num} has no Block2 option`, EXAMPLE, 'BAD_BLOCK');
      hash.update(response.payload);
      await write(response.payload);
      return { hash, size: response.payload.length, blocks: 1, blockSize: response.payload.length, etag, size2 };
    }

    const block = decodeBlock(block2Value);
    if (block.szx > szx) throw new CliError(`the server responded with SZX ${block.szx}, larger than the ${szx} requested`, EXAMPLE, 'BAD_BLOCK');
    const servedSize = 2 ** (block.szx + 4);
    if (block.num * servedSize !== offset) {
      throw new CliError(`the server sent block ${block.num} (SZX ${block.szx}) for byte offset ${offset}`, EXAMPLE, 'BAD_BLOCK');
    }
    if (block.more && response.payload.length !== servedSize) {
      throw new CliError(`block ${block.num} has ${response.payload.length} bytes and M = 1; RFC 7959 section 2.2 requires ${servedSize}`, EXAMPLE, 'BAD_BLOCK');
    }
    szx = block.szx;
    hash.update(response.payload);
    await write(response.payload);
    offset += response.payload.length;
    blocks += 1;
    if (offset > MAX_DOWNLOAD_BYTES) throw new CliError(`the image exceeds ${MAX_DOWNLOAD_BYTES} bytes; download stops there`, EXAMPLE, 'TOO_LARGE');
    if (!block.more) return { hash, size: offset, blocks, blockSize: servedSize, etag, size2 };
  }
}

function etagEquals(a: Buffer | undefined, b: Buffer | undefined): boolean {
  if (!a || !b) return a === b;
  return a.equals(b);
}

function verdict(matches: boolean | null): string {
  if (matches === null) return 'not checked';
  return matches ? 'matches' : 'MISMATCH';
}

function hex(value: Buffer | undefined): string {
  return value ? value.toString('hex') : '(none)';
}

/** Returns the exit code: 1 when the size or digest differs from --size, --sha256 or Size2. */
export async function download(args: DownloadArgs, io: CliIo): Promise<number> {
  let target: CoapTarget;
  try {
    target = parseCoapUri(args.uri);
  } catch (error) {
    throw new CliError((error as Error).message, EXAMPLE, 'USAGE');
  }
  const szx = szxOf(args.blockSize);
  // NOTE: every run starts again at block 0; an existing FILE.part is overwritten, not resumed.
  const partFile = `${args.out}.part`;
  const started = performance.now();

  // The file is opened before the socket, so a bad --out fails before any packet is sent.
  let handle;
  try {
    handle = await open(partFile, 'w');
  } catch (error) {
    throw new CliError(`--out ${args.out}: ${partFile} cannot be written (${(error as Error).message}); pass a file in a folder that exists`, EXAMPLE, 'OUT_UNWRITABLE');
  }
  let client;
  try {
    client = await CoapClient.connect(target.host, target.port, commandTiming(args.timeout, args.uri, io.stderr));
  } catch (error) {
    await handle.close();
    throw new CliError(`download of ${args.uri} failed: ${(error as Error).message}`, EXAMPLE, 'DOWNLOAD_FAILED');
  }
  let transfer;
  try {
    const file = handle;
    transfer = await fetchBlocks(client, target, szx, async (data) => {
      await file.write(data);
    });
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(`download of ${args.uri} failed: ${(error as Error).message}`, EXAMPLE, 'DOWNLOAD_FAILED');
  } finally {
    client.close();
    await handle.close();
  }

  const digest = transfer.hash.digest('hex');
  const result: DownloadResult = {
    uri: args.uri,
    file: args.out,
    size: transfer.size,
    sha256: digest,
    blocks: transfer.blocks,
    blockSize: transfer.blockSize,
    etag: transfer.etag ? transfer.etag.toString('hex') : null,
    size2: transfer.size2,
    retransmits: client.retransmits,
    elapsedMs: Math.round(performance.now() - started),
    sizeMatches: args.size === undefined ? null : args.size === transfer.size,
    sha256Matches: args.sha256 === undefined ? null : args.sha256.toLowerCase() === digest,
  };

  const problems: string[] = [];
  if (result.sizeMatches === false) problems.push(`size is ${transfer.size} bytes, --size expected ${args.size}`);
  if (result.sha256Matches === false) problems.push(`SHA-256 is ${digest}, --sha256 expected ${args.sha256}`);
  if (transfer.size2 !== null && transfer.size2 !== transfer.size) problems.push(`size is ${transfer.size} bytes, the server's Size2 announced ${transfer.size2}`);

  if (problems.length === 0) {
    result.file = args.out;
    await rename(partFile, args.out);
  } else {
    result.file = partFile;
  }
  // A failed check leads the text, so a reader of the first line never takes the bytes for good.
  const headline =
    problems.length === 0 ? `downloaded ${args.uri} to ${result.file}` : `verification FAILED for ${args.uri}: ${problems.join('; ')}; the bytes are in ${partFile}`;
  printResult(
    io,
    args,
    result,
    [
      headline,
      `size:    ${result.size} bytes in ${result.blocks} blocks of ${result.blockSize} (${verdict(result.sizeMatches)})`,
      `sha256:  ${result.sha256} (${verdict(result.sha256Matches)})`,
      `etag:    ${result.etag ?? '(none)'}`,
      `time:    ${result.elapsedMs} ms, ${result.retransmits} retransmissions`,
    ].join('\n'),
  );
  if (problems.length > 0) {
    io.stderr(`error: ${problems.join('; ')}; the bytes stay in ${partFile} for inspection and ${args.out} was not written\n`);
    return 1;
  }
  return 0;
}
