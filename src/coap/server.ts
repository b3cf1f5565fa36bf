// The CoAP endpoint: a node-coap 1.5.0 Server on a UDP socket this module binds,
// with a strict framing check in front of it and the device resources behind it.
// node-coap keeps its jobs: parsing, the deduplication cache that replays the stored
// response to a retransmitted CON, and piggybacked ACKs. Responses are
// written through OutgoingMessage.end, past node-coap's Block2 layer; docs/server.md
// explains why. Confirmable GETs of image blocks skip node-coap altogether and are
// answered straight from this module, since they are most of the traffic and need
// none of its work.
import dgram from 'node:dgram';
import dns from 'node:dns';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { OutgoingMessage, Server } from 'coap';
import type pino from 'pino';
import { CoapError } from '../errors.ts';
import type { Store } from '../storage/store.ts';
import { PATH_DOWNLOAD } from '../protocol/constants.ts';
import { MessageType, OptionNumber, encodeMessageParts, encodeUint, parseDatagram, resetFor, type Datagram } from './datagram.ts';
import type { RateLimit } from '../rate-limit.ts';
import { DeviceLimiter } from './device-limit.ts';
import { OPTION_NAMES, type Reply } from './reply.ts';
import { KnownDevicesGate } from './known-devices.ts';
import { handleRequest, type ResourceContext } from './resources.ts';

/**
 * Time node-coap waits for a handler before it sends an empty ACK and a separate
 * response. 1 s stays below ACK_TIMEOUT (2 s, RFC 7252 section 4.8), so a device does
 * not retransmit while a handler waits on storage.
 */
const PIGGYBACK_REPLY_MS = 1000;
/** Time close() gives requests in flight before it closes the socket anyway. */
const DRAIN_TIMEOUT_MS = 5000;

export interface CoapServiceOptions {
  store: Store;
  logger: pino.Logger;
  port: number;
  /** IPv4 or IPv6 address; "::" accepts IPv4 too where the system allows dual-stack sockets. */
  bind: string;
  /** Rejects checks and reports from device ids without a registration (4.03). */
  knownDevicesOnly?: boolean;
  /** Limit of checks and reports per device id; 'off' serves every request. */
  deviceRate: RateLimit | 'off';
}

export interface CoapService {
  port: number;
  address: string;
  close(): Promise<void>;
}

interface PendingRequest {
  datagram: Datagram;
  key: string;
}

/** node-coap's Server with its datagram entry point wrapped by the strict framing check. */
class FilteredServer extends Server {
  filter: ((msg: Buffer, rsinfo: AddressInfo, inner: (msg: Buffer, rsinfo: AddressInfo) => void) => void) | undefined;

  override handleRequest(): (msg: Buffer, rsinfo: AddressInfo) => void {
    const inner = super.handleRequest();
    return (msg, rsinfo) => {
      if (this.filter) this.filter(msg, rsinfo, inner);
      else inner(msg, rsinfo);
    };
  }
}

export async function startCoapService(options: CoapServiceOptions): Promise<CoapService> {
  const { store, logger } = options;
  const socket = await bindSocket(options.bind, options.port);
  const server = new FilteredServer({ piggybackReplyMs: PIGGYBACK_REPLY_MS });
  const deviceLimiter = options.deviceRate === 'off' ? undefined : new DeviceLimiter({ ...options.deviceRate, logger });
  /** Requests being handled, by endpoint, mid and token: a retransmission that arrives meanwhile is dropped. */
  const inFlight = new Map<string, Promise<void>>();
  let pending: PendingRequest | undefined;
  // pino fixes a logger's level at creation, so this is read once.
  const debug = logger.isLevelEnabled('debug');
  const knownDevices = options.knownDevicesOnly ? new KnownDevicesGate(store, logger) : undefined;
  let closing = false;

  const send = (buffer: Buffer, rsinfo: AddressInfo) => socket.send(buffer, rsinfo.port, rsinfo.address);

  server.filter = (msg, rsinfo, inner) => {
    if (closing) return;
    const parsed = parseDatagram(msg);
    if (!parsed.ok) {
      logger.warn({ address: rsinfo.address, port: rsinfo.port, bytes: msg.length, mid: parsed.mid, reason: parsed.reason }, 'malformed datagram');
      // RFC 7252 section 4.2: a Confirmable message that cannot be processed is rejected with a Reset.
      if (parsed.type === MessageType.con && parsed.mid !== undefined) send(resetFor(parsed.mid), rsinfo);
      return;
    }
    const datagram = parsed.datagram;
    if (debug) logger.debug({ address: rsinfo.address, port: rsinfo.port, mid: datagram.mid, code: datagram.code, bytes: msg.length }, 'datagram received');
    if (datagram.type === MessageType.rst || (datagram.type === MessageType.ack && datagram.code !== '0.00' && datagram.code.startsWith('0.'))) {
      // A Reset is never answered, and a Reset with a code or an ACK carrying a request
      // is a message format error, which RFC 7252 section 4.2 rejects by silent ignoring.
      // node-coap 1.5.0 is not given a Reset: with no cached response it took one for a request.
      if (datagram.code === '0.00') {
        if (debug) logger.debug({ address: rsinfo.address, port: rsinfo.port, mid: datagram.mid }, 'Reset ignored');
      } else {
        logger.warn({ address: rsinfo.address, port: rsinfo.port, mid: datagram.mid, type: datagram.type, code: datagram.code }, 'message format error ignored');
      }
      return;
    }
    if (datagram.code === '0.00') {
      // An Empty CON is a ping and gets a Reset (RFC 7252 section 4.3). An Empty ACK goes to
      // node-coap, which matches it to its own Confirmable response. An Empty NON is not
      // a valid message (section 4.3) and is ignored.
      if (datagram.type === MessageType.con) send(resetFor(datagram.mid), rsinfo);
      else if (datagram.type === MessageType.ack) inner(msg, rsinfo);
      else if (debug) logger.debug({ address: rsinfo.address, port: rsinfo.port, mid: datagram.mid }, 'Empty NON ignored');
      return;
    }
    if (!datagram.code.startsWith('0.')) return;

    const keyOf = () => `${rsinfo.address}:${rsinfo.port}/${datagram.mid}/${datagram.token.toString('hex')}`;
    if (inFlight.size > 0 && inFlight.has(keyOf())) {
      logger.debug({ address: rsinfo.address, mid: datagram.mid }, 'retransmission of a request in flight dropped');
      return;
    }
    if (isBlockRequest(datagram)) {
      serveDirect(datagram, rsinfo, keyOf);
      return;
    }
    // node-coap calls the request listener synchronously from inner(), or replies from
    // its deduplication cache without calling it. Either way pending is consumed here.
    pending = { datagram, key: keyOf() };
    try {
      inner(msg, rsinfo);
    } finally {
      pending = undefined;
    }
  };

  server.on('request', (req: { rsinfo: AddressInfo; _packet: { messageId?: number } }, res: OutgoingMessage) => {
    const current = pending;
    pending = undefined;
    const rsinfo = req.rsinfo;
    const log = logger.child({ mid: req._packet.messageId, address: rsinfo.address });
    if (!current || current.datagram.mid !== req._packet.messageId) {
      log.error('request arrived without its parsed datagram; node-coap changed how it dispatches');
      writeReply(res, errorReply(new CoapError('INTERNAL')), log);
      return;
    }
    const address = `${rsinfo.address}:${rsinfo.port}`;
    const work = Promise.resolve()
      .then(() => handleRequest(current.datagram, { store, logger: log, address, debug, knownDevices, ...(deviceLimiter ? { deviceLimiter } : {}) }))
      .catch((err: unknown) => rejectionReply(err, log))
      .then((reply) => {
        writeReply(res, reply, log);
        // The key node-coap 1.5.0 stores a piggybacked response under (Server._toKey).
        if (reply.uncached) server._lru.delete(`${address}/${current.datagram.mid}${current.datagram.token.toString('hex')}`);
      })
      .finally(() => inFlight.delete(current.key));
    inFlight.set(current.key, work);
  });
  /**
   * Answers a Confirmable image-block GET with a piggybacked ACK written here, past
   * node-coap: no IncomingMessage or OutgoingMessage streams, no second parse and no
   * deduplication entry. Blocks are never kept in that cache anyway, and RFC 7252
   * section 4.5 lets a retransmitted GET be served again. A block whose chunk is in
   * memory is answered before this function returns; otherwise the request is in
   * flight until storage answers, and retransmissions meanwhile are dropped.
   */
  const serveDirect = (datagram: Datagram, rsinfo: AddressInfo, keyOf: () => string) => {
    let log: pino.Logger | undefined;
    // The child logger is built only when a line is written, which the hot path avoids.
    const ctx: ResourceContext = {
      store,
      address: `${rsinfo.address}:${rsinfo.port}`,
      debug,
      get logger() {
        log ??= logger.child({ mid: datagram.mid, address: rsinfo.address });
        return log;
      },
    };
    const sendReply = (reply: Reply) => {
      socket.send(encodeMessageParts(MessageType.ack, reply.code, datagram.mid, datagram.token, reply.options, reply.payload), rsinfo.port, rsinfo.address);
      if (debug) ctx.logger.debug({ coapCode: reply.code, bytes: reply.payload.length }, 'response sent');
    };
    let result: Reply | Promise<Reply>;
    try {
      result = handleRequest(datagram, ctx);
    } catch (err) {
      result = rejectionReply(err, ctx.logger);
    }
    if (!(result instanceof Promise)) {
      sendReply(result);
      return;
    }
    // NOTE: node-coap would send an empty ACK after PIGGYBACK_REPLY_MS; this path always
    // piggybacks, so a storage read slower than ACK_TIMEOUT makes the device retransmit.
    const key = keyOf();
    const work = result
      .catch((err: unknown) => rejectionReply(err, ctx.logger))
      .then(sendReply)
      .finally(() => inFlight.delete(key));
    inFlight.set(key, work);
  };

  server.on('error', (err: Error) => logger.error({ err }, 'CoAP server error'));
  server.listen(socket);

  const bound = socket.address();
  return {
    port: bound.port,
    address: bound.address,
    async close() {
      closing = true;
      const drained = Promise.allSettled([...inFlight.values()]);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          logger.warn({ inFlight: inFlight.size }, 'CoAP requests still in flight at shutdown');
          resolve();
        }, DRAIN_TIMEOUT_MS);
      });
      await Promise.race([drained, timeout]);
      clearTimeout(timer);
      server.close();
      await new Promise<void>((resolve) => socket.close(() => resolve()));
    },
  };
}

/** True for a Confirmable GET whose first Uri-Path segment is the download resource. */
function isBlockRequest(datagram: Datagram): boolean {
  if (datagram.type !== MessageType.con || datagram.code !== '0.01') return false;
  const firstPath = datagram.options.find((option) => option.number === OptionNumber.uriPath);
  return firstPath !== undefined && firstPath.value.length === PATH_DOWNLOAD.length && firstPath.value.toString('latin1') === PATH_DOWNLOAD;
}

/** Turns a handler's failure into the error reply, logging it at the level its code calls for. */
function rejectionReply(err: unknown, log: pino.Logger): Reply {
  if (err instanceof CoapError) {
    // DeviceLimiter logs its own rejections, throttled, since a looping device sends many.
    if (err.code === 'RATE_LIMITED') return errorReply(err);
    // Only INTERNAL is the daemon's own fault; 5.05 for a proxy request is the client's.
    const level = err.code === 'INTERNAL' ? 'error' : 'warn';
    log[level]({ code: err.code, coapCode: err.coapCode, reason: err.message }, 'request rejected');
    return errorReply(err);
  }
  log.error({ err }, 'request failed');
  return errorReply(new CoapError('INTERNAL'));
}

function errorReply(err: CoapError): Reply {
  // A diagnostic payload is UTF-8 text with no Content-Format (RFC 7252 section 5.5.2).
  const options = err.maxAgeS === undefined ? [] : [{ number: OptionNumber.maxAge, value: encodeUint(err.maxAgeS) }];
  return { code: err.coapCode, options, payload: Buffer.from(err.message, 'utf8') };
}

/**
 * Writes a reply through OutgoingMessage.prototype.end, skipping node-coap 1.5.0's
 * OutMessage.end. That method re-slices any payload when the request has Block2 and
 * sets its own 2-byte ETag, but the blocks here are already sliced and carry a strong ETag.
 */
function writeReply(res: OutgoingMessage, reply: Reply, logger: pino.Logger): void {
  res.on('error', (err: Error) => logger.error({ err }, 'sending the response failed'));
  res.code = reply.code;
  res.statusCode = reply.code;
  for (const option of reply.options) {
    const name = OPTION_NAMES[option.number];
    if (!name) throw new Error(`reply option ${option.number} has no node-coap name; add it to OPTION_NAMES`);
    res.setOption(name as Parameters<OutgoingMessage['setOption']>[0], option.value);
  }
  if (res instanceof OutgoingMessage) {
    OutgoingMessage.prototype.end.call(res, reply.payload);
  } else {
    // NOTE: a GET with Observe makes node-coap 1.5.0 hand over an observe stream. It gets
    // one response and no notifications, because no resource here changes over time.
    (res as { end(payload: Buffer): void }).end(reply.payload);
  }
  logger.debug({ coapCode: reply.code, bytes: reply.payload.length }, 'response sent');
}

/**
 * Resolves the destination of a send. Replies always go to the literal address a
 * request came from, and Node 20's default (dns.lookup) hands a literal back through
 * process.nextTick, which costs each reply a trip through the tick queue. A literal is
 * returned here at once; anything else still goes to dns.lookup.
 */
function lookupLiteral(hostname: string, options: dns.LookupOneOptions, callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void): void {
  const family = net.isIP(hostname);
  if (family !== 0) callback(null, hostname, family);
  else dns.lookup(hostname, options, callback);
}

/** Binds a UDP socket; "::" makes it dual-stack (Node sockets default to ipv6Only false). */
async function bindSocket(bind: string, port: number): Promise<dgram.Socket> {
  const type = bind.includes(':') ? 'udp6' : 'udp4';
  const socket = dgram.createSocket({ type, ipv6Only: false, lookup: lookupLiteral as typeof dns.lookup });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, bind, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  return socket;
}
