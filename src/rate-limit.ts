// Token buckets by key (a device id, a client address): a burst that a key may spend
// at once and a sustained rate at which tokens come back. Used by the CoAP resources
// per device id and by the admin API per address for failed authentications.
// Memory stays bounded: a bucket that has refilled carries no information and is
// dropped, and the map contains at most maxKeys buckets.

export interface RateLimit {
  /** Tokens a key may spend at once; a new key starts with a full bucket. */
  burst: number;
  /** Tokens that come back per minute. */
  ratePerMinute: number;
}

export interface TokenBucketsOptions extends RateLimit {
  /** Maximum number of buckets; past it the least recently used bucket is dropped even if not full. */
  maxKeys: number;
  /** Milliseconds between two reports of rejections of one key. */
  reportIntervalMs: number;
  /** Clock in milliseconds; tests inject their own. */
  nowMs?: () => number;
  /** Called when a bucket is dropped while it has rejections not reported yet. */
  onDropUnreported?: (key: string, rejected: number, source: string) => void;
}

/**
 * Result of take(). A rejection carries the whole seconds until the next token and,
 * at most once per reportIntervalMs per key, a report: 'first' for the first
 * rejection the bucket has seen, 'summary' with the rejections since the last report.
 */
export type TakeResult =
  | { admitted: true }
  | { admitted: false; retryAfterS: number; report?: { kind: 'first' | 'summary'; rejected: number } };

interface Bucket {
  tokens: number;
  updatedMs: number;
  /** Rejections not yet reported. */
  unreported: number;
  /** Time of the last report, or undefined before the first rejection. */
  reportedMs: number | undefined;
  /** Source of the latest request, such as the client address, for the drop report. */
  source: string;
}

export class TokenBuckets {
  readonly burst: number;
  readonly ratePerMinute: number;
  private readonly tokensPerMs: number;
  private readonly maxKeys: number;
  private readonly reportIntervalMs: number;
  private readonly nowMs: () => number;
  private readonly onDropUnreported: ((key: string, rejected: number, source: string) => void) | undefined;
  /** In order of last use, oldest first: each touch deletes and re-inserts its key. */
  private readonly buckets = new Map<string, Bucket>();

  constructor(options: TokenBucketsOptions) {
    if (!Number.isInteger(options.burst) || options.burst < 1) throw new RangeError(`burst must be an integer >= 1, got ${options.burst}`);
    if (!(options.ratePerMinute > 0) || !Number.isFinite(options.ratePerMinute)) {
      throw new RangeError(`ratePerMinute must be a finite number > 0, got ${options.ratePerMinute}`);
    }
    if (!Number.isInteger(options.maxKeys) || options.maxKeys < 1) throw new RangeError(`maxKeys must be an integer >= 1, got ${options.maxKeys}`);
    this.burst = options.burst;
    this.ratePerMinute = options.ratePerMinute;
    this.tokensPerMs = options.ratePerMinute / 60_000;
    this.maxKeys = options.maxKeys;
    this.reportIntervalMs = options.reportIntervalMs;
    this.nowMs = options.nowMs ?? Date.now;
    this.onDropUnreported = options.onDropUnreported;
  }

  /** Number of buckets held. */
  get size(): number {
    return this.buckets.size;
  }

  /** Spends one token of key, or rejects the request when the bucket has less than one. */
  take(key: string, source: string): TakeResult {
    const now = this.nowMs();
    const bucket = this.touch(key, source, now);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { admitted: true };
    }

    bucket.unreported += 1;
    const retryAfterS = this.secondsUntilToken(bucket);
    if (bucket.reportedMs !== undefined && now - bucket.reportedMs < this.reportIntervalMs) return { admitted: false, retryAfterS };
    const kind = bucket.reportedMs === undefined ? 'first' : 'summary';
    const rejected = bucket.unreported;
    bucket.reportedMs = now;
    bucket.unreported = 0;
    return { admitted: false, retryAfterS, report: { kind, rejected } };
  }

  /** Whole seconds until key has a token again, 0 when it has one now. Spends nothing. */
  waitS(key: string): number {
    const bucket = this.buckets.get(key);
    if (!bucket) return 0;
    this.refill(bucket, this.nowMs());
    return bucket.tokens >= 1 ? 0 : this.secondsUntilToken(bucket);
  }

  /**
   * Drops refilled buckets from the least recently used end, and the oldest ones while
   * the map is at maxKeys. It stops at the first bucket that is not full, so a full
   * bucket behind it waits at most burst / rate for a later sweep, and a request costs O(1)
   * amortized.
   */
  private sweep(now: number): void {
    for (const [key, bucket] of this.buckets) {
      const full = now - bucket.updatedMs >= (this.burst - bucket.tokens) / this.tokensPerMs;
      if (!full && this.buckets.size < this.maxKeys) break;
      this.drop(key, bucket);
    }
  }

  private touch(key: string, source: string, now: number): Bucket {
    let bucket = this.buckets.get(key);
    if (bucket) {
      this.buckets.delete(key);
      this.refill(bucket, now);
      bucket.source = source;
    } else {
      bucket = { tokens: this.burst, updatedMs: now, unreported: 0, reportedMs: undefined, source };
    }
    this.sweep(now);
    this.buckets.set(key, bucket);
    return bucket;
  }

  private refill(bucket: Bucket, now: number): void {
    // A clock that steps back adds no tokens and takes none.
    const elapsedMs = Math.max(0, now - bucket.updatedMs);
    bucket.tokens = Math.min(this.burst, bucket.tokens + elapsedMs * this.tokensPerMs);
    bucket.updatedMs = now;
  }

  private secondsUntilToken(bucket: Bucket): number {
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.tokensPerMs / 1000));
  }

  private drop(key: string, bucket: Bucket): void {
    this.buckets.delete(key);
    if (bucket.unreported > 0) this.onDropUnreported?.(key, bucket.unreported, bucket.source);
  }
}
