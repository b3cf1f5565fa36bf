// `npm run bench`: the benchmark suite. Prints one JSON line per figure and rewrites
// docs/benchmarks.md with the table, the command, the machine and what the figures mean.
//
//   npm run bench                  full run, about 5 minutes on 2 cores
//   npm run bench -- --quick       shorter runs, under a minute
//   npm run bench -- --profile DIR also writes a V8 CPU profile of the daemon to DIR
//   npm run bench -- --no-doc      prints the figures without rewriting the doc
import { buildLoadGenerator } from './loadgen.ts';
import { libcoapVersion } from './libcoap.ts';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describeMachine, figureLine, renderBenchmarksDoc, type Figure } from './report.ts';
import { deviceFigures } from './device-bench.ts';
import { deviceHeapFigures } from './device-heap.ts';
import { serverFigures } from './server-bench.ts';

interface Options {
  quick: boolean;
  profileDir: string | undefined;
  writeDoc: boolean;
  only: 'server' | 'device' | undefined;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { quick: false, profileDir: undefined, writeDoc: true, only: undefined };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') options.quick = true;
    else if (arg === '--no-doc') options.writeDoc = false;
    else if (arg === '--profile') {
      options.profileDir = argv[++i];
      if (!options.profileDir) throw new Error('--profile needs a folder for the CPU profile: try --profile /tmp/prof');
    } else if (arg === '--only') {
      const part = argv[++i];
      if (part !== 'server' && part !== 'device') throw new Error(`--only must be server or device, got ${part}: try --only server`);
      options.only = part;
    } else throw new Error(`unknown option ${arg}: the options are --quick, --no-doc, --profile DIR and --only server|device`);
  }
  return options;
}

const options = parseArgs(process.argv.slice(2));
const figures: Figure[] = [];
const emit = (figure: Figure) => {
  figures.push(figure);
  process.stdout.write(`${figureLine(figure)}\n`);
};
const machine = describeMachine(await libcoapVersion());
const loadgen = await buildLoadGenerator();

if (options.only !== 'device') {
  await serverFigures(
    {
      loadgen,
      devices: 64,
      memoryDevices: 256,
      runMs: options.quick ? 1500 : 5000,
      warmupMs: options.quick ? 500 : 1500,
      repeats: options.quick ? 1 : 3,
      profileDir: options.profileDir,
    },
    emit,
  );
}
if (options.only !== 'server') {
  await deviceFigures(emit);
  // The heap run takes about 40 s of MicroPython, so the quick mode leaves it out.
  if (!options.quick) await deviceHeapFigures(emit);
}

if (options.writeDoc) {
  const notes = readFileSync(fileURLToPath(new URL('./notes.md', import.meta.url)), 'utf8');
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  const doc = fileURLToPath(new URL('../../docs/benchmarks.md', import.meta.url));
  writeFileSync(doc, renderBenchmarksDoc(figures, machine, command, notes));
  process.stderr.write(`wrote ${doc}\n`);
}
