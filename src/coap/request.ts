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
/**
 * Value lengths in bytes of the supported critical options (RFC 7252 section 5.10,
 * RFC 7959 section 2.1). A critical option of another length is treated like an
 * unrecognized one and gets 4.02 (RFC 7252 section 5.4.3).
 */
const CRITICAL_LENGTHS = new Map<number, { name: string; min: number; max: number }>([
  [OptionNumber.uriHost, { name: 'Uri-Host', min: 1, max: 255 }],
  [OptionNumber.uriPort, { name: 'Uri-Port', min: 0, max: 2 }],
  [OptionNumber.uriPath, { name: 'Uri-Path', min: 0, max: 255 }],
  [OptionNumber.uriQuery, { name: 'Uri-Query', min: 0, max: 255 }],
  [OptionNumber.accept, { name: 'Accept', min: 0, max: 2 }],
  [OptionNumber.block2, { name: 'Block2', min: 0, max: 3 }],
]);

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
    const lengths = CRITICAL_LENGTHS.get(option.number);
    if (lengths && (option.value.length < lengths.min || option.value.length > lengths.max)) {
      throw new CoapError('OPTION_INVALID', lengths.name, `${lengths.min}..${lengths.max} bytes`, `${option.value.length} bytes`);
    }
  }
  for (const number of SINGLE_CRITICAL) {
    const count = countOption(datagram, number);
    if (count > 1) throw new CoapError('OPTION_INVALID', `number ${number}`, 'present at most once', `${count} times`);
  }
}

export function uriPath(datagram: Datagram): string[] {
  return optionValues(datagram, OptionNumber.uriPath).map((value) => value.toString('utf8'));
}

/** Returns the Uri-Query parameters as name/value pairs; a name given twice is rejected, as two d= leave the device id open. */
export function uriQuery(datagram: Datagram): Map<string, string> {
  const query = new Map<string, string>();
  for (const value of optionValues(datagram, OptionNumber.uriQuery)) {
    const text = value.toString('utf8');
    const equals = text.indexOf('=');
    const name = equals < 0 ? text : text.slice(0, equals);
    if (query.has(name)) throw new CoapError('QUERY_DUPLICATE', name);
    query.set(name, equals < 0 ? '' : text.slice(equals + 1));
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
  const duplicate = duplicateMapKey(datagram.payload, item.size);
  if (duplicate !== undefined) throw new CoapError('KEY_DUPLICATE', typeof duplicate === 'string' ? quote(duplicate) : String(duplicate));
  return item;
}

/**
 * Finds a key that appears twice in the CBOR map at the start of payload. cbor-x keeps
 * the last value of a repeated key, so the decoded Map has fewer entries than the map
 * header declares. The entries are then decoded as a sequence to name the key.
 * Indefinite-length maps (RFC 8949 section 3.2.2) are always decoded that way.
 */
function duplicateMapKey(payload: Buffer, decodedSize: number): unknown {
  const header = payload[0]!;
  const info = header & 0x1f;
  let declared: number | undefined;
  let start: number;
  let end = payload.length;
  if (info < 24) {
    declared = info;
    start = 1;
  } else if (info === 24) {
    declared = payload[1]!;
    start = 2;
  } else if (info === 25) {
    declared = payload.readUInt16BE(1);
    start = 3;
  } else if (info === 31) {
    start = 1;
    end = payload.length - 1;
  } else {
    // NOTE: maps with 2**16 entries or more are not checked; no request map is that large.
    return undefined;
  }
  if (declared !== undefined && declared === decodedSize) return undefined;

  let items: unknown[];
  try {
    items = cbor.decodeMultiple(payload.subarray(start, end)) as unknown[];
  } catch {
    return undefined;
  }
  const seen: unknown[] = [];
  for (let index = 0; index < items.length; index += 2) {
    const key = items[index];
    if (seen.includes(key)) return key;
    seen.push(key);
  }
  return undefined;
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
    throw new CoapError('VALUE_INVALID', 'device id', '1..64 characters of A-Z, a-z, 0-9, ".", "_" and "-", other than "." and ".."', quote(deviceId));
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
