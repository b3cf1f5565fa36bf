// Worker side of the channel test: two calls over the harness channel. A gate holds
// the worker before its first wait, so the test can publish the first reply before
// the worker starts to wait, as happens when the worker thread is descheduled.
import { parentPort, workerData } from 'node:worker_threads';
import { awaitReply, callViews, readReply } from '../../tools/harness/channel.ts';

const calls = callViews(workerData.calls as SharedArrayBuffer);
const gate = new Int32Array(workerData.gate as SharedArrayBuffer);

parentPort!.postMessage({ type: 'call', seq: 1 });
// The test opens the gate after it has published reply 1 without a notify.
while (Atomics.load(gate, 0) === 0) Atomics.wait(gate, 0, 0);
awaitReply(calls, 1);
parentPort!.postMessage({ type: 'result', seq: 1, value: readReply(calls) });

parentPort!.postMessage({ type: 'call', seq: 2 });
awaitReply(calls, 2);
parentPort!.postMessage({ type: 'result', seq: 2, value: readReply(calls) });
