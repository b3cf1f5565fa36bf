// Handlers of the admin HTTP API: releases (publish, list, revoke, rollout, start
// time), devices,
// events and the health check. Each handler returns a status and a JSON-ready body or
// throws an AdminError. server.ts does the HTTP framing and the bearer token check.
import type { KeyObject } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { DEVICE_ID_PATTERN } from '../protocol/constants.ts';
import { StoreError, type DeviceRecord, type EventRecord, type ReleasePatch, type ReleaseRecord, type Store } from '../storage/store.ts';
import { readJsonObject } from './body.ts';
import { AdminError } from './errors.ts';
import { checkRollout, checkStartAt, rejectUnknownFields, validatePublish } from './publish.ts';
import { deviceView, mergeDevices } from './registration.ts';
import { compareVersions, parseSemVer } from '../releases/semver.ts';

export const DEFAULT_EVENT_LIMIT = 100;
export const MAX_EVENT_LIMIT = 1000;

/** Inputs of every handler: the request, its path parameters and the server's parts. */
export interface RouteContext {
  req: IncomingMessage;
  url: URL;
  params: string[];
  store: Store;
  logger: Logger;
  publicKey: KeyObject | null;
  maxBodyBytes: number;
  /**
   * Runs a read-check-write sequence on the store after the previous one finished,
   * so two concurrent requests cannot both pass a check before either writes.
   */
  exclusive: <T>(work: () => Promise<T>) => Promise<T>;
}

export interface RouteResult {
  status: number;
  body: unknown;
}

/** A release as the API shows it: the download path in place of the internal id. */
export interface ReleaseView {
  version: string;
  channel: string;
  notes: string;
  encoding: string;
  rollout: number;
  size: number;
  sha256: string;
  signature: string;
  path: string;
  revoked: boolean;
  publishedAt: string;
  /** Instant (UTC) from which devices are offered the release, or null when they are offered it since publication. */
  startAt: string | null;
}

export function releaseView(record: ReleaseRecord): ReleaseView {
  return {
    version: record.version,
    channel: record.channel,
    notes: record.notes,
    encoding: record.encoding,
    rollout: record.rollout,
    size: record.size,
    sha256: record.sha256,
    signature: record.signature,
    path: `/d/${record.downloadId}`,
    revoked: record.revoked,
    publishedAt: record.publishedAt,
    startAt: record.startAt ?? null,
  };
}

export function health(): RouteResult {
  return { status: 200, body: { ok: true } };
}

export async function listReleases(ctx: RouteContext): Promise<RouteResult> {
  const releases = await ctx.store.listReleases();
  return { status: 200, body: { releases: releases.map(releaseView) } };
}

export async function getRelease(ctx: RouteContext): Promise<RouteResult> {
  const record = await findRelease(ctx.store, ctx.params[0]!);
  return { status: 200, body: releaseView(record) };
}

export async function publishRelease(ctx: RouteContext): Promise<RouteResult> {
  const body = await readJsonObject(ctx.req, ctx.maxBodyBytes);
  const release = validatePublish(body, ctx.publicKey);

  const { payload, ...fields } = release;
  const record: ReleaseRecord = { ...fields, revoked: false, publishedAt: new Date().toISOString() };
  await ctx.exclusive(() => storeRelease(ctx, record, payload));
  ctx.logger.info(
    { version: record.version, channel: record.channel, size: record.size, downloadId: record.downloadId, startAt: record.startAt ?? null },
    'release published',
  );
  return { status: 201, body: releaseView(record) };
}

async function storeRelease(ctx: RouteContext, record: ReleaseRecord, payload: Buffer): Promise<void> {
  try {
    await ctx.store.putRelease(record, payload);
  } catch (err) {
    // The store compares by semver precedence, so 1.0.0+a and 1.0.0+b count as one
    // version: a device could not tell which of the two is newer.
    if (isStoreError(err, 'RELEASE_EXISTS')) {
      throw new AdminError('RELEASE_EXISTS', `a release with the precedence of ${record.version} already exists; publish a higher version`, {
        field: 'version',
      });
    }
    if (isStoreError(err, 'DOWNLOAD_ID_EXISTS')) {
      throw new AdminError('PAYLOAD_EXISTS', `the payload of ${record.version} is already published: ${(err as Error).message}`, { field: 'payload' });
    }
    throw err;
  }
  await ctx.store.appendEvent({
    time: record.publishedAt,
    type: 'publish',
    version: record.version,
    detail: `channel ${record.channel}, rollout ${record.rollout}%, ${record.size} bytes ${record.encoding}${record.startAt ? `, starts ${record.startAt}` : ''}`,
  });
}

export function revokeRelease(ctx: RouteContext): Promise<RouteResult> {
  return ctx.exclusive(() => revokeExclusive(ctx));
}

async function revokeExclusive(ctx: RouteContext): Promise<RouteResult> {
  const version = ctx.params[0]!;
  const record = await findRelease(ctx.store, version);
  // Revoking twice is harmless: the second call returns the release and records nothing.
  if (record.revoked) return { status: 200, body: releaseView(record) };

  const updated = await ctx.store.updateRelease(version, { revoked: true });
  await ctx.store.appendEvent({ time: new Date().toISOString(), type: 'revoke', version });
  ctx.logger.info({ version }, 'release revoked');
  return { status: 200, body: releaseView(updated) };
}

/**
 * Changes the rollout, the start time, or both. Each field that changes gets its own
 * event; a body that changes nothing returns the release and records nothing.
 */
export async function patchRelease(ctx: RouteContext): Promise<RouteResult> {
  const version = ctx.params[0]!;
  const body = await readJsonObject(ctx.req, ctx.maxBodyBytes);
  rejectUnknownFields(body, ['rollout', 'startAt']);
  if (body.rollout === undefined && body.startAt === undefined) {
    throw new AdminError('FIELD_MISSING', 'field "rollout" or "startAt" is required, such as {"rollout":50} or {"startAt":"2026-12-05T02:00:00Z"}');
  }
  const rollout = body.rollout === undefined ? undefined : checkRollout(body.rollout);
  const startAt = body.startAt === undefined ? undefined : checkStartAt(body.startAt);
  return ctx.exclusive(async () => {
    const record = await findRelease(ctx.store, version);
    const patch: ReleasePatch = {};
    if (rollout !== undefined && rollout !== record.rollout) patch.rollout = rollout;
    if (startAt !== undefined && startAt !== (record.startAt ?? null)) patch.startAt = startAt;
    if (patch.rollout === undefined && patch.startAt === undefined) return { status: 200, body: releaseView(record) };

    const updated = await ctx.store.updateRelease(version, patch);
    const time = new Date().toISOString();
    if (patch.rollout !== undefined) {
      await ctx.store.appendEvent({ time, type: 'rollout', version, detail: `${record.rollout}% -> ${patch.rollout}%` });
      ctx.logger.info({ version, from: record.rollout, rollout: patch.rollout }, 'release rollout changed');
    }
    if (patch.startAt !== undefined) {
      const from = record.startAt ?? null;
      await ctx.store.appendEvent({ time, type: 'schedule', version, detail: `start ${from ?? 'none'} -> ${patch.startAt ?? 'none'}` });
      ctx.logger.info({ version, from, startAt: patch.startAt }, 'release start time changed');
    }
    return { status: 200, body: releaseView(updated) };
  });
}

export async function listDevices(ctx: RouteContext): Promise<RouteResult> {
  const [devices, registrations] = await Promise.all([ctx.store.listDevices(), ctx.store.listRegistrations()]);
  return { status: 200, body: { devices: mergeDevices(devices, registrations) } };
}

export async function getDevice(ctx: RouteContext): Promise<RouteResult> {
  const id = ctx.params[0]!;
  const [record, registration] = await Promise.all([ctx.store.getDevice(id), ctx.store.getRegistration(id)]);
  if (!record && !registration) {
    throw new AdminError('DEVICE_NOT_FOUND', `device "${id}" is not known; GET /api/devices lists the devices that checked in or are registered`);
  }
  return { status: 200, body: deviceView(record, registration) };
}

export async function listEvents(ctx: RouteContext): Promise<RouteResult> {
  const device = ctx.url.searchParams.get('device') ?? undefined;
  if (device !== undefined && !DEVICE_ID_PATTERN.test(device)) {
    throw new AdminError('INVALID_QUERY', `device "${device}" must be 1..64 of A-Z, a-z, 0-9, ".", "_" and "-", other than "." and ".."`, { field: 'device' });
  }
  const limitText = ctx.url.searchParams.get('limit');
  let limit = DEFAULT_EVENT_LIMIT;
  if (limitText !== null) {
    limit = /^[0-9]{1,6}$/.test(limitText) ? Number(limitText) : NaN;
    if (!(limit >= 1 && limit <= MAX_EVENT_LIMIT)) {
      throw new AdminError('INVALID_QUERY', `limit "${limitText}" must be an integer 1..${MAX_EVENT_LIMIT}`, { field: 'limit' });
    }
  }
  const events: EventRecord[] = await ctx.store.listEvents(device === undefined ? { limit } : { device, limit });
  return { status: 200, body: { events } };
}

/**
 * Finds a release by its exact version string. A version that differs from a stored one
 * only in build metadata is not resolved to it, because revoke and rollout must act on
 * the release the URL names, but the 404 message names the stored version.
 */
async function findRelease(store: Store, version: string): Promise<ReleaseRecord> {
  const record = await store.getRelease(version);
  if (record) return record;

  const requested = parseSemVer(version);
  const twin = requested && (await store.listReleases()).find((release) => compareVersions(release.version, version) === 0);
  if (twin) {
    throw new AdminError('RELEASE_NOT_FOUND', `release "${version}" does not exist, but "${twin.version}" has the same precedence; use "${twin.version}" in the URL`);
  }
  throw new AdminError('RELEASE_NOT_FOUND', `release "${version}" does not exist; GET /api/releases lists the published versions`);
}

function isStoreError(err: unknown, code: string): boolean {
  return err instanceof StoreError && err.code === code;
}
