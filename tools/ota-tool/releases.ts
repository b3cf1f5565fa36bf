// releases command: lists the releases the server holds, highest version first.
import type { ReleaseView } from '../../src/admin/routes.ts';
import { AdminClient, type AdminArgs } from './admin-client.ts';
import { EXAMPLES } from './options.ts';
import { formatTable, printResult, type CliIo, type CommonArgs } from './io.ts';

/** A release as the admin API returns it. */
export type Release = ReleaseView;

const COLUMNS = ['version', 'channel', 'rollout', 'encoding', 'size', 'revoked', 'path', 'published', 'starts', 'notes'];

function releaseRow(release: Release): string[] {
  return [
    release.version,
    release.channel,
    `${release.rollout}%`,
    release.encoding,
    String(release.size),
    release.revoked ? 'yes' : 'no',
    release.path,
    release.publishedAt,
    release.startAt ?? '-',
    release.notes ?? '',
  ];
}

/** Formats one release as a table of one row. */
export function formatRelease(release: Release): string {
  return formatTable(COLUMNS, [releaseRow(release)]);
}

export async function releases(args: CommonArgs & AdminArgs, io: CliIo): Promise<void> {
  const admin = new AdminClient(args, io, EXAMPLES.releases ?? 'ota-tool --help');
  const body = await admin.request<{ releases: Release[] }>('GET', '/api/releases');
  const text = body.releases.length === 0 ? 'no releases' : formatTable(COLUMNS, body.releases.map(releaseRow));
  printResult(io, args, body, text);
}
