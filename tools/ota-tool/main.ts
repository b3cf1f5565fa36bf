// ota-tool: the command line of release engineers (keys, publish, rollout, schedule, revoke)
// and of people debugging devices (check, download, device configuration, unpack).
// bin/ota-tool.js runs it; tests call run() in-process.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import yargs, { type Argv } from 'yargs';
import { check, type CheckArgs } from './check.ts';
import { deviceAdd, type DeviceAddArgs } from './device-add.ts';
import { deviceRemove, type DeviceRemoveArgs } from './device-remove.ts';
import { devices } from './devices.ts';
import { download, type DownloadArgs } from './download.ts';
import { events, type EventsArgs } from './events.ts';
import { CliError, processIo, type CliIo } from './io.ts';
import { keygen, type KeygenArgs } from './keygen.ts';
import { ADMIN_FLAGS, commandName, EXAMPLES, pick, validateArgs } from './options.ts';
import { publish, type PublishArgs } from './publish.ts';
import { releases } from './releases.ts';
import { revoke, type RevokeArgs } from './revoke.ts';
import { rollout, type RolloutArgs } from './rollout.ts';
import { schedule, type ScheduleArgs } from './schedule.ts';
import { unpack, type UnpackArgs } from './unpack.ts';
import type { AdminArgs } from './admin-client.ts';
import type { CommonArgs } from './io.ts';

type Handler<T> = (args: T, io: CliIo) => Promise<number | void>;

function buildParser(argv: string[], io: CliIo, setExitCode: (code: number) => void): Argv {
  // Wraps a command so its exit code reaches run(); yargs passes camelCase aliases too.
  const handle =
    <T>(handler: Handler<T>) =>
    async (args: unknown): Promise<void> => {
      setExitCode((await handler(args as T, io)) ?? 0);
    };

  const parser = yargs(argv)
    .scriptName('ota-tool')
    .usage('$0 <command> [options]\n\nPublish signed releases to ota-server and debug devices over CoAP.')
    // --version is the release version of publish, so yargs' own --version is off.
    .version(false)
    .options(pick({ json: 'json' }))
    .strict()
    .demandCommand(1, 'name a command, such as: ota-tool releases')
    .recommendCommands()
    .exitProcess(false)
    .wrap(Math.min(110, process.stdout.columns ?? 100))
    .check((args) => validateArgs(args as Parameters<typeof validateArgs>[0]))
    .fail((message, error) => {
      if (error) throw error;
      const command = commandName(argv.filter((word) => !word.startsWith('-')));
      throw new CliError(message, EXAMPLES[command] ?? 'ota-tool --help', 'USAGE');
    });

  parser.command(
    'keygen',
    'Create an Ed25519 key pair for signing releases',
    (y) => y.options(pick({ key: 'key', force: 'force' }, ['key'])).example(EXAMPLES.keygen ?? '', ''),
    handle<KeygenArgs>(keygen),
  );
  parser.command(
    'publish <files...>',
    'Pack, sign and upload a release (files as PATH or NAME=PATH)',
    (y) =>
      y
        .positional('files', { type: 'string', array: true, describe: 'Files for the device: PATH, or NAME=PATH when no file is named like the whole argument' })
        .options(
          pick(
            {
              version: 'version',
              channel: 'channel',
              notes: 'notes',
              key: 'key',
              rollout: 'rollout',
              encoding: 'encoding',
              'name-as': 'nameAs',
              'allow-empty': 'allowEmpty',
              'start-at': 'startAt',
              ...ADMIN_FLAGS,
            },
            ['version', 'key'],
          ),
        )
        .example(EXAMPLES.publish ?? '', ''),
    handle<PublishArgs>(publish),
  );
  parser.command('releases', 'List releases, highest version first', (y) => y.options(pick(ADMIN_FLAGS)), handle<CommonArgs & AdminArgs>(releases));
  parser.command('devices', 'List devices, the version they run and whether they are registered', (y) => y.options(pick(ADMIN_FLAGS)), handle<CommonArgs & AdminArgs>(devices));
  parser.command(
    'events',
    'List device events, newest first',
    (y) => y.options(pick({ device: 'device', limit: 'limit', ...ADMIN_FLAGS })).example(EXAMPLES.events ?? '', ''),
    handle<EventsArgs>(events),
  );
  parser.command(
    'revoke <version>',
    'Withdraw a release so no device is offered it',
    (y) => y.positional('version', { type: 'string', describe: 'Release version' }).options(pick(ADMIN_FLAGS)).example(EXAMPLES.revoke ?? '', ''),
    handle<RevokeArgs>(revoke),
  );
  parser.command(
    'rollout <version> <percent>',
    'Set the percentage of devices offered a release',
    (y) =>
      y
        .positional('version', { type: 'string', describe: 'Release version' })
        .positional('percent', { type: 'string', describe: 'Percentage of devices, 0..100' })
        .options(pick(ADMIN_FLAGS))
        .example(EXAMPLES.rollout ?? '', ''),
    handle<RolloutArgs>(rollout),
  );
  parser.command(
    'schedule <version>',
    'Set or clear the instant from which a release is offered',
    (y) =>
      y
        .positional('version', { type: 'string', describe: 'Release version' })
        .options(pick({ at: 'at', now: 'now', ...ADMIN_FLAGS }))
        .example(EXAMPLES.schedule ?? '', ''),
    handle<ScheduleArgs>(schedule),
  );
  parser.command(
    'check',
    "Send a device's update check over CoAP and print the response",
    (y) =>
      y
        .options(
          pick({ server: 'coapServer', device: 'device', current: 'current', channel: 'checkChannel', 'public-key': 'publicKey', timeout: 'timeout' }, ['server', 'device', 'current']),
        )
        .example(EXAMPLES.check ?? '', ''),
    handle<CheckArgs>(check),
  );
  parser.command(
    'download <uri>',
    'Download an image block by block (Block2) and verify it',
    (y) =>
      y
        .positional('uri', { type: 'string', describe: 'coap:// URI of the image' })
        .options(pick({ out: 'outFile', 'block-size': 'blockSize', sha256: 'sha256', size: 'size', timeout: 'timeout', restart: 'restart' }, ['out']))
        .example(EXAMPLES.download ?? '', ''),
    handle<DownloadArgs>(download),
  );
  parser.command('device', 'Create device configuration files and register devices', (y) =>
    y
      .command(
        'add <id>',
        'Write ota_config.json for one device and, with an admin token, register it',
        (z) =>
          z
            .positional('id', { type: 'string', describe: 'Device id, such as pico-001' })
            .options(
              pick(
                {
                  server: 'deviceServer',
                  apn: 'apn',
                  'public-key': 'publicKey',
                  channel: 'configChannel',
                  'check-interval': 'checkInterval',
                  out: 'outDir',
                  force: 'force',
                  'admin-server': 'registerServer',
                  token: 'token',
                  'token-file': 'tokenFile',
                  label: 'label',
                },
                ['server', 'apn', 'public-key'],
              ),
            )
            .default('out', '.')
            .example(EXAMPLES['device add'] ?? '', ''),
        handle<DeviceAddArgs>(deviceAdd),
      )
      .command(
        'remove <id>',
        "Remove a device's registration on the server; its history stays",
        (z) =>
          z
            .positional('id', { type: 'string', describe: 'Device id, such as pico-001' })
            .options(pick(ADMIN_FLAGS))
            .example(EXAMPLES['device remove'] ?? '', ''),
        handle<DeviceRemoveArgs>(deviceRemove),
      )
      .demandCommand(1, 'name a device subcommand, such as: ota-tool device add pico-001 ... or ota-tool device remove pico-001'),
  );
  parser.command(
    'unpack <bundle>',
    'Inflate and unpack a release payload into a folder',
    (y) => y.positional('bundle', { type: 'string', describe: 'Payload or bundle file' }).options(pick({ out: 'outDir' }, ['out'])).example(EXAMPLES.unpack ?? '', ''),
    handle<UnpackArgs>(unpack),
  );
  return parser;
}

/**
 * Runs ota-tool with the given arguments (without node and script) and resolves with
 * the exit code: 0 success, 1 failure, 2 usage error.
 */
export async function run(argv: string[], io: CliIo = processIo): Promise<number> {
  let exitCode = 0;
  const json = argv.includes('--json');
  const parser = buildParser(argv, io, (code) => {
    exitCode = code;
  });

  let helpOutput = '';
  try {
    await parser.parseAsync(argv, {}, (_error, _args, output) => {
      helpOutput = output;
    });
  } catch (error) {
    if (!(error instanceof CliError)) {
      io.stderr(`error: ${(error as Error).message}\n`);
      if (json) io.stdout(`${JSON.stringify({ error: { code: 'INTERNAL', message: (error as Error).message } })}\n`);
      return 1;
    }
    io.stderr(`error: ${error.message}\n`);
    if (error.example) io.stderr(`example: ${error.example}\n`);
    if (json) io.stdout(`${JSON.stringify({ error: { code: error.code, message: error.message, example: error.example } })}\n`);
    return error.code === 'USAGE' ? 2 : 1;
  }
  if (helpOutput) io.stdout(helpOutput.endsWith('\n') ? helpOutput : `${helpOutput}\n`);
  return exitCode;
}

/** True when this module is the program (through bin/ota-tool.js or run directly). */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  let resolved: string;
  try {
    resolved = realpathSync(script);
  } catch {
    return false;
  }
  return resolved === fileURLToPath(import.meta.url) || /[\\/]bin[\\/]ota-tool\.js$/.test(resolved);
}

if (isEntryPoint()) {
  process.exitCode = await run(process.argv.slice(2));
}
