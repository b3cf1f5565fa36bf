// Admin HTTP API of ota-server: route table, bearer token check for mutations, JSON
// framing of results and errors, and the dashboard page. The device-facing CoAP
// side lives in src/daemon, and both share one Store.
import { createHash, timingSafeEqual, type KeyObject } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { TokenBuckets, type RateLimit } from '../rate-limit.ts';
import type { Store } from '../storage/store.ts';
import { DEFAULT_MAX_BODY_BYTES } from './body.ts';
import { dashboardHeaders, dashboardHtml } from './dashboard.ts';
import { AdminError } from './errors.ts';
import { loadPublicKey } from './publish.ts';
import * as registration from './registration.ts';
import * as routes from './routes.ts';
import type { RouteContext, RouteResult } from './routes.ts';

export interface AdminServerOptions {
  store: Store;
  /** Bearer token that mutations must carry. */
  token: string;
  logger: Logger;
  /** Ed25519 public key in PEM. When set, publish rejects signatures that do not verify. */
  publicKeyPem?: string;
  /** Body limit in bytes, default 16 MiB. */
  maxBodyBytes?: number;
  /** Failed authentications each client address may have; default DEFAULT_AUTH_FAILURE_LIMIT. */
  authFailureLimit?: RateLimit;
}

/** 10 failed authentications from one address at once, then one more every 6 s; requests over it get 429. */
export const DEFAULT_AUTH_FAILURE_LIMIT: RateLimit = { burst: 10, ratePerMinute: 10 };
/** Maximum number of client addresses whose failures are kept. */
const MAX_AUTH_FAILURE_ADDRESSES = 10_000;

interface Route {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  /** Matched against the raw path. Each capture group, percent-decoded, becomes one of ctx.params. */
  pattern: RegExp;
  /** Mutations need the bearer token. */
  auth: boolean;
  handler: (ctx: RouteContext) => RouteResult | Promise<RouteResult>;
}

const ROUTES: Route[] = [
  { method: 'GET', pattern: /^\/healthz$/, auth: false, handler: routes.health },
  { method: 'GET', pattern: /^\/api\/releases$/, auth: false, handler: routes.listReleases },
  { method: 'POST', pattern: /^\/api\/releases$/, auth: true, handler: routes.publishRelease },
  { method: 'GET', pattern: /^\/api\/releases\/([^/]+)$/, auth: false, handler: routes.getRelease },
  { method: 'PATCH', pattern: /^\/api\/releases\/([^/]+)$/, auth: true, handler: routes.patchRelease },
  { method: 'POST', pattern: /^\/api\/releases\/([^/]+)\/revoke$/, auth: true, handler: routes.revokeRelease },
  { method: 'GET', pattern: /^\/api\/devices$/, auth: false, handler: routes.listDevices },
  { method: 'GET', pattern: /^\/api\/devices\/([^/]+)$/, auth: false, handler: routes.getDevice },
  { method: 'GET', pattern: /^\/api\/devices\/([^/]+)\/registration$/, auth: false, handler: registration.getRegistration },
  { method: 'PUT', pattern: /^\/api\/devices\/([^/]+)\/registration$/, auth: true, handler: registration.putRegistration },
  { method: 'DELETE', pattern: /^\/api\/devices\/([^/]+)\/registration$/, auth: true, handler: registration.deleteRegistration },
  { method: 'GET', pattern: /^\/api\/events$/, auth: false, handler: routes.listEvents },
  // Paths of the earlier HTTP/JSON server, kept so its scripts keep working.
  { method: 'GET', pattern: /^\/devices$/, auth: false, handler: routes.listDevices },
  { method: 'GET', pattern: /^\/updates$/, auth: false, handler: routes.listReleases },
];

/** Creates the admin HTTP server. The caller listens on it and closes it. */
export function createAdminServer(options: AdminServerOptions): http.Server {
  if (options.token.length === 0) {
    throw new Error('admin token is empty; pass --admin-token or set OTA_ADMIN_TOKEN to a long random string');
  }
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 1) {
    throw new Error(`admin body limit ${maxBodyBytes} must be a positive integer number of bytes`);
  }
  const publicKey = options.publicKeyPem === undefined ? null : loadPublicKey(options.publicKeyPem);
  const tokenDigest = digestToken(options.token);
  let nextRequestId = 1;
  const authFailures = new AuthFailureLog();
  const authLimiter = new TokenBuckets({
    ...(options.authFailureLimit ?? DEFAULT_AUTH_FAILURE_LIMIT),
    maxKeys: MAX_AUTH_FAILURE_ADDRESSES,
    reportIntervalMs: AUTH_WARNING_INTERVAL_MS,
  });
  let lastExclusive: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(work: () => Promise<T>): Promise<T> => {
    const result = lastExclusive.then(work);
    lastExclusive = result.catch(() => undefined);
    return result;
  };

  const server = http.createServer((req, res) => {
    const logger = options.logger.child({ reqId: nextRequestId++ });
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      logger.debug({ method: req.method, url: req.url, status: res.statusCode, durationMs }, 'admin request');
    });

    handle(req, res, logger).catch((err: unknown) => {
      logger.error({ err }, 'admin response failed');
      res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse, logger: Logger): Promise<void> {
    try {
      checkHost(req);
      const url = parseTarget(req.url ?? '/');
      const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');

      if (url.pathname === '/') {
        if (method !== 'GET') throw methodNotAllowed(url.pathname, method, ['GET']);
        sendHtml(res, dashboardHtml);
        return;
      }

      const { route, params, allowed } = matchRoute(url.pathname, method);
      if (!route) {
        if (allowed.length > 0) throw methodNotAllowed(url.pathname, method, allowed);
        throw new AdminError('ROUTE_NOT_FOUND', `no resource at ${url.pathname}; the API lives under /api (see docs/admin-api.md)`);
      }
      if (route.auth) checkToken(req, tokenDigest, logger, authFailures, authLimiter);

      const result = await route.handler({ req, url, params, store: options.store, logger, publicKey, maxBodyBytes, exclusive });
      sendJson(res, result.status, result.body);
    } catch (err) {
      sendError(req, res, err, logger);
    }
  }

  return server;
}

function parseTarget(target: string): URL {
  try {
    return new URL(target, 'http://admin.invalid');
  } catch {
    throw new AdminError('ROUTE_NOT_FOUND', `request target "${target}" is not a valid URL path; send a path such as /api/releases`);
  }
}

function matchRoute(path: string, method: string): { route?: Route; params: string[]; allowed: string[] } {
  const allowed: string[] = [];
  for (const route of ROUTES) {
    const match = route.pattern.exec(path);
    if (!match) continue;
    if (route.method !== method) {
      allowed.push(route.method);
      continue;
    }
    const params = match.slice(1).map((part) => decodePathSegment(part));
    return { route, params, allowed };
  }
  return { params: [], allowed };
}

function decodePathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new AdminError('ROUTE_NOT_FOUND', `path segment "${segment}" has an invalid percent-encoding`);
  }
}

function methodNotAllowed(path: string, method: string, allowed: string[]): AdminError {
  const list = allowed.includes('GET') ? [...allowed, 'HEAD'] : allowed;
  return new AdminError('METHOD_NOT_ALLOWED', `${method} is not supported on ${path}; use ${list.join(' or ')}`, {
    headers: { Allow: list.join(', ') },
  });
}

/**
 * Rejects a request that reached a loopback socket under a DNS name other than
 * localhost. Reads need no token, so without this check a web page whose DNS name
 * is rebound to 127.0.0.1 could read the device list through the browser.
 */
function checkHost(req: IncomingMessage): void {
  const local = req.socket.localAddress ?? '';
  const loopback = local.startsWith('127.') || local === '::1' || local.startsWith('::ffff:127.');
  if (!loopback) return;
  const host = (req.headers.host ?? '').toLowerCase();
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:[0-9]*$/, '');
  const allowed = name === '' || name === 'localhost' || isIP(name.replace(/^\[|\]$/g, '')) !== 0;
  if (!allowed) {
    throw new AdminError(
      'HOST_REJECTED',
      `Host "${host}" is not served on a loopback address; connect as 127.0.0.1, [::1] or localhost`,
    );
  }
}

/** SHA-256 of the token, so the comparison runs in constant time over equal lengths. */
function digestToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Minimum time between two warnings about rejected tokens, in milliseconds. */
const AUTH_WARNING_INTERVAL_MS = 10_000;

/**
 * Logs each kind of rejection (message) at most once per AUTH_WARNING_INTERVAL_MS with
 * the number of its rejections since its last warning, so a client that retries in a
 * loop cannot flood the log. Kinds are throttled apart, so the start of a 429 lockout
 * is never hidden behind the wrong-token warnings that caused it.
 */
class AuthFailureLog {
  private readonly byMessage = new Map<string, { lastWarningMs: number; suppressed: number }>();

  warn(logger: Logger, req: IncomingMessage, message: string): void {
    const now = Date.now();
    const entry = this.byMessage.get(message) ?? { lastWarningMs: -Infinity, suppressed: 0 };
    this.byMessage.set(message, entry);
    if (now - entry.lastWarningMs < AUTH_WARNING_INTERVAL_MS) {
      entry.suppressed++;
      return;
    }
    logger.warn({ method: req.method, url: req.url, remoteAddress: req.socket.remoteAddress, suppressed: entry.suppressed }, message);
    entry.lastWarningMs = now;
    entry.suppressed = 0;
  }
}

/**
 * Checks the bearer token. Each missing or wrong token spends one token of the client
 * address's bucket. While that bucket is empty, every authenticated request from the
 * address gets 429 before its token is compared, a correct one included, so guessing
 * gains nothing from the response.
 */
function checkToken(req: IncomingMessage, expected: Buffer, logger: Logger, failures: AuthFailureLog, limiter: TokenBuckets): void {
  const address = req.socket.remoteAddress ?? 'unknown';
  const waitS = limiter.waitS(address);
  if (waitS > 0) {
    failures.warn(logger, req, 'admin client over its limit of failed authentications; answering 429');
    throw new AdminError('AUTH_RATE_LIMITED', `too many requests with a missing or wrong bearer token from ${address}; retry in ${waitS} s with the admin token`, {
      headers: { 'Retry-After': String(waitS) },
    });
  }
  const header = req.headers.authorization;
  const match = header === undefined ? null : /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  if (!match) {
    limiter.take(address, address);
    failures.warn(logger, req, 'admin request without bearer token');
    throw new AdminError('TOKEN_MISSING', 'this request changes state and needs the header "Authorization: Bearer <admin token>"', {
      headers: { 'WWW-Authenticate': 'Bearer realm="ota-server admin"' },
    });
  }
  if (!timingSafeEqual(digestToken(match[1]!), expected)) {
    limiter.take(address, address);
    failures.warn(logger, req, 'admin request with wrong bearer token');
    throw new AdminError('TOKEN_INVALID', 'bearer token does not match the admin token; use the value of --admin-token or of <data-dir>/admin-token');
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(text);
}

function sendHtml(res: ServerResponse, html: string): void {
  res.writeHead(200, {
    ...dashboardHeaders,
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': Buffer.byteLength(html),
  });
  res.end(html);
}

function sendError(req: IncomingMessage, res: ServerResponse, err: unknown, logger: Logger): void {
  const error = err instanceof AdminError ? err : null;
  if (!error) {
    logger.error({ err, method: req.method, url: req.url }, 'admin request failed');
  } else if (error.status !== 401 && error.status !== 403 && error.status !== 429) {
    // Authentication failures are logged by AuthFailureLog, throttled.
    logger.info({ method: req.method, url: req.url, code: error.code, status: error.status }, 'admin request rejected');
  }
  const response = error ?? new AdminError('INTERNAL', `${req.method} ${req.url} failed inside the server; see the server log for the cause`);

  if (res.headersSent) {
    res.destroy();
    return;
  }
  const headers: Record<string, string> = { ...response.headers };
  // Part of the body has not arrived: close the connection after the response rather
  // than receive the rest, which may be large or endless.
  if (!req.complete) headers.Connection = 'close';
  sendJson(res, response.status, response.toJSON(), headers);
  req.resume();
}
