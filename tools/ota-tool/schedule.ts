// schedule command: sets or clears the instant from which a release is offered, and
// the start time forms that it and publish --start-at accept.
import { parseInstant, START_AT_FORMAT, type ParsedInstant } from '../../src/releases/start-time.ts';
import { AdminClient, type AdminArgs } from './admin-client.ts';
import { EXAMPLES } from './options.ts';
import { printResult, type CliIo, type CommonArgs } from './io.ts';
import { formatRelease, type Release } from './releases.ts';
import { explainMissingRelease } from './revoke.ts';

export interface ScheduleArgs extends CommonArgs, AdminArgs {
  version: string;
  /** New start time as an absolute UTC instant, because validateArgs resolves forms such as +2h. */
  at?: string;
  now?: boolean;
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
/** A time from now: "+", a count and one unit, such as +90m or +2h. */
const RELATIVE_PATTERN = /^\+([0-9]{1,6})([smhd])$/;

/**
 * Resolves a start time as typed: an ISO 8601 instant with Z or an offset, or a
 * time from nowMs such as +2h. Returns the UTC instant that the server stores.
 */
export function resolveStartTime(text: string, nowMs: number): ParsedInstant {
  const relative = RELATIVE_PATTERN.exec(text);
  if (!relative) {
    const parsed = parseInstant(text);
    if (parsed.ok || !parsed.problem.includes(START_AT_FORMAT)) return parsed;
    return { ok: false, problem: `${parsed.problem}, or +N followed by s, m, h or d for a time from now, such as +2h` };
  }
  const ms = nowMs + Number(relative[1]) * UNIT_MS[relative[2]!]!;
  return parseInstant(new Date(ms).toISOString());
}

export async function schedule(args: ScheduleArgs, io: CliIo): Promise<void> {
  const admin = new AdminClient(args, io, EXAMPLES.schedule ?? 'ota-tool --help');
  let release: Release;
  try {
    release = await admin.request<Release>('PATCH', `/api/releases/${encodeURIComponent(args.version)}`, { startAt: args.at ?? null });
  } catch (error) {
    throw explainMissingRelease(error, args.version);
  }
  const summary = release.startAt === null ? `${release.version} has no start time and is offered from now on` : `${release.version} is offered from ${release.startAt}`;
  const revoked = release.revoked ? ' (but it is revoked, so it is offered to no device)' : '';
  printResult(io, args, release, `${summary}${revoked}\n${formatRelease(release)}`);
}
