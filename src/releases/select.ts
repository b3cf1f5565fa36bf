// Offer selection: which release, if any, a device that checks in is offered. Pure
// functions over release records and the current time, so the CoAP side and the
// admin side agree and tests can set the clock.
import { createHash } from 'node:crypto';
import type { ReleaseRecord } from '../storage/store.ts';
import { compareSemVer, parseSemVer, type SemVer } from './semver.ts';

/**
 * Returns the rollout cohort of a device for one release, 0..99: the first 4 bytes of
 * SHA-256("<device id>/<version>") as a big-endian integer, modulo 100. The hash is
 * stable, so raising the percentage only adds devices and never flips one out.
 */
export function rolloutCohort(deviceId: string, version: string): number {
  const digest = createHash('sha256').update(`${deviceId}/${version}`, 'utf8').digest();
  return digest.readUInt32BE(0) % 100;
}

export function inRollout(deviceId: string, release: Pick<ReleaseRecord, 'version' | 'rollout'>): boolean {
  return rolloutCohort(deviceId, release.version) < release.rollout;
}

/** True when the release has no start time or its start time is at or before nowMs (milliseconds since the epoch). */
export function hasStarted(release: Pick<ReleaseRecord, 'startAt'>, nowMs: number): boolean {
  return release.startAt === undefined || Date.parse(release.startAt) <= nowMs;
}

/**
 * Picks the highest release in the device's channel that is newer than what it runs.
 * Revoked releases, those whose start time is after nowMs (milliseconds since the
 * epoch) and those whose rollout excludes the device are skipped.
 */
export function selectOffer(
  releases: readonly ReleaseRecord[],
  device: { id: string; version: SemVer; channel: string },
  nowMs: number,
): ReleaseRecord | undefined {
  let best: { record: ReleaseRecord; version: SemVer } | undefined;
  for (const record of releases) {
    if (record.revoked || record.channel !== device.channel || !hasStarted(record, nowMs)) continue;
    const version = parseSemVer(record.version);
    if (!version || compareSemVer(version, device.version) <= 0) continue;
    if (!inRollout(device.id, record)) continue;
    if (!best || compareSemVer(version, best.version) > 0) best = { record, version };
  }
  return best?.record;
}

/**
 * Returns the milliseconds from nowMs until the earliest start time among the
 * releases not yet started in this channel and not revoked, or undefined when there
 * is none. The response to a check may change at that instant, so no cache may
 * keep it past that.
 */
export function msUntilNextStart(releases: readonly ReleaseRecord[], channel: string, nowMs: number): number | undefined {
  let earliest: number | undefined;
  for (const record of releases) {
    if (record.revoked || record.channel !== channel || record.startAt === undefined) continue;
    const startMs = Date.parse(record.startAt);
    if (startMs > nowMs && (earliest === undefined || startMs < earliest)) earliest = startMs;
  }
  return earliest === undefined ? undefined : earliest - nowMs;
}
