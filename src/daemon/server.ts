// Programmatic start of the whole daemon: storage, the CoAP endpoint and the admin
// HTTP server, with one close() that stops them in order. main.ts wraps it for the
// command line; tests call it in-process.
import { mkdir } from 'node:fs/promises';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import type pino from 'pino';
import { createAdminServer } from '../admin/server.ts';
import { DEFAULT_DEVICE_RATE } from '../coap/device-limit.ts';
import { startCoapService, type CoapService } from '../coap/server.ts';
import type { RateLimit } from '../rate-limit.ts';
import { Store } from '../storage/store.ts';
import { DEFAULT_EVENT_RETENTION_DAYS, startEventRetention } from './event-retention.ts';
import { resolveAdminToken } from './token.ts';

export const DEFAULT_COAP_PORT = 5683;
export const DEFAULT_ADMIN_PORT = 3000;
export const DEFAULT_ADMIN_BIND = '127.0.0.1';
/** Time close() gives open admin connections before it cuts them. */
const ADMIN_CLOSE_TIMEOUT_MS = 5000;

export interface ServerOptions {
  dataDir: string;
  logger: pino.Logger;
  /** UDP port for CoAP; 0 picks a free one. */
  coapPort?: number;
  /** CoAP address; unset means "::" (dual-stack) where the system has IPv6, else 0.0.0.0. */
  bind?: string;
  /** TCP port for the admin API; 0 picks a free one. */
  adminPort?: number;
  adminBind?: string;
  /** Admin bearer token; unset means read or create <dataDir>/admin-token. */
  adminToken?: string;
  /** Ed25519 public key (PEM) that published releases must verify against. */
  publicKeyPem?: string;
  /** Days an event is kept; 0 keeps every event. Default DEFAULT_EVENT_RETENTION_DAYS. */
  eventRetentionDays?: number;
  /** Rejects checks and reports from device ids that are not registered. */
  knownDevicesOnly?: boolean;
  /** Limit of checks and reports per device id; default DEFAULT_DEVICE_RATE, 'off' for none. */
  deviceRate?: RateLimit | 'off';
}

export interface RunningServer {
  coapPort: number;
  adminPort: number;
  store: Store;
  close(): Promise<void>;
}

/** A start-up failure the operator can fix; the message names the option to change. */
export class StartupError extends Error {
  constructor(message: string, options: { cause: unknown }) {
    super(message, options);
    this.name = 'StartupError';
  }
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const logger = options.logger;
  await mkdir(options.dataDir, { recursive: true });
  const store = await openStore(options.dataDir, logger);
  let coap: CoapService | undefined;
  let admin: http.Server | undefined;
  try {
    const token = await resolveAdminToken(options.dataDir, options.adminToken, logger);
    const coapPort = options.coapPort ?? DEFAULT_COAP_PORT;
    const deviceRate = options.deviceRate ?? DEFAULT_DEVICE_RATE;
    coap = await startCoap(store, logger, coapPort, options.bind, { knownDevicesOnly: options.knownDevicesOnly ?? false, deviceRate }).catch((err: unknown) => {
      throw explainListenError(err, '--coap-port', coapPort, 'UDP');
    });
    admin = createAdminServer({
      store,
      token,
      logger: logger.child({ component: 'admin' }),
      ...(options.publicKeyPem === undefined ? {} : { publicKeyPem: options.publicKeyPem }),
    });
    const adminPort = options.adminPort ?? DEFAULT_ADMIN_PORT;
    await listenHttp(admin, adminPort, options.adminBind ?? DEFAULT_ADMIN_BIND).catch((err: unknown) => {
      throw explainListenError(err, '--admin-port', adminPort, 'TCP');
    });
  } catch (err) {
    await coap?.close();
    if (admin?.listening) await closeHttp(admin);
    await store.close();
    throw err;
  }

  const coapService = coap;
  const adminServer = admin;
  const adminPort = (adminServer.address() as AddressInfo).port;
  logger.info(
    { coapPort: coapService.port, coapBind: coapService.address, adminPort, knownDevicesOnly: options.knownDevicesOnly ?? false, deviceRate: options.deviceRate ?? DEFAULT_DEVICE_RATE },
    'listening',
  );
  const retention = startEventRetention(store, logger.child({ component: 'storage' }), options.eventRetentionDays ?? DEFAULT_EVENT_RETENTION_DAYS);

  let closing: Promise<void> | undefined;
  return {
    coapPort: coapService.port,
    adminPort,
    store,
    close() {
      closing ??= (async () => {
        logger.info('shutting down');
        await Promise.all([coapService.close(), closeHttp(adminServer), retention.stop()]);
        await store.close();
        logger.info('stopped');
      })();
      return closing;
    },
  };
}

/** Opens LevelDB; LevelDB's LOCK file lets one process at a time use a folder. */
async function openStore(dataDir: string, logger: pino.Logger): Promise<Store> {
  try {
    return await Store.open(dataDir, logger.child({ component: 'storage' }));
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    if (cause?.code === 'LEVEL_LOCKED') {
      throw new StartupError(`another ota-server uses ${dataDir} (its LevelDB is locked); stop it or use another --data-dir`, { cause: err });
    }
    throw err;
  }
}

function explainListenError(err: unknown, flag: string, port: number, protocol: string): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') {
    return new StartupError(`${protocol} port ${port} of ${flag} is already in use; stop the process that holds it or pick another ${flag}`, { cause: err });
  }
  if (code === 'EACCES') {
    return new StartupError(`${protocol} port ${port} of ${flag} needs privileges this process lacks; pick a port above 1023 or grant CAP_NET_BIND_SERVICE`, { cause: err });
  }
  return err;
}

/** CoAP policies passed through to startCoapService. */
interface CoapPolicies {
  knownDevicesOnly: boolean;
  deviceRate: RateLimit | 'off';
}

/** Binds CoAP; with no address given, tries dual-stack "::" and falls back to 0.0.0.0 without IPv6. */

async function startCoap(store: Store, logger: pino.Logger, port: number, bind: string | undefined, policies: CoapPolicies): Promise<CoapService> {
  const coapLogger = logger.child({ component: 'coap' });
  if (bind !== undefined) return startCoapService({ store, logger: coapLogger, port, bind, ...policies });
  try {
    return await startCoapService({ store, logger: coapLogger, port, bind: '::', ...policies });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL' && code !== 'EPROTONOSUPPORT') throw err;
    logger.warn({ err }, 'IPv6 is not available; CoAP listens on 0.0.0.0 only');
    return startCoapService({ store, logger: coapLogger, port, bind: '0.0.0.0', ...policies });
  }
}

function listenHttp(server: http.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Stops accepting, lets running requests finish, and cuts idle or slow connections. */
function closeHttp(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), ADMIN_CLOSE_TIMEOUT_MS);
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}
