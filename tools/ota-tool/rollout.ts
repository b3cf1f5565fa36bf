// rollout command: sets the share of devices (0..100 %) that is offered a release.
import { AdminClient, type AdminArgs } from './admin-client.ts';
import { EXAMPLES } from './options.ts';
import { printResult, type CliIo, type CommonArgs } from './io.ts';
import { formatRelease, type Release } from './releases.ts';
import { explainMissingRelease } from './revoke.ts';

export interface RolloutArgs extends CommonArgs, AdminArgs {
  version: string;
  percent: number;
}

export async function rollout(args: RolloutArgs, io: CliIo): Promise<void> {
  const admin = new AdminClient(args, io, EXAMPLES.rollout ?? 'ota-tool --help');
  let release: Release;
  try {
    release = await admin.request<Release>('PATCH', `/api/releases/${encodeURIComponent(args.version)}`, { rollout: args.percent });
  } catch (error) {
    throw explainMissingRelease(error, args.version);
  }
  printResult(io, args, release, `rollout of ${release.version} is now ${release.rollout}%\n${formatRelease(release)}`);
}
