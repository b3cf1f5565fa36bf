// Shared setup of the admin suites: a real Store on a temporary LevelDB, the admin
// server on an ephemeral 127.0.0.1 port, signed release bodies and small HTTP helpers.
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type http from 'node:http';
import { pino, type Logger } from 'pino';
import { createAdminServer } from '../../src/admin/server.ts';
import type { RateLimit } from '../../src/rate-limit.ts';
import { Encoding, type EncodingName } from '../../src/protocol/constants.ts';
import { sha256, signedMessage } from '../../src/protocol/manifest.ts';
import { Store } from '../../src/storage/store.ts';

export const TOKEN = 'test-admin-token-5d1f0c';

export interface AdminHarness {
  store: Store;
  server: http.Server;
  baseUrl: string;
  close(): Promise<void>;
}

/** Starts the admin server on a real Store in a fresh temporary folder. */
export async function startAdmin(
  options: { publicKeyPem?: string; maxBodyBytes?: number; logger?: Logger; authFailureLimit?: RateLimit } = {},
): Promise<AdminHarness> {
  const dir = await mkdtemp(join(tmpdir(), 'ota-admin-'));
  const logger = options.logger ?? pino({ level: 'silent' });
  const store = await Store.open(dir, logger);
  const server = createAdminServer({ store, token: TOKEN, ...options, logger });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    store,
    server,
    baseUrl: `http://127.0.0.1:${port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export const signingKeys = generateKeyPairSync('ed25519');
export const publicKeyPem = signingKeys.publicKey.export({ type: 'spki', format: 'pem' }).toString();

/** Builds a publish body whose size, digest and signature all match the payload. */
export function releaseBody(
  version: string,
  overrides: Record<string, unknown> = {},
  options: { payload?: Buffer; privateKey?: KeyObject; encoding?: EncodingName } = {},
): Record<string, unknown> {
  const payload = options.payload ?? Buffer.from(`PB\x01 payload of ${version}`, 'latin1');
  const encoding = options.encoding ?? 'raw';
  const digest = sha256(payload);
  const message = signedMessage({ version, size: payload.length, sha256: digest, encoding: Encoding[encoding] });
  const signature = sign(null, message, options.privateKey ?? signingKeys.privateKey);
  return {
    version,
    channel: 'stable',
    notes: `notes of ${version}`,
    encoding,
    rollout: 100,
    size: payload.length,
    sha256: digest.toString('hex'),
    signature: signature.toString('hex'),
    payload: payload.toString('base64'),
    ...overrides,
  };
}

export interface JsonResponse {
  status: number;
  headers: Headers;
  body: any;
}

/** Sends a request with an optional JSON body. A null token sends no Authorization header. */
export async function call(
  baseUrl: string,
  method: string,
  path: string,
  options: { body?: unknown; rawBody?: string; token?: string | null; contentType?: string } = {},
): Promise<JsonResponse> {
  const headers: Record<string, string> = {};
  const token = options.token === undefined ? TOKEN : options.token;
  if (token !== null) headers.Authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (options.rawBody !== undefined) body = options.rawBody;
  else if (options.body !== undefined) body = JSON.stringify(options.body);
  if (body !== undefined) headers['Content-Type'] = options.contentType ?? 'application/json';

  const response = await fetch(baseUrl + path, { method, headers, body });
  const text = await response.text();
  const type = response.headers.get('content-type') ?? '';
  return { status: response.status, headers: response.headers, body: type.startsWith('application/json') ? JSON.parse(text) : text };
}
