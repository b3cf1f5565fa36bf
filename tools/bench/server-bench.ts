// Server-side figures: blocks and checks per second with many concurrent simulated
// devices, for the daemon, libcoap's coap-server and a bare node-coap server. The same
// C load generator drives all of them in the same run. Also the daemon's memory per
// in-flight download for a small and a large image.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { LIBCOAP_RESOURCE, startLibcoapServer } from './libcoap.ts';
import { requestsPerSecond, runLoad, startReflector, type LoadResult, type LoadSpec } from './loadgen.ts';
import { benchPayload, type ChildMessage, type ParentMessage } from './server-process.ts';
import type { Figure } from './report.ts';

const SERVER_PROCESS = fileURLToPath(new URL('./server-process.ts', import.meta.url));
const SMALL_IMAGE_BYTES = 10 * 1024;
const LARGE_IMAGE_BYTES = 1024 * 1024;
const BLOCK_BYTES = 1024;
const SZX_1024 = 6;
/** CBOR {0: "bench-0000", 1: "9.0.0"}: a check from a device newer than every release, so no offer. */
const CHECK_PAYLOAD = Buffer.from('a2006a62656e63682d303030300165392e302e30', 'hex');
/** Offset of "0000" in CHECK_PAYLOAD, where the load generator writes each device's index. */
const CHECK_ID_OFFSET = 9;

export interface ServerBenchOptions {
  loadgen: string;
  /** Devices with one request in flight each, for the throughput runs. */
  devices: number;
  /** Devices for the memory runs. */
  memoryDevices: number;
  runMs: number;
  warmupMs: number;
  /** Measured runs per figure; the run with the median rate is reported. */
  repeats: number;
  /** Folder for a V8 CPU profile of the daemon, or undefined for none. */
  profileDir: string | undefined;
}

/** The benchmark's handle on a server-process.ts child. */
class ServerProcess {
  private readonly child: ChildProcess;
  readonly port: number;

  private constructor(child: ChildProcess, port: number) {
    this.child = child;
    this.port = port;
  }

  static async start(kind: 'daemon' | 'bare' | 'echo', profileDir?: string): Promise<ServerProcess> {
    const execArgv = ['--import', 'tsx', '--expose-gc'];
    if (profileDir) execArgv.push('--cpu-prof', '--cpu-prof-dir', profileDir);
    const child = fork(SERVER_PROCESS, [kind], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const ready = await nextMessage(child);
    if (ready.type !== 'ready') throw new Error(`server process (${kind}) did not start: ${JSON.stringify(ready)}`);
    return new ServerProcess(child, ready.port);
  }

  async request<T extends ChildMessage['type']>(message: ParentMessage, expected: T): Promise<Extract<ChildMessage, { type: T }>> {
    const answer = nextMessage(this.child);
    this.child.send(message);
    const reply = await answer;
    if (reply.type !== expected) throw new Error(`server process sent ${JSON.stringify(reply)} in response to ${message.type}, expected ${expected}`);
    return reply as Extract<ChildMessage, { type: T }>;
  }

  send(message: ParentMessage): void {
    this.child.send(message);
  }

  async close(): Promise<void> {
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.send({ type: 'close' });
    await exited;
  }
}

function nextMessage(child: ChildProcess): Promise<ChildMessage> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`server process exited with status ${code} before it responded`));
    child.once('exit', onExit);
    child.once('message', (message: ChildMessage) => {
      child.off('exit', onExit);
      resolve(message);
    });
  });
}

type MeasureSpec = Omit<LoadSpec, 'timeLimitMs' | 'maxRequests' | 'devices'>;

/**
 * Warms each spec up, then runs `repeats` rounds in which every spec gets one measured
 * run, and returns each spec's run with the median rate. Interleaving spreads each
 * figure's runs over the whole measurement, so a slow minute of this shared machine
 * moves every figure alike instead of skewing the ratios between them.
 */
async function measureInterleaved<K extends string>(options: ServerBenchOptions, specs: Record<K, MeasureSpec>): Promise<Record<K, LoadResult>> {
  const names = Object.keys(specs) as K[];
  const base = (name: K) => ({ ...specs[name], devices: options.devices, maxRequests: 10_000_000 });
  for (const name of names) await runLoad(options.loadgen, { ...base(name), timeLimitMs: options.warmupMs });
  const runs = new Map<K, LoadResult[]>(names.map((name) => [name, []]));
  for (let i = 0; i < options.repeats; i++) {
    for (const name of names) runs.get(name)!.push(await runLoad(options.loadgen, { ...base(name), timeLimitMs: options.runMs }));
  }
  const medians = {} as Record<K, LoadResult>;
  for (const name of names) {
    const sorted = runs.get(name)!.sort((a, b) => requestsPerSecond(a) - requestsPerSecond(b));
    const median = sorted[Math.floor(sorted.length / 2)]!;
    const spec = specs[name];
    if (median.errors > 0 || median.shortPayloads > 0) {
      throw new Error(`load run on port ${spec.port} (${spec.mode} ${spec.path}) got ${median.errors} error responses and ${median.shortPayloads} short blocks`);
    }
    medians[name] = median;
  }
  return medians;
}

function rateFigures(name: string, unit: string, ours: LoadResult, peer?: { name: string; result: LoadResult }): Figure[] {
  const figures: Figure[] = [];
  const rate = requestsPerSecond(ours);
  const peerRate = peer && requestsPerSecond(peer.result);
  figures.push(peer ? { name, value: rate, unit, peer: peer.name, peerValue: peerRate!, ratio: rate / peerRate! } : { name, value: rate, unit });
  for (const [suffix, key] of [['p50_us', 'p50Us'], ['p99_us', 'p99Us']] as const) {
    const figure: Figure = { name: `${name}.${suffix}`, value: ours[key], unit: 'us' };
    if (peer) Object.assign(figure, { peer: peer.name, peerValue: peer.result[key], ratio: ours[key] / peer.result[key] });
    figures.push(figure);
  }
  figures.push({ name: `${name}.retransmissions`, value: ours.retransmissions, unit: 'count' });
  return figures;
}

export async function serverFigures(options: ServerBenchOptions, emit: (figure: Figure) => void): Promise<void> {
  const block = (port: number, path: string, blocks: number) => ({ port, mode: 'block' as const, path, blocks, szx: SZX_1024 });
  const smallBlocks = SMALL_IMAGE_BYTES / BLOCK_BYTES;
  const largeBlocks = LARGE_IMAGE_BYTES / BLOCK_BYTES;

  // Every server runs at once, idle except while the generator drives it, so the runs
  // of all figures can be interleaved. The reflector is the generator's ceiling: a C
  // responder that does nothing but respond.
  const reflector = await startReflector(options.loadgen, BLOCK_BYTES);
  const libcoapSmall = await startLibcoapServer(benchPayload(SMALL_IMAGE_BYTES, 1));
  const libcoapLarge = await startLibcoapServer(benchPayload(LARGE_IMAGE_BYTES, 2));
  const bare = await ServerProcess.start('bare');
  const echo = await ServerProcess.start('echo');
  const daemon = await ServerProcess.start('daemon', options.profileDir);
  const small = (await daemon.request({ type: 'publish', version: '1.0.0', size: SMALL_IMAGE_BYTES, seed: 1 }, 'published')).downloadId;
  const large = (await daemon.request({ type: 'publish', version: '1.1.0', size: LARGE_IMAGE_BYTES, seed: 2 }, 'published')).downloadId;

  const results = await measureInterleaved(options, {
    ceiling: block(reflector.port, 'd/x', smallBlocks),
    peerSmall: block(libcoapSmall.port, LIBCOAP_RESOURCE, smallBlocks),
    peerLarge: block(libcoapLarge.port, LIBCOAP_RESOURCE, largeBlocks),
    bareGets: { port: bare.port, mode: 'get', path: 'x' },
    echoBlocks: block(echo.port, 'd/x', smallBlocks),
    oursSmall: block(daemon.port, `d/${small}`, smallBlocks),
    oursLarge: block(daemon.port, `d/${large}`, largeBlocks),
  });
  const { ceiling, peerSmall, peerLarge, bareGets, echoBlocks, oursSmall, oursLarge } = results;
  // Checks write a device record and an event each, so they run after the block
  // figures: LevelDB compactions they start would otherwise slow later block runs.
  const { checks } = await measureInterleaved(options, {
    checks: { port: daemon.port, mode: 'post', path: 'c', payload: CHECK_PAYLOAD, idOffset: CHECK_ID_OFFSET },
  });
  reflector.close();
  await Promise.all([libcoapSmall.close(), libcoapLarge.close(), bare.close(), echo.close()]);
  emit({ name: 'loadgen.ceiling.blocks_per_s', value: requestsPerSecond(ceiling), unit: 'blocks/s' });

  for (const figure of rateFigures('server.blocks_per_s', 'blocks/s', oursSmall, { name: 'libcoap', result: peerSmall })) emit(figure);
  for (const figure of rateFigures('server.blocks_per_s.1MiB', 'blocks/s', oursLarge, { name: 'libcoap', result: peerLarge })) emit(figure);
  emit({
    name: 'server.blocks_per_s.1MiB_vs_10KiB',
    value: requestsPerSecond(oursLarge) / requestsPerSecond(oursSmall),
    unit: 'ratio',
    peer: '10KiB',
    ratio: requestsPerSecond(oursLarge) / requestsPerSecond(oursSmall),
  });
  emit({ name: 'server.bare_node_coap.gets_per_s', value: requestsPerSecond(bareGets), unit: 'requests/s' });
  emit({ name: 'server.node_dgram_echo.blocks_per_s', value: requestsPerSecond(echoBlocks), unit: 'blocks/s' });
  emit({
    name: 'server.blocks_per_s.vs_bare_node_coap',
    value: requestsPerSecond(oursSmall) / requestsPerSecond(bareGets),
    unit: 'ratio',
    peer: 'node-coap-bare',
    ratio: requestsPerSecond(oursSmall) / requestsPerSecond(bareGets),
  });
  for (const figure of rateFigures('server.checks_per_s', 'checks/s', checks, { name: 'node-coap-bare', result: bareGets })) emit(figure);

  await daemon.close();

  // Memory: live heap (after a full GC) and peak RSS growth while many devices
  // download at once, each size in a fresh daemon so that the peak RSS is its own.
  for (const [label, size, blocks] of [['10KiB', SMALL_IMAGE_BYTES, smallBlocks], ['1MiB', LARGE_IMAGE_BYTES, largeBlocks]] as const) {
    const fresh = await ServerProcess.start('daemon');
    const id = (await fresh.request({ type: 'publish', version: '1.0.0', size, seed: 3 }, 'published')).downloadId;
    const spec = { ...block(fresh.port, `d/${id}`, blocks), maxRequests: 10_000_000 };
    // One short run first, so compiled code and first-use caches are in the baseline.
    await runLoad(options.loadgen, { ...spec, devices: 1, timeLimitMs: options.warmupMs });
    const before = await fresh.request({ type: 'memory' }, 'memory');
    fresh.send({ type: 'sample', intervalMs: 250 });
    const run = await runLoad(options.loadgen, { ...spec, devices: options.memoryDevices, timeLimitMs: options.runMs });
    const sampled = await fresh.request({ type: 'sampled' }, 'sampled');
    const after = await fresh.request({ type: 'memory' }, 'memory');
    await fresh.close();
    if (run.errors > 0) throw new Error(`memory run for the ${label} image got ${run.errors} error responses`);
    emit({ name: `server.memory.heap_per_download.${label}`, value: Math.max(0, sampled.maxHeapUsed - before.heapUsed) / options.memoryDevices, unit: 'bytes' });
    emit({ name: `server.memory.peak_rss_per_download.${label}`, value: Math.max(0, after.peakRss - before.rss) / options.memoryDevices, unit: 'bytes' });
  }
}
