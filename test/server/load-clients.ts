// Load driver for load.test.ts, run as its own process so that the test process
// runs the daemon alone and its memory figures are the daemon's. Usage:
//   node --import tsx test/server/load-clients.ts <port> <download id> <devices> <time limit ms>
// Prints one JSON line: { digests: string[], retransmissions: number, elapsedMs: number }.
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import { decodeUint, parseDatagram, type Datagram } from '../../src/coap/datagram.ts';
import { Code, block2, encodeRequest, optionOf, path_ } from './helpers.ts';

const SZX = 6;
const RETRANSMIT_MS = 1000;
const MAX_ATTEMPTS = 5;

/** Downloads the image block by block, one request outstanding (NSTART = 1, RFC 7252 section 4.7), hashing as it goes. */
async function download(port: number, id: string, deadline: number, counters: { retransmissions: number }): Promise<string> {
  const socket = dgram.createSocket('udp4');
  const hash = createHash('sha256');
  let mid = Math.floor(Math.random() * 0xffff);
  try {
    for (let num = 0; ; num++) {
      mid = (mid + 1) & 0xffff;
      const token = Buffer.from([num & 0xff, num >> 8]);
      const request = encodeRequest({ code: Code.GET, options: [...path_('d', id), block2(num, SZX)], mid, token });
      const reply = await exchange(socket, port, request, mid, counters);
      if (reply.code !== '2.05') throw new Error(`block ${num} answered ${reply.code}`);
      hash.update(reply.payload);
      if ((decodeUint(optionOf(reply, 23)!) & 8) === 0) break;
      if (Date.now() > deadline) throw new Error(`time limit passed at block ${num}`);
    }
    return hash.digest('hex');
  } finally {
    socket.close();
  }
}

function exchange(socket: dgram.Socket, port: number, request: Buffer, mid: number, counters: { retransmissions: number }): Promise<Datagram> {
  return new Promise((resolve, reject) => {
    let attempts = 0;
    let timer: NodeJS.Timeout;
    const onMessage = (msg: Buffer) => {
      const parsed = parseDatagram(msg);
      if (!parsed.ok || parsed.datagram.mid !== mid) return;
      clearTimeout(timer);
      socket.off('message', onMessage);
      resolve(parsed.datagram);
    };
    const send = () => {
      if (attempts++ >= MAX_ATTEMPTS) {
        socket.off('message', onMessage);
        reject(new Error(`no answer to mid ${mid} after ${MAX_ATTEMPTS} attempts`));
        return;
      }
      if (attempts > 1) counters.retransmissions++;
      socket.send(request, port, '127.0.0.1');
      timer = setTimeout(send, RETRANSMIT_MS);
    };
    socket.on('message', onMessage);
    send();
  });
}

const [port, id, devices, limitMs] = process.argv.slice(2);
const started = Date.now();
const counters = { retransmissions: 0 };
const digests = await Promise.all(
  Array.from({ length: Number(devices) }, () => download(Number(port), id!, started + Number(limitMs), counters)),
);
process.stdout.write(`${JSON.stringify({ digests, retransmissions: counters.retransmissions, elapsedMs: Date.now() - started })}\n`);
