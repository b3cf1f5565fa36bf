// Request body reading for the admin API: a byte limit enforced before and while
// reading, a JSON media type check, and JSON parsing into one plain object.
import type { IncomingMessage } from 'node:http';
import { AdminError } from './errors.ts';

/** Default body limit in bytes. Base64 adds a third, so payloads just under 12 MiB fit. */
export const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;

/** Reads the whole body, rejecting it with BODY_TOO_LARGE once it passes maxBytes. */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBytes) {
    return Promise.reject(tooLarge(Number(declared), maxBytes));
  }

  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      received += chunk.length;
      if (received > maxBytes) {
        failed = true;
        chunks.length = 0;
        reject(tooLarge(received, maxBytes));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!failed) resolve(Buffer.concat(chunks));
    });
    req.on('error', (err) => {
      if (!failed) {
        failed = true;
        reject(err);
      }
    });
  });
}

function tooLarge(bytes: number, maxBytes: number): AdminError {
  return new AdminError(
    'BODY_TOO_LARGE',
    `request body of at least ${bytes} bytes exceeds the limit of ${maxBytes} bytes; publish a smaller payload (base64 in the body adds a third to its size)`,
  );
}

/** Reads a JSON body and returns it when it is one JSON object. */
export async function readJsonObject(req: IncomingMessage, maxBytes: number): Promise<Record<string, unknown>> {
  const mediaType = (req.headers['content-type'] ?? 'application/json').split(';')[0]!.trim().toLowerCase();
  if (mediaType !== 'application/json') {
    throw new AdminError(
      'UNSUPPORTED_MEDIA_TYPE',
      `Content-Type "${mediaType}" is not supported; send the body as JSON with Content-Type: application/json`,
    );
  }

  const body = await readBody(req, maxBytes);
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new AdminError('INVALID_JSON', `request body is not valid JSON (${(err as Error).message}); send one JSON object`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    const kind = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
    throw new AdminError('INVALID_JSON', `request body is ${kind}; send one JSON object such as {"rollout":50}`);
  }
  return value as Record<string, unknown>;
}
