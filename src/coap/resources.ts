// CoAP resources of the device protocol: routing by Uri-Path and method, and the
// handlers for check, download, report and /.well-known/core. Each handler turns one
// parsed request into one Reply; faults are thrown as CoapError and turned into error
// responses by the caller, so a bad request never reaches storage.
import { Encoder } from 'cbor-x';
import type pino from 'pino';
import { CoapCode, CoapError } from '../errors.ts';
import {
  DOWNLOAD_ID_HEX_CHARS,
  FORMAT_CBOR,
  FORMAT_JSON,
  FORMAT_LINK,
  FORMAT_OCTET_STREAM,
  MAX_INLINE_SZX,
  ManifestKey,
  Outcome,
  PATH_CHECK,
  PATH_DOWNLOAD,
  PATH_REPORT,
} from '../protocol/constants.ts';
import { hasStarted, msUntilNextStart, selectOffer } from '../releases/select.ts';
import type { DeviceRecord, ReleaseRecord, Store } from '../storage/store.ts';
import type { KnownDevicesGate } from './known-devices.ts';
import { bufferBlockReply, imageBlockReply, imageIdentity, lastBlockNum, parseBlock2 } from './blocks.ts';
import { OptionNumber, encodeUint, optionValues, type Datagram } from './datagram.ts';
import { linkFormat, type LinkFilter } from './link-format.ts';
import type { DeviceLimiter } from './device-limit.ts';
import type { Reply } from './reply.ts';
import { checkOptions, negotiateFormat, parseCheckBody, parseCheckQuery, parseReportBody, requireCborBody, uriPath, uriQuery } from './request.ts';

/** Largest block the server suggests: 1024 bytes keeps a block message within the 1152 bytes RFC 7252 section 4.6 assumes. */
export const BLOCK_SIZE_HINT = 1024;
/** Max-Age a response without the option has, in seconds (RFC 7252 section 5.10.5). */
const DEFAULT_MAX_AGE_S = 60;
const DOWNLOAD_ID_PATTERN = new RegExp(`^[0-9a-f]{${DOWNLOAD_ID_HEX_CHARS}}$`);
// Plain integer-key maps: cbor-x 1.6 would otherwise wrap a Map in tag 259 or a
// record tag. Its typings lack useTag259ForMaps, hence the separate object.
const encoderOptions = { useRecords: false, useTag259ForMaps: false };
const cbor = new Encoder(encoderOptions);

export interface ResourceContext {
  store: Store;
  /** Child logger carrying mid and address. */
  logger: pino.Logger;
  /** Client address as "host:port", stored in device records. */
  address: string;
  /** True when the logger writes debug lines. */
  debug: boolean;
  /** Set with --known-devices-only: checks and reports of unregistered ids are rejected. */
  knownDevices?: KnownDevicesGate | undefined;
  /** Rate limit of checks and reports per device id; unset means no limit. */
  deviceLimiter?: DeviceLimiter;
}

const METHOD_NAMES: Record<string, string> = { '0.01': 'GET', '0.02': 'POST', '0.03': 'PUT', '0.04': 'DELETE', '0.05': 'FETCH' };

/**
 * Routes one request to its handler. Returns the reply synchronously where the
 * handler needs no storage access (an image block in the chunk cache), else a promise;
 * a rejected request throws CoapError, synchronously or through the promise.
 */
export function handleRequest(datagram: Datagram, ctx: ResourceContext): Reply | Promise<Reply> {
  checkOptions(datagram);
  const path = uriPath(datagram);
  const method = METHOD_NAMES[datagram.code] ?? datagram.code;
  const joined = path.join('/');

  if (joined === '.well-known/core') {
    requireMethod(joined, method, ['GET']);
    return wellKnownCore(datagram, ctx);
  }
  if (joined === PATH_CHECK) {
    requireMethod(joined, method, ['GET', 'POST']);
    return check(datagram, method, ctx);
  }
  if (joined === PATH_REPORT) {
    requireMethod(joined, method, ['POST']);
    return report(datagram, ctx);
  }
  if (path.length === 2 && path[0] === PATH_DOWNLOAD) {
    requireMethod(joined, method, ['GET']);
    return download(datagram, path[1]!, ctx);
  }
  throw new CoapError('RESOURCE_NOT_FOUND', joined);
}

function requireMethod(path: string, method: string, allowed: string[]): void {
  if (!allowed.includes(method)) throw new CoapError('METHOD_NOT_ALLOWED', path, allowed.join(' or '), method);
}

async function check(datagram: Datagram, method: string, ctx: ResourceContext): Promise<Reply> {
  const format = negotiateFormat(datagram, [FORMAT_CBOR, FORMAT_JSON]);
  const request = method === 'POST' ? parseCheckBody(requireCborBody(datagram)) : parseCheckQuery(uriQuery(datagram));
  // The rate limit comes first, so a looping device costs no storage read.
  ctx.deviceLimiter?.admit(request.deviceId, ctx.address);
  const rejection = await ctx.knownDevices?.reject(request.deviceId, ctx.address, PATH_CHECK);
  if (rejection) return rejection;
  // NOTE: start times are compared with this host's wall clock, so a clock that is off shifts every start by as much.
  const nowMs = Date.now();
  const releases = ctx.store.releasesSnapshot();
  const offer = selectOffer(releases, { id: request.deviceId, version: request.semver, channel: request.channel }, nowMs);
  const log = ctx.logger.child({ deviceId: request.deviceId, version: request.version });

  const now = new Date(nowMs).toISOString();
  const previous = await ctx.store.getDevice(request.deviceId);
  const device: DeviceRecord = {
    ...previous,
    id: request.deviceId,
    channel: request.channel,
    version: request.version,
    lastSeen: now,
    address: ctx.address,
    status: offer ? 'update-offered' : 'up-to-date',
  };
  await ctx.store.putDevice(device);
  await ctx.store.appendEvent({ time: now, type: 'check', device: request.deviceId, version: request.version, detail: `channel ${request.channel}` });
  if (offer) {
    await ctx.store.appendEvent({ time: now, type: 'offer', device: request.deviceId, version: offer.version });
    log.info({ offered: offer.version, channel: request.channel }, 'update offered');
  } else {
    log.debug({ channel: request.channel }, 'no update');
  }

  const maxAge = checkMaxAge(msUntilNextStart(releases, request.channel, nowMs));
  if (format === FORMAT_JSON) return contentReply(FORMAT_JSON, Buffer.from(JSON.stringify(manifestJson(offer))), maxAge);
  const manifest = manifestMap(offer);
  if (offer && request.inlineSzx !== undefined && offer.size <= inlineLimitBytes(request.inlineSzx)) {
    manifest.set(ManifestKey.payload, await inlinePayload(offer, ctx));
    log.debug({ offered: offer.version, size: offer.size }, 'payload inlined in the check answer');
  }
  return contentReply(FORMAT_CBOR, cbor.encode(manifest), maxAge);
}

/**
 * Returns the Max-Age of a check response when a release in the device's channel
 * starts within the default Max-Age of 60 s (RFC 7252 section 5.10.5). It is the whole
 * seconds until that start, so no cache keeps the response past it. Otherwise the
 * option is left out.
 */
function checkMaxAge(msUntilStart: number | undefined): number | undefined {
  if (msUntilStart === undefined || msUntilStart >= DEFAULT_MAX_AGE_S * 1000) return undefined;
  return Math.floor(msUntilStart / 1000);
}

/** Bytes a device with this inline SZX takes in the check answer, capped at MAX_INLINE_SZX. */
export function inlineLimitBytes(inlineSzx: number): number {
  return 16 << Math.min(inlineSzx, MAX_INLINE_SZX);
}

/** Reads a payload that fits in its first storage chunk (inline payloads are at most 512 bytes). */
async function inlinePayload(offer: ReleaseRecord, ctx: ResourceContext): Promise<Buffer> {
  const chunk = ctx.store.cachedChunk(offer.sha256, 0) ?? (await ctx.store.readChunkByDigest(offer.sha256, 0));
  if (!chunk || chunk.length < offer.size) {
    throw new Error(`first chunk of ${offer.version} holds ${chunk?.length ?? 0} bytes, expected at least ${offer.size}; the store is inconsistent`);
  }
  return Buffer.from(chunk.subarray(0, offer.size));
}

function manifestMap(offer: ReleaseRecord | undefined): Map<number, unknown> {
  if (!offer) return new Map();
  return new Map<number, unknown>([
    [ManifestKey.version, offer.version],
    [ManifestKey.path, `${PATH_DOWNLOAD}/${offer.downloadId}`],
    [ManifestKey.size, offer.size],
    [ManifestKey.sha256, Buffer.from(offer.sha256, 'hex')],
    [ManifestKey.signature, Buffer.from(offer.signature, 'hex')],
    [ManifestKey.encoding, offer.encoding === 'deflate' ? 1 : 0],
    [ManifestKey.blockSize, BLOCK_SIZE_HINT],
  ]);
}

function manifestJson(offer: ReleaseRecord | undefined): object {
  if (!offer) return { update: false };
  return {
    update: true,
    version: offer.version,
    path: `/${PATH_DOWNLOAD}/${offer.downloadId}`,
    size: offer.size,
    sha256: offer.sha256,
    signature: offer.signature,
    encoding: offer.encoding,
    blockSize: BLOCK_SIZE_HINT,
  };
}

async function report(datagram: Datagram, ctx: ResourceContext): Promise<Reply> {
  negotiateFormat(datagram, [FORMAT_CBOR, FORMAT_JSON]);
  const request = parseReportBody(requireCborBody(datagram));
  ctx.deviceLimiter?.admit(request.deviceId, ctx.address);
  const rejection = await ctx.knownDevices?.reject(request.deviceId, ctx.address, PATH_REPORT);
  if (rejection) return rejection;
  const now = new Date().toISOString();
  const previous = await ctx.store.getDevice(request.deviceId);
  const lastReport = { outcome: request.outcome, target: request.target, time: now, ...(request.detail === undefined ? {} : { detail: request.detail }) };
  await ctx.store.putDevice({
    id: request.deviceId,
    channel: previous?.channel ?? 'stable',
    version: request.version,
    lastSeen: now,
    address: ctx.address,
    status: request.outcome,
    lastReport,
  });
  await ctx.store.appendEvent({
    time: now,
    type: 'report',
    device: request.deviceId,
    version: request.target,
    outcome: request.outcome,
    ...(request.detail === undefined ? {} : { detail: request.detail }),
  });
  const failed = Outcome[request.outcome] >= Outcome.verifyFailed;
  ctx.logger[failed ? 'warn' : 'info'](
    { deviceId: request.deviceId, version: request.version, target: request.target, outcome: request.outcome },
    'update outcome reported',
  );
  return { code: CoapCode.changed, options: [], payload: Buffer.alloc(0) };
}

/**
 * Size and ETag of each release's image, derived once per record. The store replaces a
 * record on every change, so an entry never outlives the record it describes.
 */
const IMAGE_FORMATS = [FORMAT_OCTET_STREAM];
const imageIdentities = new WeakMap<ReleaseRecord, ReturnType<typeof imageIdentity>>();

/**
 * Serves one block of an image. Blocks between the first and the last are the hot
 * path: they touch only memory when the chunk is cached, and the reply is then
 * returned without a promise.
 */
function download(datagram: Datagram, id: string, ctx: ResourceContext): Reply | Promise<Reply> {
  negotiateFormat(datagram, IMAGE_FORMATS);
  const block = parseBlock2(datagram);
  if (!DOWNLOAD_ID_PATTERN.test(id)) throw new CoapError('RELEASE_NOT_FOUND', JSON.stringify(id.slice(0, 40)));
  const release = ctx.store.releaseByDownloadId(id);
  if (!release) throw new CoapError('RELEASE_NOT_FOUND', id);
  if (release.revoked) throw new CoapError('RELEASE_REVOKED', id, release.version);

  let identity = imageIdentities.get(release);
  if (!identity) {
    identity = imageIdentity(release.size, Buffer.from(release.sha256, 'hex'));
    imageIdentities.set(release, identity);
  }
  const reply = imageBlockReply(datagram, block, {
    ...identity,
    readChunk: (index) => ctx.store.cachedChunk(release.sha256, index) ?? ctx.store.readChunkByDigest(release.sha256, index),
  });
  const last = lastBlockNum(release.size, block.blockSize);
  if (!(reply instanceof Promise) && reply.code === CoapCode.content && block.num !== 0 && block.num !== last) {
    logBlockServed(ctx, release, block.num, block.szx);
    return reply;
  }
  return downloadEvents(Promise.resolve(reply), release, block.num, block.szx, block.blockSize, last, ctx);
}

function logBlockServed(ctx: ResourceContext, release: ReleaseRecord, num: number, szx: number): void {
  // The check skips building the fields object, and in the direct path the child
  // logger too, when debug lines are off, as they are in production.
  if (ctx.debug) ctx.logger.debug({ version: release.version, block: num, szx }, 'block served');
}

/** Records the download-started and download-finished events before the first and last block go out. */
async function downloadEvents(pending: Promise<Reply>, release: ReleaseRecord, num: number, szx: number, blockSize: number, last: number, ctx: ResourceContext): Promise<Reply> {
  const reply = await pending;
  if (reply.code !== CoapCode.content) return reply;
  logBlockServed(ctx, release, num, szx);
  const time = new Date().toISOString();
  const detail = `from ${ctx.address}, ${blockSize}-byte blocks`;
  const fields = { version: release.version, block: num, szx, size: release.size };
  if (num === 0) {
    await ctx.store.appendEvent({ time, type: 'download-started', version: release.version, detail });
    ctx.logger.info(fields, 'download started');
  }
  if (num === last) {
    await ctx.store.appendEvent({ time, type: 'download-finished', version: release.version, detail });
    ctx.logger.info(fields, 'download finished');
  }
  return reply;
}

function wellKnownCore(datagram: Datagram, ctx: ResourceContext): Reply {
  negotiateFormat(datagram, [FORMAT_LINK]);
  // A release is not listed before its start time, because it is not offered before it either.
  const nowMs = Date.now();
  const listed = ctx.store.releasesSnapshot().filter((release) => hasStarted(release, nowMs));
  const body = Buffer.from(linkFormat(listed, linkFilter(datagram)), 'utf8');
  const options = [{ number: OptionNumber.contentFormat, value: encodeUint(FORMAT_LINK) }];
  const block = parseBlock2(datagram);
  if (optionValues(datagram, OptionNumber.block2).length === 0 && body.length <= block.blockSize) {
    return { code: CoapCode.content, options, payload: body };
  }
  return bufferBlockReply(body, block, options);
}

/** Reads the one query filter of RFC 6690 section 4.1, such as rt=ota.image or href=/d*, if there is one. */
function linkFilter(datagram: Datagram): LinkFilter | undefined {
  const query = uriQuery(datagram);
  if (query.size === 0) return undefined;
  const example = '/.well-known/core?rt=ota.image';
  if (query.size > 1) throw new CoapError('QUERY_INVALID', `the query has ${query.size} parameters, but one filter is supported`, example);
  const [name, value] = [...query][0]!;
  if (name === '' || value === '') throw new CoapError('QUERY_INVALID', `the filter "${name}=${value}" needs an attribute name and a value`, example);
  return { name, value };
}

function contentReply(format: number, payload: Buffer, maxAgeS?: number): Reply {
  const options: Reply['options'] = [{ number: OptionNumber.contentFormat, value: encodeUint(format) }];
  if (maxAgeS !== undefined) options.push({ number: OptionNumber.maxAge, value: encodeUint(maxAgeS) });
  return { code: CoapCode.content, options, payload };
}
