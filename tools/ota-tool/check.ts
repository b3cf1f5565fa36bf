// check command: sends the device's update check (POST /c with a CBOR map) and prints
// the manifest the server offers, optionally verifying its signature.
import { verify } from 'node:crypto';
import { Decoder, Encoder } from 'cbor-x';
import { CheckKey, DEFAULT_CHANNEL, Encoding, FORMAT_CBOR, ManifestKey } from '../../src/protocol/constants.ts';
import { encodingName, signedMessage } from '../../src/protocol/manifest.ts';
import { CoapClient, codeOf, commandTiming, encodeUint, findOption, formatCode, OptionNumber, parseCoapUri } from './coap-client.ts';
import { CliError, printResult, type CliIo, type CommonArgs } from './io.ts';
import { loadPublicKey } from './keys.ts';

export interface CheckArgs extends CommonArgs {
  server: string;
  device: string;
  current: string;
  channel?: string;
  publicKey?: string;
  /** Seconds to wait for the response, retransmissions included. */
  timeout?: number;
}

/** The manifest of an offered update, with binary fields as hex. */
export interface ManifestJson {
  update: true;
  version: string;
  /** Full coap:// URI of the image: server plus download path. */
  uri: string;
  path: string;
  size: number;
  sha256: string;
  signature: string;
  encoding: string;
  blockSize: number;
  signatureValid?: boolean;
}

const cborEncoder = new Encoder({ useRecords: false, mapsAsObjects: false });
const cborDecoder = new Decoder({ useRecords: false, mapsAsObjects: false });

/** Builds the CBOR check request: {0: device id, 1: running version, 2: channel}. */
export function encodeCheckRequest(device: string, version: string, channel?: string): Buffer {
  const map = new Map<number, string>([
    [CheckKey.deviceId, device],
    [CheckKey.version, version],
  ]);
  if (channel !== undefined) map.set(CheckKey.channel, channel);
  return Buffer.from(cborEncoder.encode(map));
}

function field<T>(map: Map<number, unknown>, key: number, name: string, test: (value: unknown) => boolean): T {
  const value = map.get(key);
  if (!test(value)) throw new CliError(`the server's manifest has an invalid ${name} (key ${key}): ${JSON.stringify(value)}`, undefined, 'BAD_MANIFEST');
  return value as T;
}

const isBytes = (length: number) => (value: unknown) => value instanceof Uint8Array && value.length === length;
const isUint = (value: unknown) => Number.isInteger(value) && (value as number) >= 0;

/** Decodes a check response: null for "no update" (an empty map), else the manifest. */
export function decodeCheckAnswer(payload: Buffer, serverUri: string): ManifestJson | null {
  let decoded: unknown;
  try {
    decoded = cborDecoder.decode(payload);
  } catch (error) {
    throw new CliError(`the check response is not CBOR (${(error as Error).message}): ${payload.toString('hex')}`, undefined, 'BAD_MANIFEST');
  }
  if (!(decoded instanceof Map)) throw new CliError(`the check response must be a CBOR map, got ${payload.toString('hex')}`, undefined, 'BAD_MANIFEST');
  if (decoded.size === 0) return null;

  const map = decoded as Map<number, unknown>;
  const path = field<string>(map, ManifestKey.path, 'download path', (value) => typeof value === 'string' && value.length > 0).replace(/^\/+/, '');
  return {
    update: true,
    version: field<string>(map, ManifestKey.version, 'version', (value) => typeof value === 'string'),
    uri: `${serverUri.replace(/\/+$/, '')}/${path}`,
    path: `/${path}`,
    size: field<number>(map, ManifestKey.size, 'size', isUint),
    sha256: Buffer.from(field<Uint8Array>(map, ManifestKey.sha256, 'sha256', isBytes(32))).toString('hex'),
    signature: Buffer.from(field<Uint8Array>(map, ManifestKey.signature, 'signature', isBytes(64))).toString('hex'),
    encoding: encodingName(field<number>(map, ManifestKey.encoding, 'encoding', (value) => Object.values(Encoding).includes(value as 0 | 1))),
    blockSize: field<number>(map, ManifestKey.blockSize, 'block size hint', isUint),
  };
}

const CHECK_EXAMPLE = 'ota-tool check --server coap://127.0.0.1:5683 --device pico-001 --current 1.0.0 --public-key release.key.pub';

/** Returns scheme, host and port of the --server URI, the base that download paths join. */
function serverBase(server: string): { base: string; host: string; port: number } {
  let target;
  try {
    target = parseCoapUri(server);
  } catch (error) {
    throw new CliError(`--server ${(error as Error).message}`, 'ota-tool check --server coap://127.0.0.1:5683 --device pico-001 --current 1.0.0', 'USAGE');
  }
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  return { base: `coap://${host}:${target.port}`, host: target.host, port: target.port };
}

/** Returns the exit code: 1 when --public-key is given and the signature does not verify. */
export async function check(args: CheckArgs, io: CliIo): Promise<number> {
  const publicKey = args.publicKey ? loadPublicKey(args.publicKey, CHECK_EXAMPLE) : undefined;
  const { base, host, port } = serverBase(args.server);
  const client = await CoapClient.connect(host, port, commandTiming(args.timeout, `${base}/c`, io.stderr));
  let response;
  try {
    response = await client.request(
      { path: ['c'], query: [] },
      {
        code: codeOf('0.02'),
        options: [{ number: OptionNumber.contentFormat, value: encodeUint(FORMAT_CBOR) }],
        payload: encodeCheckRequest(args.device, args.current, args.channel),
      },
    );
  } catch (error) {
    throw new CliError(`check failed: ${(error as Error).message}`, 'ota-tool check --server coap://127.0.0.1:5683 --device pico-001 --current 1.0.0', 'CHECK_FAILED');
  } finally {
    client.close();
  }
  if (response.code !== codeOf('2.05')) {
    throw new CliError(`the server responded to the check with ${formatCode(response.code)}: ${response.payload.toString('utf8')}`, undefined, 'CHECK_FAILED');
  }
  const format = findOption(response, OptionNumber.contentFormat);
  if (format && format.length > 0 && format.readUIntBE(0, format.length) !== FORMAT_CBOR) {
    throw new CliError(`the check response has Content-Format ${format.readUIntBE(0, format.length)}, expected ${FORMAT_CBOR} (CBOR)`, undefined, 'BAD_MANIFEST');
  }

  const manifest = decodeCheckAnswer(response.payload, base);
  const channel = args.channel ?? DEFAULT_CHANNEL;
  if (!manifest) {
    printResult(io, args, { update: false }, `no update for ${args.device} on ${args.current} (channel ${channel})`);
    return 0;
  }

  if (publicKey) {
    const message = signedMessage({
      version: manifest.version,
      size: manifest.size,
      sha256: Buffer.from(manifest.sha256, 'hex'),
      encoding: Encoding[manifest.encoding as keyof typeof Encoding],
    });
    manifest.signatureValid = verify(null, message, publicKey, Buffer.from(manifest.signature, 'hex'));
  }

  const lines = [
    `update for ${args.device} on ${args.current} (channel ${channel}): ${manifest.version}`,
    `uri:        ${manifest.uri}`,
    `size:       ${manifest.size} bytes (${manifest.encoding})`,
    `sha256:     ${manifest.sha256}`,
    `signature:  ${manifest.signature}`,
    `block size: ${manifest.blockSize}`,
  ];
  if (manifest.signatureValid !== undefined) {
    lines.push(`signature ${manifest.signatureValid ? 'verified' : 'INVALID'} with ${args.publicKey}`);
  }
  printResult(io, args, manifest, lines.join('\n'));
  if (manifest.signatureValid === false) {
    io.stderr(`error: the signature of ${manifest.version} does not verify with --public-key ${args.publicKey}; a device with this key rejects the update\n`);
    return 1;
  }
  return 0;
}
