// The response a resource handler returns, before it is written to node-coap.
import type { CoapCodeValue } from '../errors.ts';
import { OptionNumber } from './datagram.ts';

export interface Reply {
  code: CoapCodeValue;
  /** Response options by number; values are the encoded option bytes. */
  options: Array<{ number: number; value: Buffer }>;
  payload: Buffer;
}

/** Option names node-coap 1.5.0 uses for the numbers a reply carries. */
export const OPTION_NAMES: Record<number, string> = {
  [OptionNumber.etag]: 'ETag',
  [OptionNumber.contentFormat]: 'Content-Format',
  [OptionNumber.maxAge]: 'Max-Age',
  [OptionNumber.block2]: 'Block2',
  [OptionNumber.size2]: 'Size2',
};
