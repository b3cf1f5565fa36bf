// download command: fetches an image block by block with Block2 (RFC 7959), one
// request per block, checking that the ETag stays the same, and verifies size and
// SHA-256 of what arrived. An interrupted download resumes from FILE.part when the
// ETag recorded beside it still matches.
import { createHash, type Hash } from 'node:crypto';
import { open, readFile, rename, rm, writeFile, type FileHandle } from 'node:fs/promises';
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
  /** Discard FILE.part and start at block 0. */
  restart?: boolean;
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
  /** Bytes taken from FILE.part of an earlier, interrupted run. */
  resumedFrom: number;
}

/** Contents of FILE.part.json, with which a later run checks that FILE.part is a prefix of the same image. */
interface PartRecord {
  uri: string;
  etag: string;
}

/** Starting point of a transfer: 0 with an empty hash, or the end of the reused bytes. */
interface TransferStart {
  offset: number;
  hash: Hash;
  /** ETag the first response must carry to continue the reused bytes. */
  etag?: Buffer;
}

/** The first response of a resumed transfer carried another ETag: the reused bytes belong to another image. */
class ResumeMismatch extends Error {}

const EXAMPLE = 'ota-tool download coap://127.0.0.1:5683/d/3f2a9c01b7e4 --out image.bin --block-size 512';

/**
 * Requests the blocks in order from start.offset and passes each payload to write.
 * The ETag of the first response goes to onEtag. Resolves with the digest and counts.
 */
async function fetchBlocks(
  client: CoapClient,
  target: CoapTarget,
  requestedSzx: number,
  start: TransferStart,
  write: (data: Buffer) => Promise<void>,
  onEtag: (etag: Buffer | undefined) => Promise<void>,
) {
  const hash = start.hash;
  let szx = requestedSzx;
  let offset = start.offset;
  let blocks = 0;
  let etag: Buffer | undefined;
  let size2: number | null = null;

  for (;;) {
    const blockSize = 2 ** (szx + 4);
    const num = offset / blockSize;
    const options: CoapOption[] = [{ number: OptionNumber.block2, value: encodeBlock({ num, more: false, szx }) }];
    // A Size2 option of 0 in a request requests the total size (RFC 7959 section 4).
    // It goes with the first request of every run, so a resumed run learns it too.
    if (blocks === 0) options.push({ number: OptionNumber.size2, value: encodeUint(0) });

    const response = await client.request(target, { code: codeOf('0.01'), options });
    if (blocks === 0 && start.offset > 0 && response.code === codeOf('4.02')) {
      // The reused bytes reach past the end of the image, so they are not a prefix of it.
      throw new ResumeMismatch(`block ${num} is past the end of the image (${response.payload.toString('utf8')})`);
    }
    if (response.code !== codeOf('2.05')) {
      throw new CliError(`block ${num} of /${target.path.join('/')} failed with ${formatCode(response.code)}: ${response.payload.toString('utf8')}`, EXAMPLE, 'BLOCK_FAILED');
    }

    const responseEtag = findOption(response, OptionNumber.etag);
    if (blocks === 0) {
      if (start.offset > 0 && !etagEquals(start.etag, responseEtag)) {
        throw new ResumeMismatch(`the ETag is now ${hex(responseEtag)}, the reused bytes were downloaded with ${hex(start.etag)}`);
      }
      etag = responseEtag;
      await onEtag(etag);
    } else if (!etagEquals(etag, responseEtag)) {
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
      if (start.offset > 0) throw new CliError(`the response to block ${num} has no Block2 option`, EXAMPLE, 'BAD_BLOCK');
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

/**
 * Opens FILE.part for this run. It is reused when FILE.part.json names the same URI
 * and --restart is not given: its whole blocks of blockBytes are hashed again and the
 * transfer continues after them. Otherwise FILE.part starts empty.
 */
async function openPart(partFile: string, recordFile: string, args: DownloadArgs, blockBytes: number): Promise<{ handle: FileHandle; start: TransferStart }> {
  const hash = createHash('sha256');
  const record = args.restart ? undefined : await readRecord(recordFile);
  if (isPartRecordOf(record, args.uri)) {
    let existing: Buffer | undefined;
    try {
      existing = await readFile(partFile);
    } catch {
      existing = undefined;
    }
    const offset = existing ? existing.length - (existing.length % blockBytes) : 0;
    if (existing && offset > 0 && offset <= MAX_DOWNLOAD_BYTES) {
      const handle = await open(partFile, 'r+');
      await handle.truncate(offset);
      hash.update(existing.subarray(0, offset));
      return { handle, start: { offset, hash, etag: Buffer.from(record.etag, 'hex') } };
    }
  }
  await rm(recordFile, { force: true });
  return { handle: await open(partFile, 'w'), start: { offset: 0, hash } };
}

async function readRecord(recordFile: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(recordFile, 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** True for a record of uri with a hex ETag; anything else (missing, other URI, damaged) is ignored. */
function isPartRecordOf(record: unknown, uri: string): record is PartRecord {
  const candidate = record as Partial<PartRecord> | undefined;
  return candidate?.uri === uri && typeof candidate.etag === 'string' && /^(?:[0-9a-f]{2}){1,8}$/.test(candidate.etag);
}

/**
 * Checks a resumed transfer, whose first bytes came from FILE.part, against what is
 * known of the image: --sha256 when given, else an 8-byte ETag, which ota-server
 * derives from the first 8 bytes of the SHA-256 (docs/protocol.md). Another server's
 * ETag is opaque, and then the reused bytes cannot be checked.
 */
function reusedBytesVerify(transfer: { hash: Hash; etag: Buffer | undefined }, sha256: string | undefined): boolean {
  const digest = transfer.hash.copy().digest('hex');
  if (sha256 !== undefined) return digest === sha256.toLowerCase();
  if (transfer.etag?.length === 8) return digest.startsWith(transfer.etag.toString('hex'));
  return true;
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
  const partFile = `${args.out}.part`;
  const recordFile = `${partFile}.json`;
  const started = performance.now();

  // The file is opened before the socket, so a bad --out fails before any packet is sent.
  let handle: FileHandle;
  let start: TransferStart;
  try {
    ({ handle, start } = await openPart(partFile, recordFile, args, 2 ** (szx + 4)));
  } catch (error) {
    throw new CliError(`--out ${args.out}: ${partFile} cannot be written (${(error as Error).message}); pass a file in a folder that exists`, EXAMPLE, 'OUT_UNWRITABLE');
  }
  if (start.offset > 0) io.stderr(`resuming ${args.uri} at byte ${start.offset} from ${partFile}\n`);
  let client;
  try {
    client = await CoapClient.connect(target.host, target.port, commandTiming(args.timeout, args.uri, io.stderr));
  } catch (error) {
    await handle.close();
    throw new CliError(`download of ${args.uri} failed: ${(error as Error).message}`, EXAMPLE, 'DOWNLOAD_FAILED');
  }
  let transfer;
  let written = start.offset;
  let resumedFrom = start.offset;
  const file = handle;
  const write = async (data: Buffer) => {
    await file.write(data, 0, data.length, written);
    written += data.length;
  };
  // The record is written once the first response names the ETag, and only for an
  // image that has one: without an ETag a later run cannot tell the image changed.
  const recordEtag = async (etag: Buffer | undefined) => {
    if (etag) await writeFile(recordFile, JSON.stringify({ uri: args.uri, etag: etag.toString('hex') } satisfies PartRecord));
    else await rm(recordFile, { force: true });
  };
  const restart = async (reason: string) => {
    io.stderr(`${reason}, so the download starts again at block 0\n`);
    await file.truncate(0);
    written = 0;
    resumedFrom = 0;
    start = { offset: 0, hash: createHash('sha256') };
    return fetchBlocks(client, target, szx, start, write, recordEtag);
  };
  // Ctrl-C ends the request in flight, so the bytes so far stay resumable.
  let interrupted = false;
  const onInterrupt = () => {
    interrupted = true;
    client.close();
  };
  process.once('SIGINT', onInterrupt);
  try {
    try {
      transfer = await fetchBlocks(client, target, szx, start, write, recordEtag);
    } catch (error) {
      if (!(error instanceof ResumeMismatch)) throw error;
      transfer = await restart(`${error.message}: ${partFile} belongs to another image`);
    }
    const reusedBadBytes = resumedFrom > 0 && !reusedBytesVerify(transfer, args.sha256);
    if (reusedBadBytes) transfer = await restart(`the SHA-256 of the resumed download does not match, so the bytes reused from ${partFile} were wrong`);
  } catch (error) {
    if (interrupted) {
      const offset = written - (written % 2 ** (szx + 4));
      throw new CliError(`download of ${args.uri} interrupted at byte ${written}; run the same command again to resume at byte ${offset}`, EXAMPLE, 'INTERRUPTED');
    }
    const resumable = isPartRecordOf(await readRecord(recordFile), args.uri) && written > 0;
    const hint = resumable ? `; run the same command again to resume at byte ${written - (written % 2 ** (szx + 4))}` : '';
    if (error instanceof CliError) {
      if (error.code === 'ETAG_CHANGED') await rm(recordFile, { force: true });
      throw resumable && error.code !== 'ETAG_CHANGED' ? new CliError(`${error.message}${hint}`, EXAMPLE, error.code) : error;
    }
    throw new CliError(`download of ${args.uri} failed: ${(error as Error).message}${hint}`, EXAMPLE, 'DOWNLOAD_FAILED');
  } finally {
    process.off('SIGINT', onInterrupt);
    client.close();
    await handle.close();
    // A run that failed before any byte arrived leaves no empty FILE.part behind.
    if (!transfer && written === 0) {
      await rm(partFile, { force: true });
      await rm(recordFile, { force: true });
    }
  }
  // A finished transfer leaves nothing to resume: good bytes are renamed below, and bad
  // ones stay in FILE.part for inspection but must not seed the next run.
  await rm(recordFile, { force: true });

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
    resumedFrom,
  };

  const problems: string[] = [];
  if (result.sizeMatches === false) problems.push(`size is ${transfer.size} bytes, --size expected ${args.size}`);
  if (result.sha256Matches === false) problems.push(`SHA-256 is ${digest}, --sha256 expected ${args.sha256}`);
  if (transfer.size2 !== null && transfer.size2 !== transfer.size) problems.push(`size is ${transfer.size} bytes, the server's Size2 announced ${transfer.size2}`);

  if (problems.length === 0) {
    result.file = args.out;
    try {
      await rename(partFile, args.out);
    } catch (error) {
      throw new CliError(
        `${partFile} could not be renamed to ${args.out} (${(error as Error).message}); was another download to the same --out running? Run the command again`,
        EXAMPLE,
        'OUT_UNWRITABLE',
      );
    }
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
      `time:    ${result.elapsedMs} ms, ${result.retransmits} retransmissions${resumedFrom > 0 ? `, resumed at byte ${resumedFrom}` : ''}`,
    ].join('\n'),
  );
  if (problems.length > 0) {
    io.stderr(`error: ${problems.join('; ')}; the bytes stay in ${partFile} for inspection and ${args.out} was not written\n`);
    return 1;
  }
  return 0;
}
