// Request parsing for the device resources: option checks shared by every resource
// (critical options, Accept, Content-Format) and the CBOR or query bodies of check
// and report, validated against the limits in src/protocol/constants.ts.
import { Decoder } from 'cbor-x';
import { CoapError } from '../errors.ts';
import {
  CHANNEL_PATTERN,
  CheckKey,
  DEFAULT_CHANNEL,
  DEFAULT_INLINE_SZX,
  DEVICE_ID_PATTERN,
  FORMAT_CBOR,
  MAX_DETAIL_BYTES,
  MAX_VERSION_BYTES,
  Outcome,
  ReportKey,
  type OutcomeName,
} from '../protocol/constants.ts';
import { parseSemVer, type SemVer } from '../releases/semver.ts';
import { OptionNumber, countOption, decodeUint, firstOption, optionValues, type Datagram } from './datagram.ts';

/**
 * Critical options this server acts on; any other odd-numbered option gets 4.02 (RFC 7252
 * section 5.4.1). Block1 is not among them: check and report bodies fit one datagram.
 */
const SUPPORTED_CRITICAL = new Set<number>([
  OptionNumber.uriHost,
  OptionNumber.uriPort,
  OptionNumber.uriPath,
  OptionNumber.uriQuery,
  OptionNumber.accept,
  OptionNumber.block2,
]);
/** Critical options that may appear at most once (RFC 7252 section 5.4.5). */
const SINGLE_CRITICAL = [OptionNumber.uriHost, OptionNumber.uriPort, OptionNumber.accept, OptionNumber.block2];

const cbor = new Decoder({ mapsAsObjects: false, useRecords: false });

/** Rejects options this server cannot honour, before any resource logic runs. */
export function checkOptions(datagram: Datagram): void {
  for (const option of datagram.options) {
    if (option.number === OptionNumber.proxyUri || option.number === OptionNumber.proxyScheme) {
      throw new CoapError('PROXY_UNSUPPORTED', option.number === OptionNumber.proxyUri ? 'Proxy-Uri' : 'Proxy-Scheme');
    }
    if (option.number % 2 === 1 && !SUPPORTED_CRITICAL.has(option.number)) {
      throw new CoapError('OPTION_UNKNOWN_CRITICAL', String(option.number));
    }
  }
  for (const number of SINGLE_CRITICAL) {
    const count = countOption(datagram, number);
    if (count > 1) throw new CoapError('OPTION_INVALID', `number ${number}`, 'present at most once', `${count} times`);
  }
  const accept = firstOption(datagram, OptionNumber.accept);
  if (accept && accept.length > 2) throw new CoapError('OPTION_INVALID', 'Accept', '0..2 bytes', `${accept.length} bytes`);
}

export function uriPath(datagram: Datagram): string[] {
  return optionValues(datagram, OptionNumber.uriPath).map((value) => value.toString('utf8'));
}

/** Returns the Uri-Query parameters as name/value pairs; a later duplicate wins. */
export function uriQuery(datagram: Datagram): Map<string, string> {
  const query = new Map<string, string>();
  for (const value of optionValues(datagram, OptionNumber.uriQuery)) {
    const text = value.toString('utf8');
    const equals = text.indexOf('=');
    if (equals < 0) query.set(text, '');
    else query.set(text.slice(0, equals), text.slice(equals + 1));
  }
  return query;
}

/** Returns the Content-Format the response uses: the Accept option if allowed, else the first allowed one. */
export function negotiateFormat(datagram: Datagram, allowed: readonly number[]): number {
  const accept = firstOption(datagram, OptionNumber.accept);
  if (accept === undefined) return allowed[0]!;
  const format = decodeUint(accept);
  if (!allowed.includes(format)) throw new CoapError('ACCEPT_UNSUPPORTED', allowed.join(' or '), String(format));
  return format;
}

/** Requires a CBOR body: Content-Format 60, or none, which this server reads as 60. */
export function requireCborBody(datagram: Datagram): Map<unknown, unknown> {
  const format = optionValues(datagram, OptionNumber.contentFormat)[0];
  if (format !== undefined && decodeUint(format) !== FORMAT_CBOR) {
    throw new CoapError('FORMAT_UNSUPPORTED', `${FORMAT_CBOR} (application/cbor)`, String(decodeUint(format)));
  }
  if (datagram.payload.length === 0) throw new CoapError('PAYLOAD_NOT_CBOR', 'the payload is empty');
  let item: unknown;
  try {
    item = cbor.decode(datagram.payload);
  } catch (err) {
    throw new CoapError('PAYLOAD_NOT_CBOR', (err as Error).message);
  }
  if (!(item instanceof Map)) throw new CoapError('PAYLOAD_NOT_MAP', describe(item));
  return item;
}

export interface CheckRequest {
  deviceId: string;
  version: string;
  semver: SemVer;
  channel: string;
  /** SZX of the largest payload the device takes inline; undefined for a query, which gets none. */
  inlineSzx?: number;
}

export function parseCheckBody(map: Map<unknown, unknown>): CheckRequest {
  const request = validateCheck(
    requiredText(map, CheckKey.deviceId, 'device id'),
    requiredText(map, CheckKey.version, 'running version'),
    optionalText(map, CheckKey.channel, 'channel') ?? DEFAULT_CHANNEL,
  );
  const inlineSzx = map.get(CheckKey.inlineSzx) ?? DEFAULT_INLINE_SZX;
  if (typeof inlineSzx !== 'number' || !Number.isInteger(inlineSzx) || inlineSzx < 0 || inlineSzx > 6) {
    throw new CoapError('KEY_WRONG_TYPE', String(CheckKey.inlineSzx), 'inline SZX', 'an unsigned integer 0..6 (16..1024 bytes)', describe(inlineSzx));
  }
  return { ...request, inlineSzx };
}

const QUERY_EXAMPLE = 'c?d=pico-001&v=1.0.0&ch=stable';

export function parseCheckQuery(query: Map<string, string>): CheckRequest {
  const deviceId = query.get('d');
  const version = query.get('v');
  if (deviceId === undefined) throw new CoapError('QUERY_MISSING', 'd', QUERY_EXAMPLE);
  if (version === undefined) throw new CoapError('QUERY_MISSING', 'v', QUERY_EXAMPLE);
  return validateCheck(deviceId, version, query.get('ch') ?? DEFAULT_CHANNEL);
}

function validateCheck(deviceId: string, version: string, channel: string): CheckRequest {
  checkDeviceId(deviceId);
  const semver = checkVersion(version, 'running version');
  if (!CHANNEL_PATTERN.test(channel)) {
    throw new CoapError('VALUE_INVALID', 'channel', '1..32 characters of a-z, 0-9 and "-"', quote(channel));
  }
  return { deviceId, version, semver, channel };
}

export interface ReportRequest {
  deviceId: string;
  version: string;
  outcome: OutcomeName;
  target: string;
  detail?: string;
}

export function parseReportBody(map: Map<unknown, unknown>): ReportRequest {
  const deviceId = requiredText(map, ReportKey.deviceId, 'device id');
  const version = requiredText(map, ReportKey.version, 'running version');
  const outcomeCode = map.get(ReportKey.outcome);
  if (outcomeCode === undefined) throw new CoapError('KEY_MISSING', String(ReportKey.outcome), 'outcome');
  const outcome = (Object.keys(Outcome) as OutcomeName[]).find((name) => Outcome[name] === outcomeCode);
  if (outcome === undefined) {
    const codes = Object.values(Outcome).join(', ');
    throw new CoapError('KEY_WRONG_TYPE', String(ReportKey.outcome), 'outcome', `an unsigned integer in ${codes}`, describe(outcomeCode));
  }
  const target = requiredText(map, ReportKey.target, 'target version');
  const detail = optionalText(map, ReportKey.detail, 'detail');

  checkDeviceId(deviceId);
  checkVersion(version, 'running version');
  checkVersion(target, 'target version');
  if (detail !== undefined && Buffer.byteLength(detail, 'utf8') > MAX_DETAIL_BYTES) {
    throw new CoapError('VALUE_INVALID', 'detail', `at most ${MAX_DETAIL_BYTES} bytes`, `${Buffer.byteLength(detail, 'utf8')} bytes`);
  }
  return detail === undefined ? { deviceId, version, outcome, target } : { deviceId, version, outcome, target, detail };
}

function checkDeviceId(deviceId: string): void {
  if (!DEVICE_ID_PATTERN.test(deviceId)) {
    throw new CoapError('VALUE_INVALID', 'device id', '1..64 characters of A-Z, a-z, 0-9, ".", "_" and "-"', quote(deviceId));
  }
}

function checkVersion(version: string, field: string): SemVer {
  const bytes = Buffer.byteLength(version, 'utf8');
  if (bytes > MAX_VERSION_BYTES) throw new CoapError('VALUE_INVALID', field, `at most ${MAX_VERSION_BYTES} bytes`, `${bytes} bytes`);
  const semver = parseSemVer(version);
  if (!semver) throw new CoapError('VALUE_INVALID', field, 'a semantic version such as 1.2.3', quote(version));
  return semver;
}

function requiredText(map: Map<unknown, unknown>, key: number, name: string): string {
  const value = optionalText(map, key, name);
  if (value === undefined) throw new CoapError('KEY_MISSING', String(key), name);
  return value;
}

function optionalText(map: Map<unknown, unknown>, key: number, name: string): string | undefined {
  const value = map.get(key);
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new CoapError('KEY_WRONG_TYPE', String(key), name, 'a text string', describe(value));
  return value;
}

/** Names the CBOR type of a decoded value for error messages. */
function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value instanceof Map) return 'a map';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return 'a byte string';
  if (typeof value === 'string') return `the text ${quote(value)}`;
  if (typeof value === 'number' || typeof value === 'bigint') return `the number ${value}`;
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'object' && value !== null && 'tag' in value) return `tag ${String((value as { tag: unknown }).tag)}`;
  return typeof value;
}

/** Quotes a client-supplied text for a diagnostic, cut to keep the payload short. */
function quote(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}...` : text);
}
