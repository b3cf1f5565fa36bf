// Logger factory: one pino JSON logger per daemon, written to stdout so that process
// supervisors and tests read the same lines. Secrets never reach it: the redact
// list drops the admin token wherever a caller puts it by mistake.
import pino from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function createLogger(level: LogLevel, destination?: pino.DestinationStream): pino.Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'ota-server' },
    redact: { paths: ['token', 'adminToken', '*.token', '*.adminToken', 'headers.authorization'], censor: '[redacted]' },
  };
  return destination ? pino(options, destination) : pino(options);
}
