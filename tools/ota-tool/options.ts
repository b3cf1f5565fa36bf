// Every ota-tool option in one typed table, the commands that use them, and the
// rules between options in one validation function that yargs runs as its check.
import type { Options } from 'yargs';
import { CHANNEL_PATTERN, DEVICE_ID_PATTERN } from '../../src/protocol/constants.ts';
import { CONTROL_CHARACTER, LONE_SURROGATE, MAX_LABEL_BYTES } from '../../src/admin/registration.ts';
import { DEFAULT_ADMIN_SERVER, normalizeServer } from './admin-client.ts';
import { parseCoapUri, szxOf } from './coap-client.ts';
import { parseServer } from './device-add.ts';
import { CliError, versionProblem } from './io.ts';
import { resolveStartTime } from './schedule.ts';

export const OPTIONS = {
  json: { type: 'boolean', default: false, describe: 'Print one JSON object for scripts instead of text' },
  key: { type: 'string', describe: 'Ed25519 private key file (PKCS#8 PEM); the public key goes to FILE.pub', requiresArg: true },
  force: { type: 'boolean', default: false, describe: 'Overwrite existing files' },
  version: { type: 'string', describe: 'Release version, semantic version such as 1.2.0', requiresArg: true },
  channel: { type: 'string', default: 'stable', describe: 'Release channel: lower-case letters, digits, "-"', requiresArg: true },
  notes: { type: 'string', default: '', describe: 'Release notes for people' },
  rollout: { type: 'string', default: '100', describe: 'Percentage of devices (0..100) offered the release', requiresArg: true },
  allowEmpty: { type: 'boolean', default: false, describe: 'Publish files of 0 bytes, which are rejected otherwise' },
  encoding: { choices: ['auto', 'raw', 'deflate'], default: 'auto', describe: 'Payload encoding; auto deflates when that makes it smaller' },
  startAt: {
    type: 'string',
    describe: 'Offer the release from this instant on: ISO 8601 with Z or an offset (2026-12-05T02:00:00Z), or +N followed by s, m, h or d from now (+2h)',
    requiresArg: true,
  },
  at: { type: 'string', describe: 'New start time: ISO 8601 with Z or an offset (2026-12-05T02:00:00Z), or +N followed by s, m, h or d from now (+2h)', requiresArg: true },
  now: { type: 'boolean', describe: 'Clear the start time, so the release is offered from now on' },
  nameAs: { type: 'string', describe: 'Name of the single file inside the bundle, such as app.py', requiresArg: true },
  adminServer: { type: 'string', default: DEFAULT_ADMIN_SERVER, describe: 'Admin API base URL of ota-server', requiresArg: true },
  token: { type: 'string', describe: 'Admin token (default: $OTA_ADMIN_TOKEN)', requiresArg: true },
  tokenFile: { type: 'string', describe: 'File containing the admin token, such as <data-dir>/admin-token', requiresArg: true },
  device: { type: 'string', describe: 'Device id: letters, digits, ".", "_", "-", at most 64', requiresArg: true },
  limit: { type: 'string', default: '50', describe: 'Maximum number of events, 1..1000', requiresArg: true },
  coapServer: { type: 'string', describe: 'CoAP server URI, such as coap://127.0.0.1:5683', requiresArg: true },
  timeout: {
    type: 'string',
   
    describe: 'Seconds to wait for the response to one request, retransmissions included (default 93, RFC 7252 MAX_TRANSMIT_WAIT)',
    requiresArg: true,
  },
  current: { type: 'string', describe: 'Version the device runs', requiresArg: true },
  checkChannel: { type: 'string', describe: 'Channel the device follows (default: stable, sent only when given)', requiresArg: true },
  publicKey: { type: 'string', describe: 'Ed25519 public key file (SPKI PEM), such as release.key.pub', requiresArg: true },
  outFile: { type: 'string', describe: 'File to write', requiresArg: true },
  outDir: { type: 'string', describe: 'Folder to write into', requiresArg: true },
  blockSize: { type: 'string', default: '1024', describe: 'Block size in bytes: 16, 32, 64, 128, 256, 512 or 1024', requiresArg: true },
  sha256: { type: 'string', describe: 'Expected SHA-256 of the download, 64 hex characters', requiresArg: true },
  size: { type: 'string', describe: 'Expected size of the download in bytes', requiresArg: true },
  restart: { type: 'boolean', default: false, describe: 'Discard FILE.part of an interrupted download and start at block 0' },
  deviceServer: { type: 'string', describe: 'Server the device contacts: HOST or HOST:PORT (default port 5683)', requiresArg: true },
  apn: { type: 'string', describe: 'Access point name of the SIM card', requiresArg: true },
  configChannel: { type: 'string', default: 'stable', describe: 'Channel the device follows', requiresArg: true },
  checkInterval: { type: 'string', default: '3600', describe: 'Seconds between update checks, 60..2592000', requiresArg: true },
  registerServer: {
    type: 'string',
    describe: `Admin API base URL of ota-server to register the device on (default ${DEFAULT_ADMIN_SERVER} when --token or --token-file is given)`,
    requiresArg: true,
  },
  label: { type: 'string', describe: `Label for people stored with the registration, at most ${MAX_LABEL_BYTES} bytes`, requiresArg: true },
} as const satisfies Record<string, Options>;

export type OptionId = keyof typeof OPTIONS;

/**
 * Flags whose values are whole numbers. They are declared as strings because yargs'
 * number type takes "0x10" and "1e3" and turns "abc" into NaN. validateArgs checks
 * the text and stores the number under the flag and its camelCase alias.
 */
const DECIMAL_FLAGS = ['rollout', 'percent', 'limit', 'timeout', 'block-size', 'size', 'check-interval'];

function convertDecimals(command: string, argv: Record<string, unknown>): void {
  for (const flag of DECIMAL_FLAGS) {
    const value = argv[flag];
    if (value === undefined || typeof value === 'number') continue;
    const text = String(value);
    const name = flag === 'percent' ? '<percent>' : `--${flag}`;
    if (!/^[0-9]{1,15}$/.test(text)) fail(command, `${name} must be a decimal integer, got "${text}"`);
    const camel = flag.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
    argv[flag] = Number(text);
    argv[camel] = Number(text);
  }
}

/** Picks options from the table: keys are the flag names, values the table ids. */
export function pick(flags: Record<string, OptionId>, required: string[] = []): Record<string, Options> {
  const picked: Record<string, Options> = {};
  for (const [flag, id] of Object.entries(flags)) {
    picked[flag] = { ...OPTIONS[id], ...(required.includes(flag) ? { demandOption: true } : {}) };
  }
  return picked;
}

export const ADMIN_FLAGS = { server: 'adminServer', token: 'token', 'token-file': 'tokenFile' } as const satisfies Record<string, OptionId>;

/** A command line that works, per command; help shows it and errors repeat it. */
export const EXAMPLES: Record<string, string> = {
  keygen: 'ota-tool keygen --key release.key',
  publish: 'ota-tool publish app.py --version 1.2.0 --key release.key --server http://127.0.0.1:3000 --token-file data/admin-token',
  releases: 'ota-tool releases --server http://127.0.0.1:3000',
  devices: 'ota-tool devices --server http://127.0.0.1:3000',
  events: 'ota-tool events --device pico-001 --limit 20',
  revoke: 'ota-tool revoke 1.2.0 --token-file data/admin-token',
  rollout: 'ota-tool rollout 1.2.0 25 --token-file data/admin-token',
  schedule: 'ota-tool schedule 1.2.0 --at 2026-12-05T02:00:00Z --token-file data/admin-token',
  check: 'ota-tool check --server coap://127.0.0.1:5683 --device pico-001 --current 1.0.0 --public-key release.key.pub',
  download: 'ota-tool download coap://127.0.0.1:5683/d/3f2a9c01b7e4 --out image.bin --block-size 512',
  'device add': 'ota-tool device add pico-001 --server ota.example.net:5683 --apn iot.example --public-key release.key.pub',
  'device remove': 'ota-tool device remove pico-001 --token-file data/admin-token',
  unpack: 'ota-tool unpack image.bin --out unpacked/',
};

/** APN as 3GPP TS 23.003 section 9.1 allows: labels of letters, digits and "-", at most 100 bytes. */
const APN_PATTERN = /^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/;
const MAX_APN_BYTES = 100;
const MIN_CHECK_INTERVAL_S = 60;
const MAX_CHECK_INTERVAL_S = 30 * 24 * 3600;
const MAX_EVENTS = 1000;

/** Returns the command name from yargs' positional list, such as "publish" or "device add". */
export function commandName(positionals: readonly (string | number)[]): string {
  const first = String(positionals[0] ?? '');
  return first === 'device' ? `device ${String(positionals[1] ?? '')}`.trim() : first;
}

function fail(command: string, message: string): never {
  throw new CliError(message, EXAMPLES[command], 'USAGE');
}

function checkPercent(command: string, flag: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 100) {
    fail(command, `${flag} must be an integer percentage in 0..100, got ${String(value)}`);
  }
}

/** Checks a coap:// URI. A value without a scheme, such as 127.0.0.1:5683, gets an example with coap:// put in front. */
function checkCoapUri(command: string, flag: string, value: string): void {
  try {
    parseCoapUri(value);
  } catch (error) {
    const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(value);
    const example = hasScheme ? EXAMPLES[command] : EXAMPLES[command]?.replace(/coap:\/\/\S+/, `coap://${value}`);
    throw new CliError(`${flag} ${(error as Error).message}`, example, 'USAGE');
  }
}

/** Replaces a start time flag's text with the UTC instant it names, so the command sends an absolute time. */
function setStartTime(command: string, argv: Record<string, unknown>, flag: string, alias: string): void {
  const resolved = resolveStartTime(String(argv[flag]), Date.now());
  if (!resolved.ok) fail(command, `--${flag} ${resolved.problem}`);
  argv[flag] = resolved.iso;
  argv[alias] = resolved.iso;
}

function checkVersion(command: string, flag: string, value: unknown): void {
  const problem = versionProblem(String(value));
  if (problem) fail(command, `${flag} ${problem}, such as 1.2.0 or 2.0.0-rc.1`);
}

function checkDeviceId(command: string, flag: string, value: unknown): void {
  if (!DEVICE_ID_PATTERN.test(String(value))) {
    fail(command, `${flag} "${String(value)}" must be 1..64 letters, digits, ".", "_" or "-", other than "." and "..", such as pico-001`);
  }
}

function checkChannel(command: string, value: unknown): void {
  if (value !== undefined && !CHANNEL_PATTERN.test(String(value))) {
    fail(command, `--channel "${String(value)}" must be 1..32 lower-case letters, digits or "-", such as stable or beta`);
  }
}

/**
 * Validates values and the rules between options. yargs runs it after parsing, so a
 * bad value fails before any file is read or any packet is sent.
 */
export function validateArgs(argv: Record<string, unknown> & { _: (string | number)[] }): true {
  const command = commandName(argv._);

  // yargs collects an option given twice into an array; only the files of publish are a list.
  for (const [name, value] of Object.entries(argv)) {
    if (name === '_' || name === 'files' || /[A-Z]/.test(name) || !Array.isArray(value)) continue;
    fail(command, `--${name} was given ${value.length} times (${value.map((item) => `"${String(item)}"`).join(', ')}); give it once`);
  }
  convertDecimals(command, argv);

  if (argv.token !== undefined && argv['token-file'] !== undefined) {
    fail(command, '--token and --token-file both set the admin token; pass only one');
  }

  switch (command) {
    case 'publish': {
      const files = argv.files as string[];
      if (argv['name-as'] !== undefined && files.length !== 1) {
        fail(command, `--name-as names one file, but ${files.length} files were given; use name=path for each file instead`);
      }
      checkVersion(command, '--version', argv.version);
      checkChannel(command, argv.channel);
      checkPercent(command, '--rollout', argv.rollout);
      if (argv['start-at'] !== undefined) setStartTime(command, argv, 'start-at', 'startAt');
      break;
    }
    case 'schedule':
      checkVersion(command, '<version>', argv.version);
      if (argv.at !== undefined && argv.now === true) fail(command, '--at sets the start time and --now clears it; pass only one');
      if (argv.at === undefined && argv.now !== true) fail(command, 'pass --at <instant> to set the start time or --now to clear it');
      if (argv.at !== undefined) setStartTime(command, argv, 'at', 'at');
      break;
    case 'rollout':
      checkPercent(command, '<percent>', argv.percent);
      checkVersion(command, '<version>', argv.version);
      break;
    case 'revoke':
      checkVersion(command, '<version>', argv.version);
      break;
    case 'events': {
      if (argv.device !== undefined) checkDeviceId(command, '--device', argv.device);
      const limit = argv.limit as number;
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_EVENTS) fail(command, `--limit must be an integer in 1..${MAX_EVENTS}, got ${limit}`);
      break;
    }
    case 'check':
      checkCoapUri(command, '--server', String(argv.server));
      checkDeviceId(command, '--device', argv.device);
      checkVersion(command, '--current', argv.current);
      checkChannel(command, argv.channel);
      break;
    case 'download': {
      checkCoapUri(command, '<uri>', String(argv.uri));
      try {
        szxOf(argv['block-size'] as number);
      } catch (error) {
        fail(command, `--block-size: ${(error as Error).message}`);
      }
      if (argv.sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(String(argv.sha256))) {
        fail(command, `--sha256 must be 64 hex characters, got "${String(argv.sha256)}"`);
      }
      const size = argv.size;
      if (size !== undefined && (typeof size !== 'number' || !Number.isInteger(size) || size < 0)) {
        fail(command, `--size must be a whole number of bytes, got ${String(size)}`);
      }
      break;
    }
    case 'device add': {
      checkDeviceId(command, '<id>', argv.id);
      try {
        parseServer(String(argv.server));
      } catch (error) {
        fail(command, (error as Error).message);
      }
      checkChannel(command, argv.channel);
      const apn = String(argv.apn);
      if (!APN_PATTERN.test(apn) || apn.length > MAX_APN_BYTES) {
        fail(command, `--apn "${apn}" must be dot-separated labels of letters, digits and "-", at most ${MAX_APN_BYTES} bytes, such as iot.1nce.net`);
      }
      checkRegistration(command, argv);
      const interval = argv['check-interval'] as number;
      if (!Number.isInteger(interval) || interval < MIN_CHECK_INTERVAL_S || interval > MAX_CHECK_INTERVAL_S) {
        fail(command, `--check-interval must be whole seconds in ${MIN_CHECK_INTERVAL_S}..${MAX_CHECK_INTERVAL_S}, got ${interval}`);
      }
      break;
    }
    case 'device remove':
      checkDeviceId(command, '<id>', argv.id);
      break;
  }
  return true;
}

/** Checks the registration flags of device add: --label needs a server to go to, and its text must fit. */
function checkRegistration(command: string, argv: Record<string, unknown>): void {
  const registers = argv['admin-server'] !== undefined || argv.token !== undefined || argv['token-file'] !== undefined;
  if (argv['admin-server'] !== undefined) {
    try {
      normalizeServer(String(argv['admin-server']));
    } catch (error) {
      fail(command, `--admin-server: ${(error as Error).message.replace(/--server /, '')}, such as http://127.0.0.1:3000`);
    }
  }
  if (argv.label === undefined) return;
  const label = String(argv.label);
  if (!registers) {
    fail(command, '--label is stored with the registration on the server; add --token-file or --token (and --admin-server) to register the device');
  }
  const bytes = Buffer.byteLength(label, 'utf8');
  if (bytes > MAX_LABEL_BYTES) fail(command, `--label has ${bytes} bytes of UTF-8, at most ${MAX_LABEL_BYTES} are allowed; shorten it`);
  if (CONTROL_CHARACTER.test(label) || LONE_SURROGATE.test(label)) {
    fail(command, '--label contains a control character (such as a line break, a tab or a text-direction mark) or a lone surrogate; give it as one line of plain text');
  }
}
