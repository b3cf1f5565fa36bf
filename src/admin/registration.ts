// Device registration in the admin API: an operator's list of the devices that belong
// to the fleet, each with a channel and a free-text label. PUT creates or replaces a
// registration, DELETE removes it, and the device's record and events stay either way.
import { CHANNEL_PATTERN, DEFAULT_CHANNEL, DEVICE_ID_PATTERN } from '../protocol/constants.ts';
import type { DeviceRecord, EventRecord, RegistrationRecord } from '../storage/store.ts';
import { readJsonObject } from './body.ts';
import { AdminError } from './errors.ts';
import { rejectUnknownFields } from './publish.ts';
import type { RouteContext, RouteResult } from './routes.ts';

/** Maximum label length in UTF-8 bytes: enough for a location and an owner, short enough for a table cell. */
export const MAX_LABEL_BYTES = 200;
const REGISTRATION_FIELDS = ['channel', 'label'];
/**
 * Characters a label may not contain. C0 and C1 controls, DEL and the Unicode line and
 * paragraph separators break the one-line tables of ota-tool and the log lines.
 * Bidirectional controls can make a label read differently from what it is.
 */
export const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
/** A UTF-16 surrogate without its partner: not a character, so not storable as UTF-8 text. */
export const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** A device as the devices list shows it: its last check-in merged with its registration. */
export interface DeviceView {
  id: string;
  channel: string;
  /** null until the device checks in or reports, for a device that is only registered. */
  version: string | null;
  lastSeen: string | null;
  address: string | null;
  status: string;
  lastReport: DeviceRecord['lastReport'] | null;
  registered: boolean;
  /** The registration's label; null when the device is not registered. */
  label: string | null;
  registeredAt: string | null;
}

/** Status of a registered device that has not checked in yet. */
export const STATUS_NOT_SEEN = 'not-seen';

/**
 * Builds the view of one device from its record, its registration or both. The
 * channel is the one the device last checked in with, else the registered one.
 */
export function deviceView(record: DeviceRecord | undefined, registration: RegistrationRecord | undefined): DeviceView {
  const id = record?.id ?? registration?.id;
  if (id === undefined) throw new Error('deviceView needs a device record or a registration');
  return {
    id,
    channel: record?.channel ?? registration?.channel ?? DEFAULT_CHANNEL,
    version: record?.version ?? null,
    lastSeen: record?.lastSeen ?? null,
    address: record?.address ?? null,
    status: record?.status ?? STATUS_NOT_SEEN,
    lastReport: record?.lastReport ?? null,
    registered: registration !== undefined,
    label: registration?.label ?? null,
    registeredAt: registration?.registeredAt ?? null,
  };
}

/** Merges device records and registrations into one list sorted by device id. */
export function mergeDevices(records: DeviceRecord[], registrations: RegistrationRecord[]): DeviceView[] {
  const byId = new Map<string, { record?: DeviceRecord; registration?: RegistrationRecord }>();
  for (const record of records) byId.set(record.id, { record });
  for (const registration of registrations) byId.set(registration.id, { ...byId.get(registration.id), registration });
  return [...byId.keys()]
    .sort()
    .map((id) => {
      const entry = byId.get(id)!;
      return deviceView(entry.record, entry.registration);
    });
}

/** Checks the device id of a registration path. */
export function checkDeviceIdParam(id: string): void {
  if (!DEVICE_ID_PATTERN.test(id)) {
    throw new AdminError('FIELD_INVALID', `device id "${id}" must be 1..64 of A-Z, a-z, 0-9, ".", "_" and "-", other than "." and "..", such as pico-001`, { field: 'id' });
  }
}

/** Checks a registration body; absent fields get their defaults, as PUT replaces the whole registration. */
export function validateRegistration(body: Record<string, unknown>): { channel: string; label: string } {
  rejectUnknownFields(body, REGISTRATION_FIELDS);
  const channel = body.channel ?? DEFAULT_CHANNEL;
  if (typeof channel !== 'string' || !CHANNEL_PATTERN.test(channel)) {
    throw new AdminError('FIELD_INVALID', `channel ${JSON.stringify(channel)} must be a string of 1..32 of a-z, 0-9 and "-", such as "stable"`, { field: 'channel' });
  }
  const label = body.label ?? '';
  if (typeof label !== 'string') {
    throw new AdminError('FIELD_INVALID', `label must be a string, got ${JSON.stringify(label)}; send text such as "greenhouse 3"`, { field: 'label' });
  }
  const bytes = Buffer.byteLength(label, 'utf8');
  if (bytes > MAX_LABEL_BYTES) {
    throw new AdminError('FIELD_INVALID', `label has ${bytes} bytes of UTF-8, at most ${MAX_LABEL_BYTES} are allowed; shorten it`, { field: 'label' });
  }
  if (CONTROL_CHARACTER.test(label) || LONE_SURROGATE.test(label)) {
    throw new AdminError(
      'FIELD_INVALID',
      'label contains a control character (such as a line break, a tab or a text-direction mark) or a lone surrogate; send it as one line of plain text',
      { field: 'label' },
    );
  }
  return { channel, label };
}

export async function getRegistration(ctx: RouteContext): Promise<RouteResult> {
  const id = ctx.params[0]!;
  checkDeviceIdParam(id);
  return { status: 200, body: await findRegistration(ctx, id) };
}

/**
 * Creates or replaces a registration. Registering an id again is an idempotent update,
 * not a conflict, so re-running `ota-tool device add` is safe. An unchanged
 * registration is returned as it is, and no event is recorded.
 */
export async function putRegistration(ctx: RouteContext): Promise<RouteResult> {
  const id = ctx.params[0]!;
  checkDeviceIdParam(id);
  const { channel, label } = validateRegistration(await readJsonObject(ctx.req, ctx.maxBodyBytes));

  return ctx.exclusive(async () => {
    const previous = await ctx.store.getRegistration(id);
    if (previous && previous.channel === channel && previous.label === label) return { status: 200, body: previous };

    const now = new Date().toISOString();
    const record: RegistrationRecord = { id, channel, label, registeredAt: previous?.registeredAt ?? now };
    const detail = `${previous ? 'updated: ' : ''}${describe(record)}`;
    const event: EventRecord = { time: now, type: 'register', device: id, detail };
    await ctx.store.putRegistration(record, event);
    ctx.logger.info({ deviceId: id, channel, updated: previous !== undefined }, 'device registered');
    return { status: previous ? 200 : 201, body: record };
  });
}

/** Removes a registration; the device record and its events stay. */
export async function deleteRegistration(ctx: RouteContext): Promise<RouteResult> {
  const id = ctx.params[0]!;
  checkDeviceIdParam(id);
  return ctx.exclusive(async () => {
    const previous = await findRegistration(ctx, id);
    const event: EventRecord = { time: new Date().toISOString(), type: 'unregister', device: id, detail: describe(previous) };
    await ctx.store.deleteRegistration(id, event);
    ctx.logger.info({ deviceId: id }, 'device registration removed');
    return { status: 200, body: previous };
  });
}

async function findRegistration(ctx: RouteContext, id: string): Promise<RegistrationRecord> {
  const registration = await ctx.store.getRegistration(id);
  if (!registration) {
    throw new AdminError('DEVICE_NOT_FOUND', `device "${id}" is not registered; GET /api/devices lists the devices and their "registered" flag`);
  }
  return registration;
}

function describe(record: RegistrationRecord): string {
  return record.label === '' ? `channel ${record.channel}` : `channel ${record.channel}, label ${JSON.stringify(record.label)}`;
}
