// Output, errors and small shared validators of the ota-tool commands. Commands write
// through CliIo, never to process.stdout, so tests run them in-process.
import { MAX_VERSION_BYTES } from '../../src/protocol/constants.ts';

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Record<string, string | undefined>;
}

export const processIo: CliIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
};

/**
 * A failure the user can fix. The message names the flag or value and the reason, and
 * example is a command line that works.
 */
export class CliError extends Error {
  constructor(
    message: string,
    readonly example?: string,
    /** Stable code for scripts, such as RELEASE_EXISTS. */
    readonly code = 'CLI_ERROR',
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** Options every command accepts. */
export interface CommonArgs {
  json: boolean;
}

/** Prints a result: one JSON object with --json, otherwise the text for people. */
export function printResult(io: CliIo, args: CommonArgs, value: object, text: string): void {
  if (args.json) io.stdout(`${JSON.stringify(value)}\n`);
  else io.stdout(text.endsWith('\n') ? text : `${text}\n`);
}

/** Formats rows as a table with a header line, columns padded to their widest cell. */
export function formatTable(columns: string[], rows: string[][]): string {
  const widths = columns.map((column, i) => Math.max(column.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(columns), ...rows.map(line)].join('\n');
}

/** Semantic version 2.0.0: MAJOR.MINOR.PATCH, optional -prerelease and +build. */
const SEMVER_PATTERN =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-(0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(\.(0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$/;

/** Returns why a version string is not usable as a release version, or null. */
export function versionProblem(version: string): string | null {
  if (!SEMVER_PATTERN.test(version)) return `"${version}" is not a semantic version MAJOR.MINOR.PATCH`;
  const bytes = Buffer.byteLength(version, 'utf8');
  if (bytes > MAX_VERSION_BYTES) return `"${version}" is ${bytes} bytes, the maximum is ${MAX_VERSION_BYTES}`;
  return null;
}
