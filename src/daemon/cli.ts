// Command-line options of ota-server: one table, each option also read from an
// OTA_* environment variable, and one check that names the option at fault with an
// example that works.
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import yargs from 'yargs';
import { DEFAULT_DEVICE_RATE } from '../coap/device-limit.ts';
import { LOG_LEVELS, type LogLevel } from '../log.ts';
import { DEFAULT_EVENT_RETENTION_DAYS } from './event-retention.ts';
import type { RateLimit } from '../rate-limit.ts';
import { DEFAULT_ADMIN_BIND, DEFAULT_ADMIN_PORT, DEFAULT_COAP_PORT } from './server.ts';

export interface CliOptions {
  coapPort: number;
  bind?: string;
  adminPort: number;
  adminBind: string;
  dataDir: string;
  logLevel: LogLevel;
  adminToken?: string;
  publicKeyPem?: string;
  eventRetentionDays: number;
  knownDevicesOnly: boolean;
  deviceRate: RateLimit | 'off';
}

/** Maximum event retention: 100 years. A larger value is more likely a typo than a policy. */
const MAX_EVENT_RETENTION_DAYS = 36_500;

/** Thrown for an invalid option; main.ts prints it and exits with status 2. */
export class UsageError extends Error {}

/** Parses argv (without node and script) and the OTA_* environment variables; undefined after --help. */
export async function parseCli(argv: string[]): Promise<CliOptions | undefined> {
  try {
    return await parseOptions(argv);
  } catch (err) {
    throw err instanceof UsageError ? new UsageError(nameTheVariable(err.message, argv)) : err;
  }
}

/**
 * Points an error about --flag at OTA_FLAG when the value came from that variable,
 * because the operator never typed the flag the message names.
 */
function nameTheVariable(message: string, argv: string[]): string {
  const flag = /^--([a-z-]+)/.exec(message)?.[1];
  if (flag === undefined || argv.some((arg) => arg === `--${flag}` || arg.startsWith(`--${flag}=`))) return message;
  const variable = `OTA_${flag.toUpperCase().replace(/-/g, '_')}`;
  if (process.env[variable] === undefined) return message;
  return `${variable} (the environment variable of --${flag})${message.slice(flag.length + 2)}`;
}

async function parseOptions(argv: string[]): Promise<CliOptions | undefined> {
  const parser = yargs(argv)
    .scriptName('ota-server')
    .usage('$0 [options]\n\nServes over-the-air updates to Picos over CoAP and the admin API over HTTP.\nEvery option can also be set through the environment variable shown.')
    .env('OTA')
    .options({
      'coap-port': { type: 'string', default: String(DEFAULT_COAP_PORT), requiresArg: true, describe: 'UDP port for CoAP; 0 picks a free one (env OTA_COAP_PORT)' },
      bind: { type: 'string', describe: 'IPv4 or IPv6 address for CoAP; default "::" (dual-stack) where IPv6 exists, else 0.0.0.0 (env OTA_BIND)' },
      'admin-port': { type: 'string', default: String(DEFAULT_ADMIN_PORT), requiresArg: true, describe: 'TCP port for the admin HTTP API; 0 picks a free one (env OTA_ADMIN_PORT)' },
      'admin-bind': { type: 'string', default: DEFAULT_ADMIN_BIND, describe: 'IPv4 or IPv6 address for the admin API (env OTA_ADMIN_BIND)' },
      'data-dir': { type: 'string', default: './data', describe: 'folder of the LevelDB database and the admin-token file (env OTA_DATA_DIR)' },
      'log-level': { type: 'string', default: 'info', choices: LOG_LEVELS, describe: 'lowest pino level written to stdout (env OTA_LOG_LEVEL)' },
      'admin-token': { type: 'string', describe: 'bearer token of the admin API; default: read or create <data-dir>/admin-token, mode 0600 (env OTA_ADMIN_TOKEN)' },
      'public-key': { type: 'string', describe: 'PEM file of the Ed25519 public key; publishes whose signature does not verify are rejected (env OTA_PUBLIC_KEY)' },
      'event-retention-days': {
        type: 'string',
        default: String(DEFAULT_EVENT_RETENTION_DAYS),
        requiresArg: true,
        describe: 'days an event (check, download, report, release change) is kept; older ones are deleted at start and hourly; 0 keeps every event (env OTA_EVENT_RETENTION_DAYS)',
      },
      'known-devices-only': {
        type: 'string',
        describe: 'answer checks and reports only from registered device ids, others get 4.03; true or false, default false (env OTA_KNOWN_DEVICES_ONLY)',
      },
      'device-rate': {
        type: 'string',
        default: String(DEFAULT_DEVICE_RATE.ratePerMinute),
        requiresArg: true,
        describe: 'checks and reports per minute each device id may send over time (POST /c, GET /c, POST /r); more get 5.03 with Max-Age; "off" turns the limit off (env OTA_DEVICE_RATE)',
      },
      'device-burst': {
        type: 'string',
        default: String(DEFAULT_DEVICE_RATE.burst),
        requiresArg: true,
        describe: 'checks and reports a device id may send at once before --device-rate applies (env OTA_DEVICE_BURST)',
      },
    })
    .check((args) => {
      for (const name of OPTION_NAMES) checkGivenOnce(name, args[name]);
      parsePort('--coap-port', args['coap-port'], '--coap-port 5683');
      parsePort('--admin-port', args['admin-port'], '--admin-port 3000');
      if (args.bind !== undefined) checkAddress('--bind', args.bind, '--bind 0.0.0.0 or --bind ::');
      checkAddress('--admin-bind', args['admin-bind'], '--admin-bind 127.0.0.1');
      parseRetentionDays(args['event-retention-days']);
      parseKnownDevicesOnly(argv, args['known-devices-only']);
      parseDeviceRate(args['device-rate'], args['device-burst']);
      if (args['data-dir'] === '') throw new UsageError('--data-dir must not be empty; example: --data-dir /var/lib/ota-server');
      if (args['admin-token'] !== undefined && args['admin-token'].length < 16) {
        throw new UsageError('--admin-token must be at least 16 characters; example: --admin-token "$(openssl rand -hex 32)"');
      }
      return true;
    })
    .strict()
    .help()
    .version(false)
    .exitProcess(false)
    .fail((message, err) => {
      throw err instanceof UsageError ? err : new UsageError(`${message ?? err?.message}; run ota-server --help for the options`);
    });
  const args = await parser.parseAsync();
  if (args.help === true) return undefined;

  const options: CliOptions = {
    coapPort: parsePort('--coap-port', args['coap-port'], '--coap-port 5683'),
    adminPort: parsePort('--admin-port', args['admin-port'], '--admin-port 3000'),
    adminBind: args['admin-bind'],
    dataDir: args['data-dir'],
    logLevel: args['log-level'] as LogLevel,
    eventRetentionDays: parseRetentionDays(args['event-retention-days']),
    knownDevicesOnly: parseKnownDevicesOnly(argv, args['known-devices-only']),
    deviceRate: parseDeviceRate(args['device-rate'], args['device-burst']),
  };
  if (args.bind !== undefined) options.bind = args.bind;
  if (args['admin-token'] !== undefined) options.adminToken = args['admin-token'];
  if (args['public-key'] !== undefined) options.publicKeyPem = readPublicKey(args['public-key']);
  return options;
}

/** Options of the table. yargs turns an option given twice into an array of its values. */
const OPTION_NAMES = [
  'coap-port',
  'bind',
  'admin-port',
  'admin-bind',
  'data-dir',
  'log-level',
  'admin-token',
  'public-key',
  'event-retention-days',
  'known-devices-only',
  'device-rate',
  'device-burst',
] as const;

function checkGivenOnce(name: string, value: unknown): void {
  if (Array.isArray(value)) {
    const values = value.map((item) => JSON.stringify(String(item))).join(', ');
    throw new UsageError(`--${name} was given ${value.length} times (${values}); give it once`);
  }
}

/**
 * Parses a port written as a plain decimal integer. Number() would also take "0x3300",
 * "1e3" and "" (as 0), so the text is matched before it is converted. An empty value,
 * from the flag or from its OTA_* variable, is rejected rather than treated as unset.
 */
function parsePort(flag: string, value: unknown, example: string): number {
  const text = String(value);
  const port = /^[0-9]{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 0 && port <= 65535)) {
    throw new UsageError(`${flag} must be a decimal integer 0..65535 (0 picks a free port), got "${text}"; example: ${example}`);
  }
  return port;
}

function parseRetentionDays(value: unknown): number {
  const text = String(value);
  const days = /^[0-9]{1,6}$/.test(text) ? Number(text) : NaN;
  if (!(days >= 0 && days <= MAX_EVENT_RETENTION_DAYS)) {
    throw new UsageError(
      `--event-retention-days must be a whole number of days 0..${MAX_EVENT_RETENTION_DAYS} (0 keeps every event), got "${text}"; example: --event-retention-days 90`,
    );
  }
  return days;
}

/**
 * Parses --known-devices-only: the bare flag, "true" or "false". The option is
 * declared as a string because yargs' boolean type reads "yes" and "1" as false, which
 * would turn the policy off without a word. A bare flag arrives as "", so an empty value
 * counts as true only when it came from the command line, and an empty
 * OTA_KNOWN_DEVICES_ONLY is rejected like any other empty variable.
 */
function parseKnownDevicesOnly(argv: string[], value: unknown): boolean {
  if (value === undefined) return false;
  const text = String(value);
  const bareFlag = argv.includes('--known-devices-only');
  if (text === 'true' || (text === '' && bareFlag)) return true;
  if (text === 'false') return false;
  throw new UsageError(`--known-devices-only must be true or false, got "${text}"; example: --known-devices-only or OTA_KNOWN_DEVICES_ONLY=true`);
}

/** Largest --device-rate: one request per millisecond, far above anything a device needs. */
const MAX_DEVICE_RATE_PER_MINUTE = 60_000;
/** Largest --device-burst. */
const MAX_DEVICE_BURST = 100_000;

/** Parses --device-rate (decimal requests per minute, or "off") and --device-burst (a positive integer). */
function parseDeviceRate(rateValue: unknown, burstValue: unknown): RateLimit | 'off' {
  const burstText = String(burstValue);
  const burst = /^[0-9]{1,6}$/.test(burstText) ? Number(burstText) : NaN;
  if (!(burst >= 1 && burst <= MAX_DEVICE_BURST)) {
    throw new UsageError(`--device-burst must be a whole number of requests 1..${MAX_DEVICE_BURST}, got "${burstText}"; example: --device-burst ${DEFAULT_DEVICE_RATE.burst}`);
  }
  const rateText = String(rateValue);
  if (rateText === 'off') return 'off';
  const example = `example: --device-rate ${DEFAULT_DEVICE_RATE.ratePerMinute}, or --device-rate off to turn the limit off`;
  const rate = /^[0-9]{1,6}(\.[0-9]{1,6})?$/.test(rateText) ? Number(rateText) : NaN;
  if (rate === 0) {
    throw new UsageError(`--device-rate must not be 0, which would reject every device forever once its burst is spent; ${example}`);
  }
  if (!(rate > 0 && rate <= MAX_DEVICE_RATE_PER_MINUTE)) {
    throw new UsageError(`--device-rate must be a decimal number of requests per minute above 0 and at most ${MAX_DEVICE_RATE_PER_MINUTE}, or "off", got "${rateText}"; ${example}`);
  }
  return { burst, ratePerMinute: rate };
}

function checkAddress(flag: string, value: string, example: string): void {
  if (isIP(value) === 0) throw new UsageError(`${flag} must be an IPv4 or IPv6 address, got "${value}"; example: ${example}`);
}

function readPublicKey(file: string): string {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--public-key file ${file} cannot be read (${(err as Error).message}); example: --public-key release.key.pub`);
  }
  if (isPrivateKey(pem)) {
    throw new UsageError(
      `--public-key file ${file} contains a private key, which must stay with the release engineer; pass the public key that ota-tool keygen wrote beside it, such as ${file}.pub`,
    );
  }
  let type: string | undefined;
  try {
    type = createPublicKey(pem).asymmetricKeyType;
  } catch {
    type = undefined;
  }
  if (type !== 'ed25519') {
    throw new UsageError(`--public-key file ${file} must hold an Ed25519 public key in PEM, got ${type ?? 'no public key'}; example: --public-key release.key.pub`);
  }
  return pem;
}

/** True when the PEM parses as a private key; createPublicKey would silently derive its public half. */
function isPrivateKey(pem: string): boolean {
  try {
    createPrivateKey(pem);
    return true;
  } catch {
    return false;
  }
}
