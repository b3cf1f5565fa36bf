// Block-wise transfer of image payloads (RFC 7959 section 2) served straight from the
// stored 1024-byte chunks. Every block size 16..1024 divides 1024, so one block is
// a slice of one chunk, and no request ever touches the rest of the image.
import { CoapCode, CoapError } from '../errors.ts';
import { ETAG_BYTES, FORMAT_OCTET_STREAM, IMAGE_MAX_AGE_S } from '../protocol/constants.ts';
import { CHUNK_BYTES } from '../storage/store.ts';
import { OptionNumber, encodeUint, optionValues, type Datagram } from './datagram.ts';
import type { Reply } from './reply.ts';

/** SZX 6 (1024 bytes) is the largest block size; SZX 7 is reserved (RFC 7959 section 2.2). */
export const MAX_SZX = 6;
/** Largest NUM a 3-byte Block2 value holds (20 bits, RFC 7959 section 2.2). */
const MAX_BLOCK_NUM = 0xfffff;

export interface BlockRequest {
  num: number;
  szx: number;
  blockSize: number;
  /** True when the request carried Size2, a request for the total size (RFC 7959 section 4). */
  wantsSize: boolean;
}

/** Reads the Block2 option of a request. A request without one gets block 0 at 1024 bytes. */
export function parseBlock2(datagram: Datagram): BlockRequest {
  const wantsSize = optionValues(datagram, OptionNumber.size2).length > 0;
  const value = optionValues(datagram, OptionNumber.block2)[0];
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
  etag: Buffer;
  /** Returns stored chunk `index`, CHUNK_BYTES long except the last. */
  readChunk(index: number): Promise<Buffer | undefined>;
}

/** Builds the reply for one image block, or 2.03 Valid when the request's ETag matches. */
export async function imageBlockReply(datagram: Datagram, block: BlockRequest, image: ImageBlockSource): Promise<Reply> {
  const etag = image.etag.subarray(0, ETAG_BYTES);
  const maxAge = { number: OptionNumber.maxAge, value: encodeUint(IMAGE_MAX_AGE_S) };
  if (optionValues(datagram, OptionNumber.etag).some((value) => value.equals(etag))) {
    return { code: CoapCode.valid, options: [{ number: OptionNumber.etag, value: etag }, maxAge], payload: Buffer.alloc(0) };
  }
  checkBlockInRange(block, image.totalSize);

  const offset = block.num * block.blockSize;
  const chunkIndex = Math.floor(offset / CHUNK_BYTES);
  let payload: Buffer = Buffer.alloc(0);
  if (offset < image.totalSize) {
    const chunk = await image.readChunk(chunkIndex);
    if (!chunk) throw new Error(`chunk ${chunkIndex} of a ${image.totalSize}-byte image is missing from storage`);
    const start = offset - chunkIndex * CHUNK_BYTES;
    payload = chunk.subarray(start, start + block.blockSize);
  }
  const more = offset + block.blockSize < image.totalSize;
  const reply = blockReply(payload, block, more, image.totalSize, [
    { number: OptionNumber.contentFormat, value: encodeUint(FORMAT_OCTET_STREAM) },
    { number: OptionNumber.etag, value: etag },
    maxAge,
  ]);
  return { ...reply, uncached: true };
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
