// Admin token resolution: the configured token, else the one in
// <data-dir>/admin-token, else a new random one written there with mode 0600.
// Only the file path is ever logged, never the token.
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type pino from 'pino';

export const TOKEN_FILE = 'admin-token';
/** Random bytes in a generated token: 256 bits, sent as 64 hex characters. */
const TOKEN_BYTES = 32;

export async function resolveAdminToken(dataDir: string, configured: string | undefined, logger: pino.Logger): Promise<string> {
  if (configured !== undefined && configured !== '') return configured;
  const file = path.join(dataDir, TOKEN_FILE);
  try {
    const stored = (await readFile(file, 'utf8')).trim();
    if (stored !== '') {
      logger.info({ tokenFile: file }, 'admin token read from file');
      return stored;
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const token = randomBytes(TOKEN_BYTES).toString('hex');
  await writeFile(file, `${token}\n`, { mode: 0o600 });
  logger.info({ tokenFile: file }, 'admin token generated; read it from the file');
  return token;
}
