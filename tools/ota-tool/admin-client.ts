// HTTP client of the ota-server admin API: JSON in and out, Bearer token on every
// request when one is known, server errors turned into CliError with the fix.
import { readFileSync } from 'node:fs';
import { CliError, type CliIo } from './io.ts';

/** Timeout of one admin request in milliseconds, long enough for a 16 MiB publish on a LAN. */
export const ADMIN_TIMEOUT_MS = 30_000;
export const DEFAULT_ADMIN_SERVER = 'http://127.0.0.1:3000';

export interface AdminArgs {
  server: string;
  token?: string;
  tokenFile?: string;
}

export interface ServerError {
  status: number;
  code: string;
  message: string;
}

export class AdminRequestError extends CliError {
  constructor(
    message: string,
    example: string | undefined,
    readonly server: ServerError,
  ) {
    super(message, example, server.code);
  }
}

/** Finds the admin token: --token, then --token-file, then OTA_ADMIN_TOKEN; example is the running command's. */
export function resolveToken(args: AdminArgs, io: CliIo, example: string): string | undefined {
  if (args.token) return args.token;
  if (args.tokenFile) {
    let text: string;
    try {
      text = readFileSync(args.tokenFile, 'utf8');
    } catch (error) {
      throw new CliError(
        `--token-file ${args.tokenFile} cannot be read: ${(error as Error).message}; ota-server writes its token to <data-dir>/admin-token`,
        example,
      );
    }
    const token = text.trim();
    if (!token) throw new CliError(`--token-file ${args.tokenFile} is empty; ota-server writes its token to <data-dir>/admin-token`, example);
    return token;
  }
  return io.env.OTA_ADMIN_TOKEN || undefined;
}

export function normalizeServer(server: string): string {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new CliError(`--server "${server}" is not a URL; the admin API needs http://HOST:PORT`, 'ota-tool releases --server http://127.0.0.1:3000', 'USAGE');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CliError(`--server "${server}" must be an http:// or https:// admin URL`, 'ota-tool releases --server http://127.0.0.1:3000', 'USAGE');
  }
  return url.origin + url.pathname.replace(/\/+$/, '');
}

export class AdminClient {
  readonly server: string;
  private readonly token: string | undefined;

  /** Command line of the running command that works with a token, shown when the server rejects the token. */
  private readonly tokenExample: string;

  constructor(args: AdminArgs, io: CliIo, example: string) {
    this.server = normalizeServer(args.server);
    this.tokenExample = example.includes('--token') ? example : `${example} --token-file data/admin-token`;
    this.token = resolveToken(args, io, this.tokenExample);
  }

  /** Sends one request and resolves with the parsed JSON body of a 2xx response. */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const url = `${this.server}${path}`;

    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(ADMIN_TIMEOUT_MS),
      });
    } catch (error) {
      // fetch() rejects with "fetch failed" and puts the socket error under cause.
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const reason = cause?.code ?? cause?.message ?? (error as Error).message;
      throw new CliError(
        `${method} ${url} failed (${reason}); check that ota-server runs and that --server names its admin port`,
        'ota-tool releases --server http://127.0.0.1:3000',
        'SERVER_UNREACHABLE',
      );
    }

    const text = await response.text();
    let parsed: unknown = undefined;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
    }
    if (response.ok) {
      if (parsed === undefined) throw new CliError(`${method} ${url} returned ${response.status} without a JSON body`, undefined, 'BAD_RESPONSE');
      return parsed as T;
    }
    throw this.describeFailure(method, url, response.status, parsed, text);
  }

  private describeFailure(method: string, url: string, status: number, parsed: unknown, text: string): AdminRequestError {
    const error = (parsed as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
    const server: ServerError = {
      status,
      code: typeof error?.code === 'string' ? error.code : `HTTP_${status}`,
      message: typeof error?.message === 'string' ? error.message : text.slice(0, 200),
    };
    const detail = server.message ? `: ${server.message}` : '';
    if (status === 401) {
      return new AdminRequestError(
        `${method} ${url} needs the admin token (401 ${server.code}); pass --token, --token-file or set OTA_ADMIN_TOKEN`,
        this.tokenExample,
        server,
      );
    }
    if (status === 403) {
      return new AdminRequestError(
        `the server rejected the admin token (403 ${server.code}); use the token the server was started with, or the one in <data-dir>/admin-token`,
        this.tokenExample,
        server,
      );
    }
    return new AdminRequestError(`${method} ${url} failed with ${status} ${server.code}${detail}`, undefined, server);
  }
}
