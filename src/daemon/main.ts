// ota-server entry point (bin/ota-server.js): parses the options, starts the daemon,
// and shuts it down cleanly on SIGINT or SIGTERM. Exit status: 0 after a clean stop
// or --help, 1 when start-up or shutdown fails, 2 for an invalid option.
import pino from 'pino';
import { createLogger } from '../log.ts';
import { UsageError, parseCli } from './cli.ts';
import { StartupError, startServer } from './server.ts';

/**
 * Time from a stop signal to a forced exit with status 1. A graceful stop takes at
 * most about 5 s (the CoAP drain and the admin connection cut run side by side), so
 * this only fires when something hangs.
 */
const SHUTDOWN_DEADLINE_MS = 10_000;

/**
 * Synchronous stdout for pino. pino's default asynchronous stream flushes at exit with
 * sonic-boom 4.2.1's flushSync, which retries a write that failed with EPIPE forever,
 * so a daemon piped into "head" spun after SIGTERM. pino.destination drops the writes
 * after EPIPE, and without buffered data there is nothing left to flush at exit.
 */
function stdoutDestination(): pino.DestinationStream {
  return pino.destination({ dest: 1, sync: true });
}

async function main(): Promise<number> {
  let options;
  try {
    options = await parseCli(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`ota-server: ${err.message}\n`);
    return 2;
  }
  if (!options) return 0;

  const logger = createLogger(options.logLevel, stdoutDestination());
  // Listening before start-up ends: a signal that arrives between the "listening" line
  // and the end of start-up would otherwise kill the process without a clean stop.
  const stopRequested = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });

  let server;
  try {
    server = await startServer({
      dataDir: options.dataDir,
      logger,
      coapPort: options.coapPort,
      adminPort: options.adminPort,
      adminBind: options.adminBind,
      eventRetentionDays: options.eventRetentionDays,
      deviceRate: options.deviceRate,
      ...(options.bind === undefined ? {} : { bind: options.bind }),
      ...(options.adminToken === undefined ? {} : { adminToken: options.adminToken }),
      ...(options.publicKeyPem === undefined ? {} : { publicKeyPem: options.publicKeyPem }),
      knownDevicesOnly: options.knownDevicesOnly,
    });
  } catch (err) {
    logger.fatal({ err, dataDir: options.dataDir }, 'start-up failed');
    if (err instanceof StartupError) process.stderr.write(`ota-server: ${err.message}\n`);
    return 1;
  }

  const signal = await stopRequested;
  setTimeout(() => {
    process.stderr.write(`ota-server: shutdown did not finish within ${SHUTDOWN_DEADLINE_MS} ms; exiting\n`);
    process.exit(1);
  }, SHUTDOWN_DEADLINE_MS).unref();
  logger.info({ signal }, 'signal received');
  try {
    await server.close();
    return 0;
  } catch (err) {
    logger.error({ err }, 'shutdown failed');
    return 1;
  }
}

const status = await main();
// The explicit exit, one turn after the last log line, keeps a timer left by a library
// from holding a stopped daemon open.
process.exitCode = status;
setImmediate(() => process.exit(status));
