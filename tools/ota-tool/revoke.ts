// revoke command: withdraws a release, so no device is offered it again.
import { AdminClient, AdminRequestError, type AdminArgs } from './admin-client.ts';
import { EXAMPLES } from './options.ts';
import { CliError, printResult, type CliIo, type CommonArgs } from './io.ts';
import { formatRelease, type Release } from './releases.ts';

export interface RevokeArgs extends CommonArgs, AdminArgs {
  version: string;
}

/** Turns a 404 for a release into a message that names the version. */
export function explainMissingRelease(error: unknown, version: string): unknown {
  if (error instanceof AdminRequestError && error.server.status === 404) {
    return new CliError(`release ${version} not found on the server; list the versions with ota-tool releases`, 'ota-tool releases', error.server.code);
  }
  return error;
}

export async function revoke(args: RevokeArgs, io: CliIo): Promise<void> {
  const admin = new AdminClient(args, io, EXAMPLES.revoke ?? 'ota-tool --help');
  let release: Release;
  try {
    release = await admin.request<Release>('POST', `/api/releases/${encodeURIComponent(args.version)}/revoke`);
  } catch (error) {
    throw explainMissingRelease(error, args.version);
  }
  printResult(io, args, release, `revoked ${release.version}\n${formatRelease(release)}`);
}
