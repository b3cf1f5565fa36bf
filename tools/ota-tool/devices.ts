// devices command: lists the devices that have checked in, with their state.
import { AdminClient, type AdminArgs } from './admin-client.ts';
import { EXAMPLES } from './options.ts';
import { formatTable, printResult, type CliIo, type CommonArgs } from './io.ts';

/** A device as the admin API returns it. */
export interface Device {
  id: string;
  channel: string;
  version: string;
  lastSeen: string;
  address: string;
  status: string;
  lastReport?: unknown;
}

const COLUMNS = ['id', 'channel', 'version', 'status', 'last seen', 'address'];

export async function devices(args: CommonArgs & AdminArgs, io: CliIo): Promise<void> {
  const admin = new AdminClient(args, io, EXAMPLES.devices ?? 'ota-tool --help');
  const body = await admin.request<{ devices: Device[] }>('GET', '/api/devices');
  const rows = body.devices.map((device) => [
    device.id,
    device.channel ?? '',
    device.version ?? '',
    device.status ?? '',
    device.lastSeen ?? '',
    device.address ?? '',
  ]);
  printResult(io, args, body, rows.length === 0 ? 'no devices' : formatTable(COLUMNS, rows));
}
