// ota-server entry point (bin/ota-server.js): parses the options, starts the daemon,
// and shuts it down cleanly on SIGINT or SIGTERM. Exit status: 0 after a clean stop
// or --help, 1 when start-up fails, 2 for an invalid option.
import { createLogger } from '../log.ts';
import { UsageError, parseCli } from './cli.ts';
import { startServer } from './server.ts';

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

  const logger = createLogger(options.logLevel);
  let server;
  try {
    server = await startServer({
      dataDir: options.dataDir,
      logger,
      coapPort: options.coapPort,
      adminPort: options.adminPort,
      adminBind: options.adminBind,
      ...(options.bind === undefined ? {} : { bind: options.bind }),
      ...(options.adminToken === undefined ? {} : { adminToken: options.adminToken }),
      ...(options.publicKeyPem === undefined ? {} : { publicKeyPem: options.publicKeyPem }),
    });
  } catch (err) {
    logger.fatal({ err, dataDir: options.dataDir }, 'start-up failed');
    return 1;
  }

  const running = server;
  return new Promise<number>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      logger.info({ signal }, 'signal received');
      running.close().then(
        () => resolve(0),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

const status = await main();
// The explicit exit, one turn after the last log line, keeps a timer left by a library
// from holding a stopped daemon open.
process.exitCode = status;
setImmediate(() => process.exit(status));
