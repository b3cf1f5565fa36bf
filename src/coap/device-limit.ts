// Rate limit of checks and reports per device id, in front of storage. A request over
// the limit becomes 5.03 with Max-Age set to the seconds until the next token. Image
// blocks are not limited: docs/server.md gives the reasons.
import type pino from 'pino';
import { CoapError } from '../errors.ts';
import { TokenBuckets, type RateLimit } from '../rate-limit.ts';

/**
 * Defaults that a fleet checking in every few minutes or hours never reaches, and that
 * a device retrying a few times a minute after a failure stays within for about 15
 * minutes. A device in a loop of one check a second is limited after half a minute.
 */
export const DEFAULT_DEVICE_RATE: RateLimit = { burst: 30, ratePerMinute: 2 };
/** Maximum number of device buckets; at an estimated 200 bytes each, about 10 MB. */
export const MAX_DEVICE_BUCKETS = 50_000;
/** Minimum time between two warnings about one limited device. */
export const REJECTION_REPORT_INTERVAL_MS = 60_000;

export interface DeviceLimiterOptions extends RateLimit {
  logger: pino.Logger;
  maxKeys?: number;
  nowMs?: () => number;
}

// NOTE: device ids are not authenticated. A client that invents a new id for each
// request passes the limit, and past MAX_DEVICE_BUCKETS it evicts limited devices.
export class DeviceLimiter {
  private readonly buckets: TokenBuckets;
  private readonly logger: pino.Logger;

  constructor(options: DeviceLimiterOptions) {
    this.logger = options.logger;
    this.buckets = new TokenBuckets({
      burst: options.burst,
      ratePerMinute: options.ratePerMinute,
      maxKeys: options.maxKeys ?? MAX_DEVICE_BUCKETS,
      reportIntervalMs: REJECTION_REPORT_INTERVAL_MS,
      ...(options.nowMs === undefined ? {} : { nowMs: options.nowMs }),
      // NOTE: buckets are swept only when a request arrives, so the last count of a
      // device that went quiet waits for the next check or report from any device.
      onDropUnreported: (deviceId, rejected, address) => {
        this.logger.warn({ deviceId, address, rejected }, 'device rate limit: rejections since the last warning');
      },
    });
  }

  /** Number of device buckets held. */
  get size(): number {
    return this.buckets.size;
  }

  /**
   * Spends one token of deviceId, or throws RATE_LIMITED with maxAgeS set. The first
   * rejection of a device is logged, then one summary at most every
   * REJECTION_REPORT_INTERVAL_MS, so a looping device cannot flood the log.
   */
  admit(deviceId: string, address: string): void {
    const result = this.buckets.take(deviceId, address);
    if (result.admitted) return;
    const report = result.report;
    if (report?.kind === 'first') {
      this.logger.warn(
        { deviceId, address, retryAfterS: result.retryAfterS, burst: this.buckets.burst, ratePerMinute: this.buckets.ratePerMinute },
        'device over its rate limit; answering 5.03',
      );
    } else if (report) {
      this.logger.warn({ deviceId, address, rejected: report.rejected, retryAfterS: result.retryAfterS }, 'device rate limit: rejections since the last warning');
    }
    const err = new CoapError('RATE_LIMITED', deviceId, String(this.buckets.ratePerMinute), String(result.retryAfterS));
    err.maxAgeS = result.retryAfterS;
    throw err;
  }
}
