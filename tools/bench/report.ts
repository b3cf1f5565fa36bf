// Benchmark figures: one JSON line each on stdout, and the table in docs/benchmarks.md.
import os from 'node:os';

export interface Figure {
  name: string;
  value: number;
  unit: string;
  /** Name of the system the figure is compared with, such as "libcoap" or "original". */
  peer?: string;
  /** The peer's value in the same unit, where it has one. */
  peerValue?: number;
  /** value / peerValue, or the ratio the figure's name describes. */
  ratio?: number;
}

/** Rounds to 3 significant digits for print, which keeps the precision of ratios and small values. */
export function round(value: number): number {
  if (!Number.isFinite(value) || value === 0) return value;
  const digits = Math.max(0, 2 - Math.floor(Math.log10(Math.abs(value))));
  return Number(value.toFixed(Math.min(digits, 6)));
}

export function figureLine(figure: Figure): string {
  const line: Record<string, string | number> = { name: figure.name, value: round(figure.value), unit: figure.unit };
  if (figure.peer !== undefined) line.peer = figure.peer;
  if (figure.peerValue !== undefined) line.peerValue = round(figure.peerValue);
  if (figure.ratio !== undefined) line.ratio = round(figure.ratio);
  return JSON.stringify(line);
}

export interface Machine {
  cores: number;
  cpu: string;
  node: string;
  libcoap: string;
  os: string;
}

export function describeMachine(libcoap: string): Machine {
  return {
    cores: os.cpus().length,
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    node: process.version,
    libcoap,
    os: `${os.type()} ${os.release()}`,
  };
}

/** Meaning of each figure by name prefix. The first matching prefix wins. */
const MEANINGS: Array<[string, string]> = [
  ['loadgen.ceiling', 'the C load generator against a C responder that only answers: the most this generator can drive on this machine'],
  ['server.blocks_per_s.1MiB_vs_10KiB', 'daemon blocks/s for the 1 MiB image over blocks/s for the 10 KiB image; at least 1 means throughput does not fall as images grow'],
  ['server.blocks_per_s.vs_bare_node_coap', 'daemon blocks/s over the bare node-coap GETs/s; the target is at least 0.8'],
  ['server.blocks_per_s.1MiB', '1024-byte blocks of a 1 MiB image, devices spread over all 1024 blocks'],
  ['server.blocks_per_s', '1024-byte blocks of a 10 KiB image (events written at the first and last block); peer: libcoap coap-server-notls serving the same bytes at /example_data'],
  ['server.bare_node_coap', 'node-coap 1.5.0 createServer answering each GET with 2 bytes, no storage'],
  ['server.node_dgram_echo', 'a Node dgram socket answering each request with a fixed 1024-byte ACK: the cost of Node UDP I/O alone'],
  ['server.checks_per_s', 'POST /c with no update (device record and event written to LevelDB each time)'],
  ['server.memory.heap_per_download', 'growth of the live heap (sampled after full GCs) during the run, divided by the concurrent downloads'],
  ['server.memory.peak_rss_per_download', 'growth of peak RSS (VmHWM) during the run, divided by the concurrent downloads; includes garbage between collections and socket buffers'],
  ['check.no_update.bytes', 'CoAP bytes, both directions, of one check with no update; peer: HTTP bytes (headers and body) of the original check'],
  ['check.no_update.ip_bytes', 'the same check with UDP and IPv4 headers; peer: IPv4 packets of the original check on its own TCP connection'],
  ['check.no_update.round_trips', 'round trips of the check; the original needs a TCP handshake and close'],
  ['update.', 'update from 1.0.0: the check with the offer (carrying the payload when it fits one block) plus every block request, in IPv4 bytes for `.bytes` and CoAP bytes for `.coap_bytes`. `.bytes_with_reports` adds the installed and confirmed reports. `.radio_s` is round trips times the round-trip time, without the inactivity timer that both designs pay'],
];

export function meaningOf(name: string): string {
  return MEANINGS.find(([prefix]) => name.startsWith(prefix))?.[1] ?? '';
}

function cell(value: number | undefined): string {
  return value === undefined ? '' : String(round(value));
}

export function renderBenchmarksDoc(figures: Figure[], machine: Machine, command: string, notes: string): string {
  const rows = figures.map(
    (f) => `| \`${f.name}\` | ${cell(f.value)} | ${f.unit} | ${f.peer ?? ''} | ${cell(f.peerValue)} | ${cell(f.ratio)} |`,
  );
  const meanings = [...new Set(figures.map((f) => meaningOf(f.name)).filter((m) => m !== ''))];
  return [
    '# Benchmarks',
    '',
    'This page is rewritten by every run of `npm run bench` (`tools/bench/main.ts`).',
    'Edit the text in `tools/bench/report.ts` and `tools/bench/notes.md`, not here.',
    '',
    `Command: \`${command}\``,
    '',
    `Machine: ${machine.cores} cores, ${machine.cpu}, Node ${machine.node}, libcoap ${machine.libcoap}, ${machine.os}.`,
    '',
    '## Figures',
    '',
    '| name | value | unit | peer | peer value | ratio |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
    '## What the figures mean',
    '',
    ...meanings.map((m) => `- ${m}.`),
    '',
    notes,
  ].join('\n');
}
