// Block-wise transfer of image payloads (RFC 7959 section 2) served straight from the
// stored 1024-byte chunks. Every block size 16..1024 divides 1024, so one block is
// a slice of one chunk, and no request ever touches the rest of the image.
import { CoapCode, CoapError } from '../errors.ts';
import { ETAG_BYTES, FORMAT_OCTET_STREAM, IMAGE_MAX_AGE_S } from '../protocol/constants.ts';
import { CHUNK_BYTES } from '../storage/store.ts';
import { OptionNumber, encodeUint, firstOption, optionValues, type Datagram } from './datagram.ts';
import type { Reply } from './reply.ts';

/** SZX 6 (1024 bytes) is the largest block size; SZX 7 is reserved (RFC 7959 section 2.2). */
export const MAX_SZX = 6;
/** Largest NUM a 3-byte Block2 value holds (20 bits, RFC 7959 section 2.2). */
const MAX_BLOCK_NUM = 0xfffff;
/** Option values every image block carries, encoded once. */
const CONTENT_FORMAT_OCTET_STREAM = { number: OptionNumber.contentFormat, value: encodeUint(FORMAT_OCTET_STREAM) };
const MAX_AGE_IMAGE = { number: OptionNumber.maxAge, value: encodeUint(IMAGE_MAX_AGE_S) };

export interface BlockRequest {
  num: number;
  szx: number;
  blockSize: number;
  /** True when the request carried Size2, a request for the total size (RFC 7959 section 4). */
  wantsSize: boolean;
}

/** Reads the Block2 option of a request. A request without one gets block 0 at 1024 bytes. */
export function parseBlock2(datagram: Datagram): BlockRequest {
  const wantsSize = firstOption(datagram, OptionNumber.size2) !== undefined;
  const value = firstOption(datagram, OptionNumber.block2);
  if (value === undefined) return { num: 0, szx: MAX_SZX, blockSize: 1 << (MAX_SZX + 4), wantsSize };
  if (value.length > 3) throw new CoapError('OPTION_INVALID', 'Block2', '0..3 bytes', `${value.length} bytes`);
  let raw = 0;
  for (const byte of value) raw = raw * 256 + byte;
  const szx = raw & 0x7;
  if (szx === 7) throw new CoapError('BLOCK_SZX_RESERVED');
  // The M bit of a Block2 request has no meaning (RFC 7959 section 2.2), so it is ignored.
  return { num: raw >> 4, szx, blockSize: 1 << (szx + 4), wantsSize };
}

/** Encodes a Block2 value; block 0 with M = 0 and SZX 0 still takes one byte, which simple device parsers expect. */
export function encodeBlock2(num: number, more: boolean, szx: number): Buffer {
  if (num > MAX_BLOCK_NUM) throw new RangeError(`Block2 NUM must be at most ${MAX_BLOCK_NUM}, got ${num}`);
  const value = (num << 4) | (more ? 0x8 : 0) | szx;
  const encoded = encodeUint(value);
  return encoded.length === 0 ? Buffer.from([0]) : encoded;
}

export function lastBlockNum(totalSize: number, blockSize: number): number {
  return Math.max(0, Math.ceil(totalSize / blockSize) - 1);
}

/** Rejects a NUM past the last block with 4.02, as RFC 7959 section 2.4 requires. */
export function checkBlockInRange(block: BlockRequest, totalSize: number): void {
  const last = lastBlockNum(totalSize, block.blockSize);
  if (block.num > last) throw new CoapError('BLOCK_OUT_OF_RANGE', String(block.num), String(last), String(block.blockSize));
}

export interface ImageBlockSource {
  totalSize: number;
  /** The ETag option value: the first ETAG_BYTES bytes of the SHA-256. */
  etag: Buffer;
  /**
   * Returns stored chunk `index`, CHUNK_BYTES long except the last: synchronously when
   * it is in memory, so a block served from the cache takes no trip through the event loop.
   */
  readChunk(index: number): Buffer | undefined | Promise<Buffer | undefined>;
}

/** Derives the ImageBlockSource fields that never change for one image. */
export function imageIdentity(totalSize: number, sha256: Buffer): Pick<ImageBlockSource, 'totalSize' | 'etag'> {
  return { totalSize, etag: Buffer.from(sha256.subarray(0, ETAG_BYTES)) };
}

/**
 * Builds the reply for one image block, or 2.03 Valid when the request's ETag matches.
 * The reply is returned synchronously unless the chunk has to be read from storage.
 */
export function imageBlockReply(datagram: Datagram, block: BlockRequest, image: ImageBlockSource): Reply | Promise<Reply> {
  const etagOption = { number: OptionNumber.etag, value: image.etag };
  if (optionValues(datagram, OptionNumber.etag).some((value) => value.equals(image.etag))) {
    return { code: CoapCode.valid, options: [etagOption, MAX_AGE_IMAGE], payload: Buffer.alloc(0) };
  }
  checkBlockInRange(block, image.totalSize);

  const offset = block.num * block.blockSize;
  const more = offset + block.blockSize < image.totalSize;
  const options = [CONTENT_FORMAT_OCTET_STREAM, etagOption, MAX_AGE_IMAGE];
  const finish = (payload: Buffer): Reply => ({ ...blockReply(payload, block, more, image.totalSize, options), uncached: true });
  // A zero-byte image has one empty block 0.
  if (offset >= image.totalSize) return finish(Buffer.alloc(0));

  const chunkIndex = Math.floor(offset / CHUNK_BYTES);
  const start = offset - chunkIndex * CHUNK_BYTES;
  const slice = (chunk: Buffer | undefined): Buffer => {
    if (!chunk) throw new Error(`chunk ${chunkIndex} of a ${image.totalSize}-byte image is missing from storage`);
    return chunk.subarray(start, start + block.blockSize);
  };
  const chunk = image.readChunk(chunkIndex);
  if (chunk instanceof Promise) return chunk.then((stored) => finish(slice(stored)));
  return finish(slice(chunk));
}

/** Builds a 2.05 block reply from a small in-memory representation, such as the link format. */
export function bufferBlockReply(whole: Buffer, block: BlockRequest, options: Reply['options']): Reply {
  checkBlockInRange(block, whole.length);
  const offset = block.num * block.blockSize;
  const more = offset + block.blockSize < whole.length;
  return blockReply(whole.subarray(offset, offset + block.blockSize), block, more, whole.length, options);
}

function blockReply(payload: Buffer, block: BlockRequest, more: boolean, totalSize: number, options: Reply['options']): Reply {
  const all = [...options, { number: OptionNumber.block2, value: encodeBlock2(block.num, more, block.szx) }];
  if (block.num === 0 || block.wantsSize) all.push({ number: OptionNumber.size2, value: encodeUint(totalSize) });
  return { code: CoapCode.content, options: all, payload };
}
