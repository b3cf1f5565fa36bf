// Storage: the only module that touches LevelDB. Releases, payload chunks, devices
// and events live in one database, each kind in its own sublevel, so moving to a
// shared store for several daemons replaces this file and nothing else.
//
// Layout (sublevel!key -> value):
//   release!<version>              -> ReleaseRecord (JSON)
//   download!<download id>         -> version that first stored the payload (later sharers reuse it)
//   chunk!<sha256 hex>/<index hex8> -> 1024 bytes of payload (the last one shorter)
//   device!<device id>             -> DeviceRecord (JSON)
//   registration!<device id>       -> RegistrationRecord (JSON)
//   event!<sequence, 16 digits>    -> EventRecord (JSON)
//   device-event!<device id>/<seq> -> "" (index for per-device event queries)
import { createHash } from 'node:crypto';
import { Level } from 'level';
import type pino from 'pino';
import { downloadId as downloadIdOf } from '../protocol/manifest.ts';
import { compareVersions, parseSemVer } from '../releases/semver.ts';
import { isStoredStartAt, START_AT_FORMAT } from '../releases/start-time.ts';
import { ChunkCache } from './chunk-cache.ts';

/** Bytes per stored chunk. Every block size 16..1024 divides it, so a block is one chunk read. */
export const CHUNK_BYTES = 1024;
/**
 * Chunks kept in memory: 8 MiB. A fleet downloads the same few images at many
 * different offsets at once, so the cache must fit whole images. With a cache smaller
 * than an image, devices spread over it evict each other's chunks, and every block
 * becomes a LevelDB read.
 */
const CHUNK_CACHE_ENTRIES = 8192;
const DEFAULT_EVENT_LIMIT = 100;
/** Events deleted per LevelDB batch while pruning, so one prune never builds a huge batch in memory. */
const PRUNE_BATCH_EVENTS = 1000;
const MAX_EVENT_LIMIT = 10_000;
const SEQUENCE_DIGITS = 16;

export interface ReleaseRecord {
  version: string;
  channel: string;
  notes: string;
  encoding: 'raw' | 'deflate';
  rollout: number;
  size: number;
  sha256: string /* hex */;
  signature: string /* hex */;
  downloadId: string;
  revoked: boolean;
  publishedAt: string /* ISO */;
  /**
   * Instant from which the release is offered, as toISOString writes it (UTC, "Z").
   * Absent means offered from publication on, as for records stored before this
   * field existed.
   */
  startAt?: string;
}

/** A change to a release. A startAt of null clears the start time. */
export interface ReleasePatch {
  revoked?: boolean;
  rollout?: number;
  startAt?: string | null;
}

export interface DeviceRecord {
  id: string;
  channel: string;
  version: string;
  lastSeen: string;
  address: string;
  status: string;
  lastReport?: { outcome: string; target: string; detail?: string; time: string };
}

/**
 * An operator's registration of a device as part of the fleet. It lives in its own
 * sublevel, apart from the DeviceRecord that every check and report rewrites, so those
 * writes cannot drop it. Removing it leaves the device's record and events in place,
 * and a device can be registered before it ever checks in.
 */
export interface RegistrationRecord {
  id: string;
  /** NOTE: informational only; offers follow the channel the device sends in its check. */
  channel: string;
  label: string;
  registeredAt: string /* ISO */;
}

export interface EventRecord {
  time: string;
  type: 'check' | 'offer' | 'download-started' | 'download-finished' | 'report' | 'publish' | 'revoke' | 'rollout' | 'schedule' | 'register' | 'unregister';
  device?: string;
  version?: string;
  outcome?: string;
  detail?: string;
}

export type StoreErrorCode = 'RELEASE_EXISTS' | 'NOT_FOUND' | 'DOWNLOAD_ID_EXISTS' | 'INVALID_RECORD' | 'CLOSED';

export class StoreError extends Error {
  readonly code: StoreErrorCode;

  constructor(code: StoreErrorCode, message: string) {
    super(message);
    this.name = 'StoreError';
    this.code = code;
  }
}

type Db = Level<string, string>;

export class Store {
  private readonly db: Db;
  private readonly releases;
  private readonly downloads;
  private readonly chunks;
  private readonly devices;
  private readonly registrations;
  private readonly events;
  private readonly deviceEvents;
  private readonly logger: pino.Logger | undefined;
  /** All release records, loaded at open: few, read on every check. */
  private readonly releaseCache = new Map<string, ReleaseRecord>();
  /** Cached release records by download id, so the block path never reads LevelDB for them. */
  private readonly releaseByDownload = new Map<string, ReleaseRecord>();
  private readonly chunkCache = new ChunkCache(CHUNK_CACHE_ENTRIES);
  private nextSequence = 0;
  private closed = false;
  /** Tail of the queue that runs release writes one at a time (see serializeReleaseWrite). */
  private releaseWrites: Promise<unknown> = Promise.resolve();

  private constructor(db: Db, logger: pino.Logger | undefined) {
    this.db = db;
    this.logger = logger;
    this.releases = db.sublevel<string, ReleaseRecord>('release', { valueEncoding: 'json' });
    this.downloads = db.sublevel<string, string>('download', { valueEncoding: 'utf8' });
    this.chunks = db.sublevel<string, Buffer>('chunk', { valueEncoding: 'buffer' });
    this.devices = db.sublevel<string, DeviceRecord>('device', { valueEncoding: 'json' });
    this.registrations = db.sublevel<string, RegistrationRecord>('registration', { valueEncoding: 'json' });
    this.events = db.sublevel<string, EventRecord>('event', { valueEncoding: 'json' });
    this.deviceEvents = db.sublevel<string, string>('device-event', { valueEncoding: 'utf8' });
  }

  /** Opens (creating if needed) the database in dir and loads the release records. */
  static async open(dir: string, logger?: pino.Logger): Promise<Store> {
    const db: Db = new Level<string, string>(dir, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
    await db.open();
    const store = new Store(db, logger);
    for await (const record of store.releases.values()) store.cacheRelease(record);
    for await (const key of store.events.keys({ reverse: true, limit: 1 })) store.nextSequence = Number(key) + 1;
    logger?.info({ dataDir: dir, releases: store.releaseCache.size }, 'storage opened');
    return store;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.db.close();
    this.logger?.info('storage closed');
  }

  /** Stores a release and its payload in one atomic batch. */
  putRelease(record: ReleaseRecord, payload: Buffer): Promise<void> {
    return this.serializeReleaseWrite(() => this.putReleaseNow(record, payload));
  }

  /**
   * Runs release writes one after another, because each one checks for a conflict
   * (same version, same payload) across an await before its batch is written.
   */
  private serializeReleaseWrite<T>(write: () => Promise<T>): Promise<T> {
    const result = this.releaseWrites.then(write, write);
    this.releaseWrites = result.catch(() => undefined);
    return result;
  }

  private async putReleaseNow(record: ReleaseRecord, payload: Buffer): Promise<void> {
    this.assertOpen();
    checkReleaseRecord(record, payload);
    for (const existing of this.releaseCache.values()) {
      if (compareVersions(existing.version, record.version) === 0) {
        throw new StoreError('RELEASE_EXISTS', `release ${existing.version} exists; publish ${record.version} under a new version`);
      }
    }
    // Publishing the bytes of an earlier release under a higher version is how a fleet
    // goes back to known-good code, so such releases share the stored payload and its
    // download resource. Only a different payload under the same id is a conflict.
    const owner = await this.downloads.get(record.downloadId);
    const ownerRecord = owner === undefined ? undefined : this.releaseCache.get(owner);
    if (owner !== undefined && !(ownerRecord && samePayload(ownerRecord, record))) {
      throw new StoreError(
        'DOWNLOAD_ID_EXISTS',
        `the payload of ${record.version} has download id ${record.downloadId}, which release ${owner} uses for bytes with another digest or encoding; change the payload`,
      );
    }

    const batch = this.db.batch();
    batch.put(record.version, record, { sublevel: this.releases });
    if (owner === undefined) {
      batch.put(record.downloadId, record.version, { sublevel: this.downloads });
      for (let index = 0; index * CHUNK_BYTES < payload.length; index++) {
        const chunk = payload.subarray(index * CHUNK_BYTES, (index + 1) * CHUNK_BYTES);
        batch.put(chunkKey(record.sha256, index), chunk, { sublevel: this.chunks });
      }
    }
    await batch.write();
    this.cacheRelease({ ...record });
    // A release is downloaded by the fleet soon after it is published, so its chunks
    // go to the cache now rather than one LevelDB read at a time under load.
    for (let index = 0; index * CHUNK_BYTES < payload.length; index++) {
      const chunk = Buffer.from(payload.subarray(index * CHUNK_BYTES, (index + 1) * CHUNK_BYTES));
      this.chunkCache.set(chunkKey(record.sha256, index), chunk);
    }
  }

  private cacheRelease(record: ReleaseRecord): void {
    this.releaseCache.set(record.version, record);
    // Releases that share a payload share its download resource: it is served while
    // any of them is not revoked, under the highest such version.
    let serving: ReleaseRecord | undefined;
    for (const candidate of this.releaseCache.values()) {
      if (candidate.downloadId !== record.downloadId) continue;
      const better =
        !serving || (serving.revoked && !candidate.revoked) || (serving.revoked === candidate.revoked && compareVersions(candidate.version, serving.version) > 0);
      if (better) serving = candidate;
    }
    if (serving) this.releaseByDownload.set(record.downloadId, serving);
  }

  async getRelease(version: string): Promise<ReleaseRecord | undefined> {
    const record = this.releaseCache.get(version);
    return record && { ...record };
  }

  /** Returns every release, highest semantic version first. */
  async listReleases(): Promise<ReleaseRecord[]> {
    return this.releasesSnapshot().map((record) => ({ ...record }));
  }

  /** Returns the cached records without copying, for the per-request paths of this process. */
  releasesSnapshot(): ReleaseRecord[] {
    return [...this.releaseCache.values()].sort((a, b) => compareVersions(b.version, a.version));
  }

  updateRelease(version: string, patch: ReleasePatch): Promise<ReleaseRecord> {
    return this.serializeReleaseWrite(() => this.updateReleaseNow(version, patch));
  }

  private async updateReleaseNow(version: string, patch: ReleasePatch): Promise<ReleaseRecord> {
    this.assertOpen();
    const current = this.releaseCache.get(version);
    if (!current) throw new StoreError('NOT_FOUND', `release ${version} not found; list releases to see the versions`);
    if (patch.rollout !== undefined && !isPercentage(patch.rollout)) {
      throw new StoreError('INVALID_RECORD', `rollout must be an integer 0..100, got ${patch.rollout}`);
    }
    if (patch.startAt !== undefined && patch.startAt !== null) checkStartAt(patch.startAt);
    const updated: ReleaseRecord = { ...current };
    if (patch.revoked !== undefined) updated.revoked = patch.revoked;
    if (patch.rollout !== undefined) updated.rollout = patch.rollout;
    // Cleared means absent, the shape of a record that never had a start time.
    if (patch.startAt === null) delete updated.startAt;
    else if (patch.startAt !== undefined) updated.startAt = patch.startAt;
    await this.releases.put(version, updated);
    this.cacheRelease(updated);
    return { ...updated };
  }

  async getReleaseByDownloadId(id: string): Promise<ReleaseRecord | undefined> {
    const record = this.releaseByDownloadId(id);
    return record && { ...record };
  }

  /**
   * Returns the cached record under a download id without copying, for the block path.
   * The record is replaced, never changed, on update, so callers may key caches on it.
   */
  releaseByDownloadId(id: string): ReleaseRecord | undefined {
    this.assertOpen();
    return this.releaseByDownload.get(id);
  }

  /** Reads chunk `index` (1024 bytes each) of the payload under a download id. */
  async readChunk(downloadId: string, index: number): Promise<Buffer | undefined> {
    const record = await this.getReleaseByDownloadId(downloadId);
    return record && this.readChunkByDigest(record.sha256, index);
  }

  /** Returns chunk `index` of the payload with this SHA-256 (hex) if the LRU cache contains it, without touching LevelDB. */
  cachedChunk(sha256Hex: string, index: number): Buffer | undefined {
    this.assertOpen();
    return this.chunkCache.get(chunkKey(sha256Hex, index));
  }

  /** Reads chunk `index` of the payload with this SHA-256 (hex), through the LRU cache. */
  async readChunkByDigest(sha256Hex: string, index: number): Promise<Buffer | undefined> {
    this.assertOpen();
    const key = chunkKey(sha256Hex, index);
    const cached = this.chunkCache.get(key);
    if (cached) return cached;
    const chunk = await this.chunks.get(key);
    if (chunk) this.chunkCache.set(key, chunk);
    return chunk;
  }

  async getDevice(id: string): Promise<DeviceRecord | undefined> {
    this.assertOpen();
    return this.devices.get(id);
  }

  async listDevices(): Promise<DeviceRecord[]> {
    this.assertOpen();
    return this.devices.values().all();
  }

  async putDevice(record: DeviceRecord): Promise<void> {
    this.assertOpen();
    await this.devices.put(record.id, record);
  }

  async getRegistration(id: string): Promise<RegistrationRecord | undefined> {
    this.assertOpen();
    return this.registrations.get(id);
  }

  async listRegistrations(): Promise<RegistrationRecord[]> {
    this.assertOpen();
    return this.registrations.values().all();
  }

  /** Stores a registration and its `register` event in one atomic batch. */
  async putRegistration(record: RegistrationRecord, event: EventRecord): Promise<void> {
    this.assertOpen();
    const batch = this.db.batch();
    batch.put(record.id, record, { sublevel: this.registrations });
    this.addEvent(batch, event);
    await batch.write();
  }

  /**
   * Deletes a registration and appends its `unregister` event in one atomic batch. The
   * device record and its events stay.
   */
  async deleteRegistration(id: string, event: EventRecord): Promise<void> {
    this.assertOpen();
    const batch = this.db.batch();
    batch.del(id, { sublevel: this.registrations });
    this.addEvent(batch, event);
    await batch.write();
  }

  /** Appends an event under the next sequence number; keys sort in append order. */
  async appendEvent(event: EventRecord): Promise<void> {
    this.assertOpen();
    const batch = this.db.batch();
    this.addEvent(batch, event);
    await batch.write();
  }

  private addEvent(batch: ReturnType<Db['batch']>, event: EventRecord): void {
    const sequence = String(this.nextSequence++).padStart(SEQUENCE_DIGITS, '0');
    batch.put(sequence, event, { sublevel: this.events });
    if (event.device !== undefined) batch.put(`${event.device}/${sequence}`, '', { sublevel: this.deviceEvents });
  }

  /** Returns events newest first; limit defaults to 100 and is capped at 10000. */
  async listEvents(query: { device?: string; limit?: number }): Promise<EventRecord[]> {
    this.assertOpen();
    const limit = Math.min(Math.max(Math.trunc(query.limit ?? DEFAULT_EVENT_LIMIT), 0), MAX_EVENT_LIMIT);
    if (limit === 0) return [];
    if (query.device === undefined) return this.events.values({ reverse: true, limit }).all();

    // '/' sorts before '0', so the range covers exactly this device's keys.
    const prefix = `${query.device}/`;
    const keys = await this.deviceEvents.keys({ gte: prefix, lt: `${query.device}0`, reverse: true, limit }).all();
    const sequences = keys.map((key) => key.slice(prefix.length));
    const events = await this.events.getMany(sequences);
    return events.filter((event): event is EventRecord => event !== undefined);
  }

  /**
   * Deletes the events older than cutoff, oldest first, with their per-device index
   * keys, and returns the number deleted. Events are appended in time order, so the scan
   * stops at the first one at or after cutoff. Times are compared as ISO 8601 UTC text.
   */
  async pruneEvents(cutoff: Date): Promise<number> {
    this.assertOpen();
    const limit = cutoff.toISOString();
    let pruned = 0;
    for (;;) {
      if (this.closed) return pruned;
      const entries = await this.events.iterator({ limit: PRUNE_BATCH_EVENTS }).all();
      const firstKept = entries.findIndex(([, event]) => !(event.time < limit));
      const doomed = firstKept === -1 ? entries : entries.slice(0, firstKept);
      if (doomed.length === 0) return pruned;
      const batch = this.db.batch();
      for (const [sequence, event] of doomed) {
        batch.del(sequence, { sublevel: this.events });
        if (event.device !== undefined) batch.del(`${event.device}/${sequence}`, { sublevel: this.deviceEvents });
      }
      await batch.write();
      pruned += doomed.length;
      if (doomed.length < entries.length) return pruned;
    }
  }

  /** Returns every key and value of the database as hex, in key order, for tests and audits. */
  async dumpRaw(): Promise<Array<[string, string]>> {
    this.assertOpen();
    const raw = this.db as unknown as Level<Buffer, Buffer>;
    const entries = await raw.iterator({ keyEncoding: 'buffer', valueEncoding: 'buffer' }).all();
    return entries.map(([key, value]) => [key.toString('hex'), value.toString('hex')]);
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreError('CLOSED', 'the store is closed; open it again with Store.open(dir)');
  }
}

/** True when two records describe the same stored bytes, so they may share one download resource. */
function samePayload(a: ReleaseRecord, b: ReleaseRecord): boolean {
  return a.sha256 === b.sha256 && a.size === b.size && a.encoding === b.encoding;
}

function chunkKey(sha256Hex: string, index: number): string {
  return `${sha256Hex}/${index.toString(16).padStart(8, '0')}`;
}

function isPercentage(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= 100;
}

function checkStartAt(startAt: unknown): void {
  if (!isStoredStartAt(startAt)) {
    throw new StoreError('INVALID_RECORD', `startAt must be ${START_AT_FORMAT}, normalized to UTC as 2026-12-05T02:00:00.000Z, got ${JSON.stringify(startAt)}`);
  }
}

/** Rejects a record that does not describe its payload, before anything is written. */
function checkReleaseRecord(record: ReleaseRecord, payload: Buffer): void {
  const invalid = (message: string) => new StoreError('INVALID_RECORD', message);
  if (!parseSemVer(record.version)) throw invalid(`version must be a semantic version such as 1.2.3, got "${record.version}"`);
  if (!isPercentage(record.rollout)) throw invalid(`rollout must be an integer 0..100, got ${record.rollout}`);
  if (record.startAt !== undefined) checkStartAt(record.startAt);
  if (record.size !== payload.length) throw invalid(`size is ${record.size} but the payload has ${payload.length} bytes`);
  const digest = createHash('sha256').update(payload).digest();
  if (record.sha256 !== digest.toString('hex')) {
    throw invalid(`sha256 is ${record.sha256} but the payload hashes to ${digest.toString('hex')}`);
  }
  if (record.downloadId !== downloadIdOf(digest)) {
    throw invalid(`downloadId must be ${downloadIdOf(digest)} (the first 12 hex characters of sha256), got ${record.downloadId}`);
  }
}
