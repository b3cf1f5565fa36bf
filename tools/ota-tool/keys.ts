// Ed25519 key files: PKCS#8 PEM private keys that sign releases, SPKI PEM public keys
// that devices and servers verify with, and the raw 32-byte form the firmware stores.
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CliError } from './io.ts';

/** Bytes of a raw Ed25519 public key (RFC 8032 section 5.1.5). */
export const RAW_PUBLIC_KEY_BYTES = 32;

function readKeyFile(file: string, flag: string, example: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new CliError(`${flag} ${file} cannot be read: ${(error as Error).message}`, example);
  }
}

export function loadPrivateKey(file: string): KeyObject {
  const example = 'ota-tool keygen --key release.key && ota-tool publish app.py --version 1.0.0 --key release.key';
  const pem = readKeyFile(file, '--key', example);
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (error) {
    if (pem.includes('-----BEGIN PUBLIC KEY-----')) {
      const privateFile = file.endsWith('.pub') ? file.slice(0, -'.pub'.length) : 'the private key file';
      throw new CliError(`--key ${file} is a public key; releases are signed with the private key, ${privateFile}, that keygen wrote beside it`, example);
    }
    throw new CliError(`--key ${file} is not a PEM private key: ${(error as Error).message}`, example);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new CliError(`--key ${file} is a ${key.asymmetricKeyType} key; releases are signed with Ed25519`, example);
  }
  return key;
}

/** Reads an SPKI PEM Ed25519 public key; example is the command line that errors show. */
export function loadPublicKey(file: string, example: string): KeyObject {
  const pem = readKeyFile(file, '--public-key', example);
  // createPublicKey() also derives a public key from a private PEM; a private key
  // here means the wrong file is about to be copied around.
  if (pem.includes('PRIVATE KEY')) {
    throw new CliError(`--public-key ${file} is a private key; pass the public key file, such as ${file}.pub`, example);
  }
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (error) {
    throw new CliError(`--public-key ${file} is not a PEM public key: ${(error as Error).message}`, example);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new CliError(`--public-key ${file} is a ${key.asymmetricKeyType} key; releases are signed with Ed25519`, example);
  }
  return key;
}

/** Returns the raw 32-byte public key: the "x" member of its JWK form (RFC 8037 section 2). */
export function rawPublicKey(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' });
  const raw = Buffer.from(jwk.x ?? '', 'base64url');
  if (raw.length !== RAW_PUBLIC_KEY_BYTES) {
    throw new Error(`Ed25519 public key must be ${RAW_PUBLIC_KEY_BYTES} bytes, got ${raw.length}`);
  }
  return raw;
}
