// device remove command: removes a device's registration on ota-server. The device's
// record and events stay on the server, and its configuration file is not touched.
import { AdminClient, AdminRequestError, type AdminArgs } from './admin-client.ts';
import type { Registration } from './device-add.ts';
import { CliError, printResult, type CliIo, type CommonArgs } from './io.ts';
import { EXAMPLES } from './options.ts';

export interface DeviceRemoveArgs extends CommonArgs, AdminArgs {
  id: string;
}

export async function deviceRemove(args: DeviceRemoveArgs, io: CliIo): Promise<void> {
  const admin = new AdminClient(args, io, EXAMPLES['device remove'] ?? 'ota-tool --help');
  let removed: Registration;
  try {
    removed = await admin.request<Registration>('DELETE', `/api/devices/${encodeURIComponent(args.id)}/registration`);
  } catch (error) {
    if (error instanceof AdminRequestError && error.server.status === 404) {
      throw new CliError(`device ${args.id} is not registered on ${admin.server}; ota-tool devices lists the devices and whether each is registered`, EXAMPLES.devices, error.server.code);
    }
    throw error;
  }
  const label = removed.label === '' ? '' : `, label "${removed.label}"`;
  printResult(io, args, removed, `removed the registration of ${removed.id} (channel ${removed.channel}${label}); its history stays on the server`);
}
