// The response a resource handler returns, before it is written to node-coap.
import type { CoapCodeValue } from '../errors.ts';
import { OptionNumber } from './datagram.ts';

export interface Reply {
  code: CoapCodeValue;
  /** Response options by number; values are the encoded option bytes. */
  options: Array<{ number: number; value: Buffer }>;
  payload: Buffer;
  /**
   * True for image blocks: node-coap's deduplication cache drops them after sending,
   * because RFC 7252 section 4.5 lets a server answer a retransmitted idempotent
   * request anew, and keeping every block for EXCHANGE_LIFETIME (247 s) would cost
   * memory in proportion to the bytes served.
   */
  uncached?: boolean;
}

/** Option names node-coap 1.5.0 uses for the numbers a reply carries. */
export const OPTION_NAMES: Record<number, string> = {
  [OptionNumber.etag]: 'ETag',
  [OptionNumber.contentFormat]: 'Content-Format',
  [OptionNumber.maxAge]: 'Max-Age',
  [OptionNumber.block2]: 'Block2',
  [OptionNumber.size2]: 'Size2',
};
