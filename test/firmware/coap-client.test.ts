// firmware/coap_client.py on real MicroPython with a scripted in-Python transport and a
// simulated clock, so retransmission timing is exact and the tests take milliseconds.
import { beforeAll, describe, expect, test } from 'vitest';
import { startFirmware, type Interpreter } from './micropython.ts';

let mp: Interpreter;

// Transport whose replies come from a handler called on each send. receive() moves
// the clock to the next scripted reply, or on by the whole timeout when none is due.
const SCRIPT = `
import coap, coap_client, json

class Clock:
    def __init__(self):
        self.now = 0
    def ticks_ms(self):
        return self.now

class ScriptedTransport:
    def __init__(self, clock, handler):
        self.clock = clock
        self.handler = handler
        self.sent = []
        self.inbox = []
    def send(self, pdu):
        message = coap.decode(bytes(pdu))
        self.sent.append((self.clock.now, message))
        for delay_ms, reply in self.handler(message, len(self.sent)):
            self.inbox.append((self.clock.now + delay_ms, reply))
    def receive(self, timeout_ms):
        self.inbox.sort(key=lambda entry: entry[0])
        if self.inbox and self.inbox[0][0] <= self.clock.now + timeout_ms:
            at, data = self.inbox.pop(0)
            self.clock.now = max(self.clock.now, at)
            return data
        self.clock.now += timeout_ms
        return None

def make(handler, **options):
    clock = Clock()
    transport = ScriptedTransport(clock, handler)
    options.setdefault("ack_timeout_ms", 1000)
    client = coap_client.CoapClient(transport, seed=7, ticks_ms=clock.ticks_ms, **options)
    return client, transport, clock

def ack(request, payload=b"ok", code=coap.CONTENT, token=None, mid=None):
    return coap.encode(coap.TYPE_ACK, code, request.mid if mid is None else mid,
                       request.token if token is None else token, (), payload)

def get(client):
    return client.request(coap.GET, coap_client.path_options("d/abc"))

def outcome(call):
    try:
        return {"payload": bytes(call().payload).decode()}
    except coap_client.CoapError as err:
        return {"error": type(err).__name__, "message": str(err)}
`;

beforeAll(async () => {
  mp = await startFirmware();
  mp.run(SCRIPT);
});

interface Result {
  payload?: string;
  error?: string;
  message?: string;
  sends?: number[];
  types?: number[];
  mids?: number[];
}

function scenario(code: string): Result {
  return mp.json<Result>(`${code}
print(json.dumps(result))`);
}

describe('CoapClient.request', () => {
  test('piggybacked response', () => {
    const result = scenario(`
client, transport, clock = make(lambda request, n: [(300, ack(request))])
result = outcome(lambda: get(client))
result["sends"] = [at for at, _ in transport.sent]
`);
    expect(result.payload).toBe('ok');
    expect(result.sends).toEqual([0]);
  });

  test('lost requests retransmitted with backoff', () => {
    const result = scenario(`
client, transport, clock = make(lambda request, n: [] if n < 3 else [(200, ack(request))])
result = outcome(lambda: get(client))
result["sends"] = [at for at, _ in transport.sent]
result["mids"] = [m.mid for _, m in transport.sent]
`);
    expect(result.payload).toBe('ok');
    const [t0, t1, t2] = result.sends ?? [];
    expect(result.sends).toHaveLength(3);
    // RFC 7252 section 4.2: first timeout in [ACK_TIMEOUT, ACK_TIMEOUT * 1.5), then doubled.
    expect(t1! - t0!).toBeGreaterThanOrEqual(1000);
    expect(t1! - t0!).toBeLessThan(1500);
    expect(t2! - t1!).toBe(2 * (t1! - t0!));
    expect(new Set(result.mids).size).toBe(1);
  });

  test('gives up after max_retransmit', () => {
    const result = scenario(`
client, transport, clock = make(lambda request, n: [], max_retransmit=4)
result = outcome(lambda: get(client))
result["sends"] = [at for at, _ in transport.sent]
`);
    expect(result.error).toBe('CoapTimeout');
    expect(result.message).toContain('after 4 retransmissions');
    expect(result.sends).toHaveLength(5);
    const first = result.sends![1]! - result.sends![0]!;
    // Total wait is (1 + 2 + 4 + 8 + 16) initial timeouts: RFC 7252 MAX_TRANSMIT_SPAN plus the last wait.
    expect(result.sends![4]! + 16 * first).toBe(31 * first);
  });

  test('duplicate ACK ignored by next request', () => {
    const result = scenario(`
client, transport, clock = make(lambda request, n: [(100, ack(request, b"r%d" % n)), (150, ack(request, b"dup%d" % n))])
first = outcome(lambda: get(client))
result = outcome(lambda: get(client))
result["first"] = first["payload"]
`);
    expect(result).toMatchObject({ first: 'r1', payload: 'r2' });
  });

  test('stray replies ignored', () => {
    const result = scenario(`
def handler(request, n):
    return [
        (100, ack(request, b"wrong mid", mid=(request.mid + 9) & 0xFFFF)),
        (200, ack(request, b"wrong token", token=b"\\x00\\x00\\x00\\x00")),
        (250, b"\\x99garbage"),
        (300, coap.encode(coap.TYPE_NON, coap.CONTENT, 77, b"\\x01\\x01", (), b"stray NON")),
        (400, ack(request, b"right")),
    ]
client, transport, clock = make(handler)
result = outcome(lambda: get(client))
`);
    expect(result.payload).toBe('right');
  });

  test('empty ACK then separate response', () => {
    const result = scenario(`
def handler(request, n):
    if request.mtype != coap.TYPE_CON or request.code == coap.EMPTY:
        return []
    separate = coap.encode(coap.TYPE_CON, coap.CONTENT, 0x4000, request.token, (), b"late")
    return [(100, coap.encode(coap.TYPE_ACK, coap.EMPTY, request.mid)), (5000, separate)]
client, transport, clock = make(handler)
result = outcome(lambda: get(client))
result["types"] = [m.mtype for _, m in transport.sent]
result["mids"] = [m.mid for _, m in transport.sent]
`);
    expect(result.payload).toBe('late');
    // The request once (no retransmission after the empty ACK), then our ACK of the separate response.
    expect(result.types).toEqual([0, 2]);
    expect(result.mids![1]).toBe(0x4000);
  });

  test('separate response after lost empty ACK', () => {
    const result = scenario(`
client, transport, clock = make(lambda request, n: [] if request.code == coap.EMPTY else
    [(400, coap.encode(coap.TYPE_NON, coap.CONTENT, 0x5000, request.token, (), b"non"))])
result = outcome(lambda: get(client))
`);
    expect(result.payload).toBe('non');
  });

  test('RST raises CoapReset', () => {
    const result = scenario(`
client, transport, clock = make(lambda request, n: [(100, coap.encode(coap.TYPE_RST, coap.EMPTY, request.mid))])
result = outcome(lambda: get(client))
`);
    expect(result.error).toBe('CoapReset');
  });

  test('deadline bounds separate wait', () => {
    const result = scenario(`
client, transport, clock = make(lambda request, n: [(100, coap.encode(coap.TYPE_ACK, coap.EMPTY, request.mid))],
                                deadline_ms=20000)
result = outcome(lambda: get(client))
result["sends"] = [clock.now]
`);
    expect(result.error).toBe('CoapTimeout');
    expect(result.message).toContain('20000 ms deadline');
    expect(result.sends).toEqual([20000]);
  });

  test('transport fault becomes CoapError', () => {
    const result = scenario(`
client, transport, clock = make(lambda request, n: [])
def broken(pdu):
    raise OSError(5)
transport.send = broken
result = outcome(lambda: get(client))
`);
    expect(result.error).toBe('CoapError');
    expect(result.message).toContain('transport send failed');
  });

  test('default deadline is MAX_TRANSMIT_WAIT', () => {
    // RFC 7252 section 4.8.2: ACK_TIMEOUT * (2 ** (MAX_RETRANSMIT + 1) - 1) * ACK_RANDOM_FACTOR.
    const out = mp.run('print(coap_client.max_transmit_wait_ms(12000, 4), coap_client.CoapClient(None).deadline_ms)');
    expect(out.trim()).toBe(`${12000 * 31 * 1.5} ${12000 * 31 * 1.5}`);
  });

  test('tokens and mids differ per request', () => {
    const result = scenario(`
client, transport, clock = make(lambda request, n: [(10, ack(request))])
for _ in range(3):
    get(client)
result = {"mids": [m.mid for _, m in transport.sent], "types": [len(set(bytes(m.token) for _, m in transport.sent))]}
`);
    const mids = result.mids!;
    expect(new Set(mids).size).toBe(3);
    expect(mids[1]).toBe((mids[0]! + 1) & 0xffff);
    expect(result.types).toEqual([3]);
  });
});
