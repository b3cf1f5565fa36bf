// The release behind the hex examples in docs/protocol.md: a one-file bundle signed
// with a fixed Ed25519 key. Ed25519 signatures are deterministic (RFC 8032 section
// 5.1.6), so the same bytes come out on every run and the examples can be checked.
import { createHash, createPrivateKey, sign } from 'node:crypto';
import { packBundle } from '../../src/protocol/bundle.ts';
import { downloadId, signedMessage } from '../../src/protocol/manifest.ts';
import type { ReleaseRecord } from '../../src/storage/store.ts';

/** PKCS#8 DER header of an Ed25519 private key (RFC 8410 section 7); the 32-byte seed follows. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export const EXAMPLE_VERSION = '1.1.0';

export function exampleRelease(): { record: ReleaseRecord; payload: Buffer } {
  const payload = packBundle([{ name: 'main.py', data: Buffer.from('print("hello")\n') }]);
  const digest = createHash('sha256').update(payload).digest();
  const seed = createHash('sha256').update('pico-ota protocol example key').digest();
  const key = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const signature = sign(null, signedMessage({ version: EXAMPLE_VERSION, size: payload.length, sha256: digest, encoding: 0 }), key);
  const record: ReleaseRecord = {
    version: EXAMPLE_VERSION,
    channel: 'stable',
    notes: 'protocol example',
    encoding: 'raw',
    rollout: 100,
    size: payload.length,
    sha256: digest.toString('hex'),
    signature: signature.toString('hex'),
    downloadId: downloadId(digest),
    revoked: false,
    publishedAt: '2026-01-01T00:00:00.000Z',
  };
  return { record, payload };
}
