// firmware/ota.py on real MicroPython against a transport that responds 5.03: a busy
// check ends the check-in without counting a failure and sets retry_after_s from
// Max-Age, and a busy report stays in the outbox.
import { beforeEach, describe, expect, test } from 'vitest';
import { FAKE_MACHINE } from './fakes.ts';
import { startFirmware, type Interpreter } from './micropython.ts';

// Responds to /c with the scripted check response and to /r with 5.03 and Max-Age 42.
const BUSY_SERVER = `
import cbor, coap, time

class BusyServer:
    def __init__(self):
        self.inbox = []
        self.check_answer = (coap.SERVICE_UNAVAILABLE, [(coap.OPT_MAX_AGE, coap.encode_uint(300))])
        self.reports = 0

    def send(self, pdu):
        request = coap.decode(bytes(pdu))
        path = "/".join(bytes(v).decode() for n, v in request.options if n == coap.OPT_URI_PATH)
        if path == "c":
            code, options = self.check_answer
            payload = cbor.encode({}) if code == coap.CONTENT else b"busy"
        else:
            self.reports += 1
            code, options, payload = coap.SERVICE_UNAVAILABLE, [(coap.OPT_MAX_AGE, coap.encode_uint(42))], b"busy"
        self.inbox.append(coap.encode(coap.TYPE_ACK, code, request.mid, request.token, options, payload))

    def receive(self, timeout_ms):
        if self.inbox:
            return self.inbox.pop(0)
        time.sleep_ms(min(timeout_ms, 5))
        return None
`;

let mp: Interpreter;

beforeEach(async () => {
  mp = await startFirmware({ '/machine.py': FAKE_MACHINE, '/busy_server.py': BUSY_SERVER });
  mp.fs.writeFile('/ota_config.json', JSON.stringify({ device_id: 'pico-busy', public_key: '4b'.repeat(32), ack_timeout_ms: 20, max_retransmit: 1 }));
  mp.run(`
import json, coap, config, ota, reports, slots, ota_proto
from busy_server import BusyServer
slots.clear("a")
server = BusyServer()
updater = ota.Updater(config.load(), transport_factory=lambda: server)
`);
});

describe('Updater on 5.03', () => {
  test('busy check sets retry_after_s', () => {
    mp.run('updater._failures = 1\nupdater.check_in(slots.load())');
    expect(mp.json('print(json.dumps([updater.retry_after_s, updater._failures]))')).toEqual([300, 0]);
  });

  test('missing Max-Age means 60 s', () => {
    mp.run('server.check_answer = (coap.SERVICE_UNAVAILABLE, [])\nupdater.check_in(slots.load())');
    expect(mp.json('print(json.dumps(updater.retry_after_s))')).toBe(60);
  });

  test('huge Max-Age capped at a day', () => {
    mp.run('server.check_answer = (coap.SERVICE_UNAVAILABLE, [(coap.OPT_MAX_AGE, coap.encode_uint(0xFFFFFFFF))])\nupdater.check_in(slots.load())');
    expect(mp.json('print(json.dumps(updater.retry_after_s))')).toBe(86400);
  });

  test('rejected check is no link failure', () => {
    // 131 is 4.03, as for a device the server does not know: the modem is fine, so no restart is counted.
    mp.run('server.check_answer = (131, [])\nupdater._failures = 1\nupdater.check_in(slots.load())');
    expect(mp.json('print(json.dumps([updater._failures, updater.retry_after_s]))')).toEqual([0, 0]);
  });

  test('busy report kept in outbox', () => {
    mp.run(`
reports.add(ota_proto.OUTCOME_CONFIRMED, "1.0.0")
server.check_answer = (coap.CONTENT, [])
updater.check_in(slots.load())
`);
    expect(mp.json('print(json.dumps([server.reports, len(reports.pending()), updater.retry_after_s]))')).toEqual([1, 1, 0]);
  });
});
