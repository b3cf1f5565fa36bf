// events command: lists recorded device events (checks, reports), newest first.
import { AdminClient, type AdminArgs } from './admin-client.ts';
import { EXAMPLES } from './options.ts';
import { formatTable, printResult, type CliIo, type CommonArgs } from './io.ts';

export interface EventsArgs extends CommonArgs, AdminArgs {
  device?: string;
  limit: number;
}

function cellText(value: unknown): string {
  if (value === undefined || value === null) return '';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

export async function events(args: EventsArgs, io: CliIo): Promise<void> {
  const admin = new AdminClient(args, io, EXAMPLES.events ?? 'ota-tool --help');
  const query = new URLSearchParams({ limit: String(args.limit) });
  if (args.device) query.set('device', args.device);
  const body = await admin.request<{ events: Record<string, unknown>[] }>('GET', `/api/events?${query}`);

  // The event fields differ by kind, so the columns are the union of the fields seen.
  const columns: string[] = [];
  for (const event of body.events) {
    for (const field of Object.keys(event)) if (!columns.includes(field)) columns.push(field);
  }
  const rows = body.events.map((event) => columns.map((column) => cellText(event[column])));
  printResult(io, args, body, rows.length === 0 ? 'no events' : formatTable(columns, rows));
}
