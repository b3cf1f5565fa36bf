// Event retention: the event log is append-only, and every check-in adds to it, so the
// daemon deletes events older than the retention period at start and then hourly.
import type pino from 'pino';
import type { Store } from '../storage/store.ts';

export const DEFAULT_EVENT_RETENTION_DAYS = 90;
/** Time between two prunes. */
const PRUNE_INTERVAL_MS = 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

export interface EventRetention {
  /** Resolves once the first prune, started by startEventRetention, has finished. */
  readonly firstPrune: Promise<void>;
  /** Stops the timer and waits for a prune in progress. */
  stop(): Promise<void>;
}

/** Prunes now and every PRUNE_INTERVAL_MS; days 0 keeps every event and starts nothing. */
export function startEventRetention(store: Store, logger: pino.Logger, days: number, now: () => number = Date.now): EventRetention {
  if (days === 0) {
    logger.info('event retention off: events are kept forever');
    return { firstPrune: Promise.resolve(), stop: async () => {} };
  }
  let running: Promise<void> = Promise.resolve();
  const prune = (): Promise<void> => {
    const cutoff = new Date(now() - days * DAY_MS);
    running = store.pruneEvents(cutoff).then(
      (pruned) => {
        if (pruned > 0) logger.info({ pruned, cutoff: cutoff.toISOString(), retentionDays: days }, 'old events pruned');
      },
      (err: unknown) => logger.error({ err, cutoff: cutoff.toISOString() }, 'pruning old events failed; retrying at the next interval'),
    );
    return running;
  };
  const firstPrune = prune();
  const timer = setInterval(() => void running.then(prune), PRUNE_INTERVAL_MS);
  timer.unref();
  return {
    firstPrune,
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
