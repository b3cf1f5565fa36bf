// npm run demo: the whole update story on one machine with no hardware. A daemon on
// a temporary data folder, a new signing key, release 2.0.0 published, a simulated
// Pico on factory version 1.0.0 behind the SIM7020E simulator updates to 2.0.0 and
// confirms it, then release 3.0.0 is published and installed the same way.
// Exits 0 after the summary, 1 with the reason when a step fails or times out.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { startServer, type RunningServer } from '../../src/daemon/server.ts';
import type { DeviceRecord } from '../../src/storage/store.ts';
import { firmwareFiles, SimulatedPico } from '../harness/simulated-pico.ts';
import { run as runOtaTool } from '../ota-tool/main.ts';
import { Sim7020Simulator } from '../sim7020/index.ts';
import { CoapTap } from './coap-tap.ts';

const APPS_DIR = fileURLToPath(new URL('../../firmware/apps/', import.meta.url));
const DEVICE_ID = 'pico-demo';
const ADMIN_TOKEN = 'demo-admin-token';
/** Limit for one update, from publish to the server's "confirmed" record. */
const STEP_TIMEOUT_MS = 45_000;
/**
 * Heap budget for the run, in bytes. This MicroPython build collects no garbage while
 * Python runs, so the harness counts every byte allocated in a boot, compiler garbage
 * of the imports included; the figure says nothing about the Pico's 190 KiB.
 */
const HEAP_BUDGET_BYTES = 8 * 1024 * 1024;

/**
 * Device settings for a loopback run: check every 3 s instead of hourly, and a 2 s
 * ACK timeout instead of the NB-IoT 12 s. The PWRKEY pulse matches the simulator's
 * pwrkeyMinMs below; a real SIM7020E needs about 1 s.
 */
const DEMO_CONFIG = { check_interval_s: 3, ack_timeout_ms: 2000, modem_pwrkey_ms: 100 };

class DemoError extends Error {}

function say(text: string): void {
  process.stdout.write(`demo | ${text}\n`);
}

/** Runs ota-tool in-process; returns its output, or throws with its error output. */
async function otaTool(args: string[]): Promise<string> {
  let stdout = '';
  let stderr = '';
  const code = await runOtaTool(args, { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text), env: {} });
  if (code !== 0) throw new DemoError(`ota-tool ${args[0]} exited with ${code}: ${stderr.trim()}`);
  return stdout;
}

async function waitForConfirmed(server: RunningServer, version: string, pico: SimulatedPico): Promise<DeviceRecord> {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  let record: DeviceRecord | undefined;
  while (Date.now() < deadline) {
    if (pico.state === 'repl' || pico.state === 'failed') throw new DemoError(`the Pico stopped (state ${pico.state}); see its serial output above`);
    record = await server.store.getDevice(DEVICE_ID);
    if (record?.version === version && record.lastReport?.outcome === 'confirmed' && record.lastReport.target === version) return record;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new DemoError(
    `${DEVICE_ID} did not confirm ${version} within ${STEP_TIMEOUT_MS / 1000} s; the server's record is ${JSON.stringify(record ?? null)}`,
  );
}

interface UpdateFigures {
  version: string;
  size: number;
  encoding: string;
  blocks: number;
  seconds: number;
}

async function main(): Promise<void> {
  const started = Date.now();
  const workDir = mkdtempSync(join(tmpdir(), 'ota-demo-'));
  const cleanups: Array<() => Promise<void> | void> = [() => rmSync(workDir, { recursive: true, force: true })];
  try {
    const keyFile = join(workDir, 'release.key');
    await otaTool(['keygen', '--key', keyFile]);
    say(`signing key created: ${keyFile} (the server gets only ${keyFile}.pub)`);

    const server = await startServer({
      dataDir: join(workDir, 'data'),
      logger: pino({ level: 'warn' }),
      coapPort: 0,
      adminPort: 0,
      bind: '127.0.0.1',
      adminToken: ADMIN_TOKEN,
      publicKeyPem: readFileSync(`${keyFile}.pub`, 'utf8'),
    });
    cleanups.push(() => server.close());
    const admin = ['--server', `http://127.0.0.1:${server.adminPort}`, '--token', ADMIN_TOKEN];
    say(`ota-server listening: CoAP udp://127.0.0.1:${server.coapPort}, admin http://127.0.0.1:${server.adminPort}`);

    const publish = async (version: string, notes: string) => {
      const output = await otaTool(['publish', `app.py=${join(APPS_DIR, version, 'app.py')}`, '--version', version, '--notes', notes, '--key', keyFile, ...admin]);
      say(output.split('\n')[0] ?? `published ${version}`);
    };
    await publish('2.0.0', 'fast blink');

    const deviceDir = join(workDir, 'device');
    await otaTool(['device', 'add', DEVICE_ID, '--server', `127.0.0.1:${server.coapPort}`, '--apn', 'iot.demo', '--public-key', `${keyFile}.pub`, '--out', deviceDir]);
    const configFile = join(deviceDir, 'ota_config.json');
    const config = { ...JSON.parse(readFileSync(configFile, 'utf8')), ...DEMO_CONFIG };
    writeFileSync(configFile, JSON.stringify(config));
    say(`device ${DEVICE_ID} configured by ota-tool device add, checking every ${DEMO_CONFIG.check_interval_s} s for the demo`);

    // Simulator timings for a demo: a real modem takes seconds to boot and attach.
    const modem = new Sim7020Simulator({ pwrkeyMinMs: 50, bootDelayMs: 200, networkAttachDelayMs: 300 });
    cleanups.push(() => modem.close());
    const tap = new CoapTap(modem);
    const pico = new SimulatedPico({
      files: {
        ...firmwareFiles(),
        'app_slots/a/app.py': readFileSync(join(APPS_DIR, '1.0.0', 'app.py')),
        'ota_config.json': readFileSync(configFile),
      },
      uart: tap,
      heapBudgetBytes: HEAP_BUDGET_BYTES,
      onSerial: (line, boot) => process.stdout.write(`pico | boot ${boot} | ${line}\n`),
    });
    tap.bootOf = () => pico.currentBoot;
    cleanups.push(() => pico.stop());

    say('powering on the Pico with factory version 1.0.0 in slot a');
    await pico.boot();

    const updates: UpdateFigures[] = [];
    const runUpdate = async (version: string, since: number) => {
      const blocksBefore = tap.sent.filter((request) => request.block !== undefined).length;
      const record = await waitForConfirmed(server, version, pico);
      const release = await server.store.getRelease(version);
      const blocks = tap.sent.filter((request) => request.block !== undefined).length - blocksBefore;
      updates.push({ version, size: release?.size ?? 0, encoding: release?.encoding ?? '?', blocks, seconds: (Date.now() - since) / 1000 });
      say(`server: ${record.id} runs ${record.version}, last report "${record.lastReport?.outcome}"`);
    };

    await runUpdate('2.0.0', Date.now());
    const publishedAt = Date.now();
    await publish('3.0.0', 'slow pulse');
    await runUpdate('3.0.0', publishedAt);

    const stats = modem.stats();
    say('summary');
    say(`  versions     1.0.0 -> ${updates.map((update) => update.version).join(' -> ')}`);
    for (const update of updates) {
      const transfer = update.blocks === 0 ? 'inline in the check answer' : `in ${update.blocks} Block2 requests`;
      say(`  ${update.version.padEnd(12)} ${update.size} bytes (${update.encoding}) ${transfer}, confirmed after ${update.seconds.toFixed(1)} s`);
    }
    say(`  on air       ${stats.uplink.datagrams} datagrams up (${stats.uplink.ipBytes} bytes), ${stats.downlink.datagrams} down (${stats.downlink.ipBytes} bytes), IPv4 + UDP + CoAP`);
    say(`  modem        ${stats.atCommands} AT commands, ${stats.powerOns} power-on`);
    // This build never collects garbage while Python runs, so its high-water counts every
    // byte ever allocated; the Pico-sized figures come from step mode.
    say(`  Pico         ${pico.resets} resets; heap allocated in total ${Math.round(pico.heapHighWater / 1024)} KiB by this WebAssembly build, which cannot collect garbage while Python runs (step-mode runs of the same firmware peak near 100 KB, docs/benchmarks.md)`);
    say(`  time         ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (err) {
        process.stderr.write(`demo: cleanup failed: ${(err as Error).message}\n`);
      }
    }
  }
}

try {
  await main();
  say('done');
} catch (err) {
  process.stderr.write(`demo failed: ${err instanceof DemoError ? err.message : (err as Error).stack}\n`);
  process.exitCode = 1;
}
