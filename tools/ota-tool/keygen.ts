// keygen command: creates the Ed25519 key pair that signs releases.
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { CliError, printResult, type CliIo, type CommonArgs } from './io.ts';
import { rawPublicKey } from './keys.ts';

export interface KeygenArgs extends CommonArgs {
  key: string;
  force: boolean;
}

/** Permissions of the private key file: owner read and write only. */
const PRIVATE_KEY_MODE = 0o600;
const PUBLIC_KEY_MODE = 0o644;

export async function keygen(args: KeygenArgs, io: CliIo): Promise<void> {
  const publicFile = `${args.key}.pub`;
  if (!args.force) {
    for (const file of [args.key, publicFile]) {
      if (existsSync(file)) {
        throw new CliError(
          `${file} already exists; keygen does not overwrite a key unless --force is given, because releases signed with the old key would no longer verify`,
          `ota-tool keygen --key ${args.key}.new`,
          'FILE_EXISTS',
        );
      }
    }
  }

  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const privatePem = privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  const publicPem = publicKey.export({ format: 'pem', type: 'spki' }) as string;

  // The mode argument applies only when the file is created, so an overwritten
  // file gets chmod as well.
  writeFileSync(args.key, privatePem, { mode: PRIVATE_KEY_MODE, flag: args.force ? 'w' : 'wx' });
  chmodSync(args.key, PRIVATE_KEY_MODE);
  writeFileSync(publicFile, publicPem, { mode: PUBLIC_KEY_MODE, flag: args.force ? 'w' : 'wx' });

  const publicKeyHex = rawPublicKey(publicKey).toString('hex');
  printResult(
    io,
    args,
    { privateKeyFile: args.key, publicKeyFile: publicFile, publicKey: publicKeyHex },
    [
      `private key: ${args.key} (mode 0600, keep it off the server)`,
      `public key:  ${publicFile}`,
      `public key (raw hex): ${publicKeyHex}`,
    ].join('\n'),
  );
}
