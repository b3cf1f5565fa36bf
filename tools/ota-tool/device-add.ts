// device add command: writes ota_config.json, the configuration file the firmware
// reads at boot (server, APN, device id, check interval, release public key), and
// registers the device on ota-server when given an admin token or --admin-server.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { DEFAULT_CHANNEL } from '../../src/protocol/constants.ts';
import type { RegistrationRecord } from '../../src/storage/store.ts';
import { DEFAULT_COAP_PORT } from './coap-client.ts';
import { AdminClient, DEFAULT_ADMIN_SERVER } from './admin-client.ts';
import { CliError, printResult, type CliIo, type CommonArgs } from './io.ts';
import { loadPublicKey, rawPublicKey } from './keys.ts';

export const CONFIG_FILE_NAME = 'ota_config.json';

export interface DeviceAddArgs extends CommonArgs {
  id: string;
  server: string;
  apn: string;
  publicKey: string;
  channel: string;
  checkInterval: number;
  out: string;
  force: boolean;
  /** Admin API URL; with it, --token or --token-file, the device is registered there too. */
  adminServer?: string;
  token?: string;
  tokenFile?: string;
  label?: string;
}

/** A registration as the admin API returns it: the stored record as it is. */
export type Registration = RegistrationRecord;

/** The device configuration file; the firmware reads these exact keys. */
export interface DeviceConfig {
  device_id: string;
  server: string;
  port: number;
  apn: string;
  channel: string;
  check_interval_s: number;
  /** Raw Ed25519 public key, 64 hex characters. */
  public_key: string;
}

const EXAMPLE = 'ota-tool device add pico-001 --server ota.example.net:5683 --apn iot.example --public-key release.key.pub';

/** Splits HOST[:PORT]; an IPv6 address goes in brackets, as in [2001:db8::1]:5683. */
export function parseServer(server: string): { host: string; port: number } {
  // An IPv6 address alone has colons, so it reads as HOST:PORT unless it is bracketed.
  if (isIP(server) === 6) {
    throw new CliError(`--server "${server}" is an IPv6 address, which goes in brackets: --server [${server}] or --server [${server}]:${DEFAULT_COAP_PORT}`, EXAMPLE, 'USAGE');
  }
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+))(?::(\d{1,5}))?$/.exec(server);
  if (!match || (match[1] !== undefined && isIP(match[1]) !== 6)) {
    throw new CliError(`--server "${server}" must be HOST or HOST:PORT, such as ota.example.net:5683, 192.0.2.10 or [2001:db8::1]:5683`, EXAMPLE, 'USAGE');
  }
  const host = match[1] ?? match[2] ?? '';
  const port = match[3] === undefined ? DEFAULT_COAP_PORT : Number(match[3]);
  if (port < 1 || port > 65535) throw new CliError(`--server port ${port} must be in 1..65535`, EXAMPLE, 'USAGE');
  return { host, port };
}

/** True for names and addresses that mean this computer, which a Pico on NB-IoT can never reach. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost') || host.startsWith('127.') || host === '::1';
}

export async function deviceAdd(args: DeviceAddArgs, io: CliIo): Promise<void> {
  const { host, port } = parseServer(args.server);
  if (isLoopback(host)) {
    // Still written: the simulator and tests run the firmware on this computer.
    io.stderr(`warning: --server ${host} is this computer's loopback address, which a Pico on NB-IoT cannot reach; use the server's public name or address unless the device is simulated here\n`);
  }
  const publicKey = rawPublicKey(loadPublicKey(args.publicKey, EXAMPLE)).toString('hex');
  const config: DeviceConfig = {
    device_id: args.id,
    server: host,
    port,
    apn: args.apn,
    channel: args.channel ?? DEFAULT_CHANNEL,
    check_interval_s: args.checkInterval,
    public_key: publicKey,
  };

  const file = join(args.out, CONFIG_FILE_NAME);
  if (existsSync(file) && !args.force) {
    throw new CliError(`${file} already exists; pass --force to replace it or --out to write elsewhere`, `${EXAMPLE} --out devices/${args.id}`, 'FILE_EXISTS');
  }

  // Registration comes first, so a config file is never written for a device that the
  // server would turn away under --known-devices-only. Registering again is an
  // idempotent update, so running the command again after any failure is safe.
  const registration = registers(args) ? await register(args, config.channel, file, io) : undefined;
  try {
    mkdirSync(args.out, { recursive: true });
    writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
  } catch (error) {
    const registered = registration ? `${args.id} is registered on the server, but ` : '';
    throw new CliError(`${registered}${file} could not be written: ${(error as Error).message}; fix the folder and run the command again`, EXAMPLE, 'FILE_WRITE_FAILED');
  }

  let text = `wrote ${file} for ${args.id}: server ${host}:${port}, APN ${args.apn}, channel ${config.channel}, check every ${args.checkInterval} s`;
  if (registration) text += `\nregistered ${args.id} on ${registration.server} (${registration.outcome})`;
  const result = registration ? { file, config, registration: registration.record } : { file, config };
  printResult(io, args, result, text);
}

function registers(args: DeviceAddArgs): boolean {
  return args.adminServer !== undefined || args.token !== undefined || args.tokenFile !== undefined;
}

async function register(args: DeviceAddArgs, channel: string, file: string, io: CliIo): Promise<{ server: string; outcome: string; record: Registration }> {
  const admin = new AdminClient({ server: args.adminServer ?? DEFAULT_ADMIN_SERVER, token: args.token, tokenFile: args.tokenFile }, io, `${EXAMPLE} --token-file data/admin-token`);
  const path = `/api/devices/${encodeURIComponent(args.id)}/registration`;
  let previous: Registration | undefined;
  let record: Registration;
  try {
    previous = await admin.request<Registration>('GET', path).catch((error: unknown) => {
      if (error instanceof CliError && error.code === 'DEVICE_NOT_FOUND') return undefined;
      throw error;
    });
    record = await admin.request<Registration>('PUT', path, { channel, label: args.label ?? previous?.label ?? '' });
  } catch (error) {
    const reason = (error as Error).message;
    const example = error instanceof CliError ? error.example : undefined;
    const code = error instanceof CliError ? error.code : 'REGISTRATION_FAILED';
    throw new CliError(`device ${args.id} was not registered, so ${file} was not written: ${reason}`, example ?? EXAMPLE, code);
  }
  let outcome = 'new';
  if (previous) outcome = previous.channel === record.channel && previous.label === record.label ? 'unchanged' : 'updated';
  return { server: admin.server, outcome, record };
}
