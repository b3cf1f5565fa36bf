// devices command: lists the devices that have checked in or are registered, with their state.
import { AdminClient, type AdminArgs } from './admin-client.ts';
import { EXAMPLES } from './options.ts';
import { formatTable, printResult, type CliIo, type CommonArgs } from './io.ts';

/** A device as the admin API returns it. */
export interface Device {
  id: string;
  channel: string;
  version: string | null;
  lastSeen: string | null;
  address: string | null;
  status: string;
  lastReport?: unknown;
  /** Absent from servers older than device registration. */
  registered?: boolean;
  label?: string | null;
}

const COLUMNS = ['id', 'registered', 'channel', 'version', 'status', 'last seen', 'address', 'label'];

export async function devices(args: CommonArgs & AdminArgs, io: CliIo): Promise<void> {
  const admin = new AdminClient(args, io, EXAMPLES.devices ?? 'ota-tool --help');
  const body = await admin.request<{ devices: Device[] }>('GET', '/api/devices');
  const rows = body.devices.map((device) => [
    device.id,
    device.registered ? 'yes' : 'no',
    device.channel ?? '',
    device.version ?? '',
    device.status ?? '',
    device.lastSeen ?? '',
    device.address ?? '',
    device.label ?? '',
  ]);
  printResult(io, args, body, rows.length === 0 ? 'no devices' : formatTable(COLUMNS, rows));
}
