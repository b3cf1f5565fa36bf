// The --known-devices-only policy of the CoAP side. Checks and reports from a device
// id without a registration get 4.03 Forbidden and leave no trace in storage. The
// rejections are logged with a throttle, so a looping device cannot flood the log.
// Image blocks are not gated, because they are content-addressed, signed and public.
import type pino from 'pino';
import { CoapError } from '../errors.ts';
import type { Store } from '../storage/store.ts';
import type { Reply } from './reply.ts';

/** Minimum time between two warnings about the same unregistered device id. */
export const UNKNOWN_DEVICE_WARN_INTERVAL_MS = 60_000;
/**
 * Warnings about all unregistered ids together per interval, so a client that
 * cycles through many ids cannot flood the log either.
 */
export const UNKNOWN_DEVICE_WARNINGS_PER_INTERVAL = 20;
/** Ids whose last warning time is kept; the oldest is forgotten first. */
const MAX_TRACKED_IDS = 1024;

interface TrackedId {
  lastWarningMs: number;
  suppressed: number;
}

export class KnownDevicesGate {
  private readonly tracked = new Map<string, TrackedId>();
  private windowStartMs = -Infinity;
  private windowWarnings = 0;
  /** Warnings dropped by the global limit since the last line written. */
  private droppedWarnings = 0;

  constructor(
    private readonly store: Store,
    private readonly logger: pino.Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Returns the 4.03 reply for a device id without a registration, or undefined when
   * the device is registered. The reply is returned rather than thrown, so that the
   * caller's per-rejection warning does not bypass the throttle here.
   */
  async reject(deviceId: string, address: string, resource: string): Promise<Reply | undefined> {
    if (await this.store.getRegistration(deviceId)) return undefined;
    this.warn(deviceId, address, resource);
    const error = new CoapError('DEVICE_NOT_REGISTERED', deviceId);
    // A diagnostic payload is UTF-8 text with no Content-Format (RFC 7252 section 5.5.2).
    return { code: error.coapCode, options: [], payload: Buffer.from(error.message, 'utf8') };
  }

  /** Logs one rejection unless this id, or all ids together, reached their limit. */
  warn(deviceId: string, address: string, resource: string): void {
    const nowMs = this.now();
    const entry = this.tracked.get(deviceId);
    if (entry && nowMs - entry.lastWarningMs < UNKNOWN_DEVICE_WARN_INTERVAL_MS) {
      entry.suppressed++;
      return;
    }
    if (nowMs - this.windowStartMs >= UNKNOWN_DEVICE_WARN_INTERVAL_MS) {
      this.windowStartMs = nowMs;
      this.windowWarnings = 0;
    }
    if (this.windowWarnings >= UNKNOWN_DEVICE_WARNINGS_PER_INTERVAL) {
      this.droppedWarnings++;
      return;
    }
    this.windowWarnings++;

    this.logger.warn(
      { deviceId, address, resource, code: 'DEVICE_NOT_REGISTERED', suppressed: entry?.suppressed ?? 0, otherSuppressed: this.droppedWarnings },
      'unregistered device rejected',
    );
    this.droppedWarnings = 0;
    // Delete and set again, so the Map's insertion order runs from the oldest warning.
    this.tracked.delete(deviceId);
    this.tracked.set(deviceId, { lastWarningMs: nowMs, suppressed: 0 });
    if (this.tracked.size > MAX_TRACKED_IDS) this.tracked.delete(this.tracked.keys().next().value!);
  }
}
