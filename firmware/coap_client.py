"""CoAP client exchanges: CON requests with retransmission, matching and deadlines.

Sits on a transport with send(buf) and receive(timeout_ms) -> bytes or None
(sim7020.CoapTransport on the device, a scripted fake in tests). Implements the
client side of RFC 7252 sections 4 and 5.3.2: message ids, tokens, exponential
back-off, empty ACK followed by a separate response, RST, duplicates.
"""
from micropython import const
import os
import time
import coap
import log

_log = log.Logger("coap")

# RFC 7252 section 4.8 defaults ACK_TIMEOUT to 2 s. On NB-IoT one round trip takes
# about 1 s and, with paging and coverage-enhancement repetitions, often several
# seconds, so 2 s would retransmit requests still in flight and pay for each
# retransmission in battery. Zephyr 2.7 sets its initial ACK timeout to 20 s for
# its LTE-M/NB-IoT modem shields (SARA-R4, WNC M14A2A). Nordic's NB-IoT CoAP client
# reportedly went from 10 s to 15 s (not checked against its source). 12 s is an
# estimate in that range; set "ack_timeout_ms" after measuring with bringup.py.
DEFAULT_ACK_TIMEOUT_MS = const(12000)
# RFC 7252 section 4.8: ACK_RANDOM_FACTOR 1.5, expressed in per mille.
ACK_RANDOM_FACTOR_PERMILLE = const(1500)
DEFAULT_MAX_RETRANSMIT = const(4)
TOKEN_BYTES = const(4)
MAX_PDU_BYTES = const(512)


class CoapError(Exception):
    """Failure of an exchange; the message names the request and the reason."""


class CoapTimeout(CoapError):
    pass


class CoapReset(CoapError):
    pass


def _random_seed():
    """Return 32 random bits from os.urandom (the RP2040's ring oscillator on rp2).

    Not time.ticks_us(): it restarts at 0 on every boot, so a device that resets
    right after a check-in would repeat message ids inside the server's
    deduplication window (EXCHANGE_LIFETIME, RFC 7252 section 4.8.2) and get the
    cached reply of its previous exchange.
    """
    try:
        return int.from_bytes(os.urandom(4), "big")
    except (AttributeError, OSError, NotImplementedError):
        # NOTE: ports without os.urandom (the WebAssembly build of the tests) fall
        # back to the boot-relative clock; rp2 has it.
        return time.ticks_us()


def max_transmit_wait_ms(ack_timeout_ms, max_retransmit):
    """MAX_TRANSMIT_WAIT of RFC 7252 section 4.8.2, in ms, for these parameters."""
    return ack_timeout_ms * ((1 << (max_retransmit + 1)) - 1) * ACK_RANDOM_FACTOR_PERMILLE // 1000


class CoapClient:
    """Runs one CON exchange at a time over a transport.

    deadline_ms bounds a whole exchange, retransmissions and the wait for a
    separate response included; it defaults to MAX_TRANSMIT_WAIT.
    """

    def __init__(self, transport, ack_timeout_ms=DEFAULT_ACK_TIMEOUT_MS, max_retransmit=DEFAULT_MAX_RETRANSMIT,
                 deadline_ms=None, seed=None, ticks_ms=time.ticks_ms, idle=None):
        self.transport = transport
        self.ack_timeout_ms = ack_timeout_ms
        self.max_retransmit = max_retransmit
        self.deadline_ms = deadline_ms or max_transmit_wait_ms(ack_timeout_ms, max_retransmit)
        self._ticks_ms = ticks_ms
        self._idle = idle
        # xorshift32 state: ids and tokens need to be unpredictable to an off-path
        # attacker (RFC 7252 section 5.3.1), not cryptographically strong.
        self._rand = (seed if seed is not None else _random_seed()) & 0xFFFFFFFF or 0x9E3779B9
        self._mid = self._next_random() & 0xFFFF
        self._tx = bytearray(MAX_PDU_BYTES)
        self._ack = bytearray(coap.HEADER_BYTES)
        self._last_acked_mid = None
        self.retransmissions = 0

    def _next_random(self):
        x = self._rand
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self._rand = x
        return x

    def _new_token(self):
        value = self._next_random()
        return bytes((value >> 24, (value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF))

    def _send(self, pdu):
        # Modem faults (ERROR replies, a closed context) surface as CoapError, so
        # callers handle one exception family for anything that stops an exchange.
        try:
            self.transport.send(pdu)
        except CoapError:
            raise
        except Exception as err:
            raise CoapError("transport send failed: %s" % err)

    def _receive(self, timeout_ms):
        try:
            return self.transport.receive(timeout_ms)
        except Exception as err:
            raise CoapError("transport receive failed: %s" % err)

    def _send_empty(self, mtype, mid):
        coap.encode_into(self._ack, mtype, coap.EMPTY, mid)
        self._send(self._ack)

    def request(self, code, options=(), payload=None):
        """Send a CON request and return the response Message.

        options must be sorted by number (see coap.encode_into). Raises CoapTimeout
        when no response arrives before the retransmissions or the deadline run
        out, CoapReset when the server replies with RST.
        """
        self._mid = (self._mid + 1) & 0xFFFF
        mid = self._mid
        token = self._new_token()
        length = coap.encode_into(self._tx, coap.TYPE_CON, code, mid, token, options, payload)
        pdu = memoryview(self._tx)[:length]

        start = self._ticks_ms()
        deadline = time.ticks_add(start, self.deadline_ms)
        # Initial timeout is random in [ACK_TIMEOUT, ACK_TIMEOUT * ACK_RANDOM_FACTOR).
        spread = self.ack_timeout_ms * (ACK_RANDOM_FACTOR_PERMILLE - 1000) // 1000
        timeout_ms = self.ack_timeout_ms + (self._next_random() % spread if spread else 0)
        retransmits = 0
        acked = False
        self._send(pdu)
        resend_at = time.ticks_add(start, timeout_ms)

        while True:
            now = self._ticks_ms()
            if time.ticks_diff(deadline, now) <= 0:
                raise CoapTimeout("no response to %s mid %d within the %d ms deadline" % (coap.code_string(code), mid, self.deadline_ms))
            if not acked and time.ticks_diff(resend_at, now) <= 0:
                if retransmits >= self.max_retransmit:
                    raise CoapTimeout("no response to %s mid %d after %d retransmissions" % (coap.code_string(code), mid, retransmits))
                retransmits += 1
                self.retransmissions += 1
                timeout_ms *= 2
                resend_at = time.ticks_add(now, timeout_ms)
                _log.info("retransmit", mid, retransmits)
                self._send(pdu)
                continue
            wait_until = deadline if acked else resend_at
            if time.ticks_diff(deadline, wait_until) < 0:
                wait_until = deadline
            if self._idle:
                self._idle()
            data = self._receive(max(1, time.ticks_diff(wait_until, now)))
            if data is None:
                continue
            try:
                reply = coap.decode(data)
            except ValueError as err:
                _log.warn("malformed datagram ignored:", err)
                continue
            result = self._match(reply, mid, token, acked)
            if result is True:
                acked = True
            elif result is not None:
                return result

    def _match(self, reply, mid, token, acked):
        """Return the response, True for an empty ACK of our request, None to keep waiting."""
        if reply.mtype == coap.TYPE_RST:
            if reply.mid == mid:
                raise CoapReset("server reset mid %d" % mid)
            return None
        if reply.mtype == coap.TYPE_ACK:
            if reply.mid != mid:
                _log.debug("stray ACK ignored, mid", reply.mid)
                return None
            if reply.code == coap.EMPTY:
                return None if acked else True
            if reply.token != token:
                _log.warn("ACK with a foreign token ignored, mid", mid)
                return None
            return reply
        if reply.code == coap.EMPTY or reply.code < 64:
            # A CoAP ping (empty CON) or a request: this client serves nothing.
            if reply.mtype == coap.TYPE_CON:
                self._send_empty(coap.TYPE_RST, reply.mid)
            return None
        # Separate response (RFC 7252 section 5.2.2); it may overtake a lost empty ACK.
        if reply.token == token:
            if reply.mtype == coap.TYPE_CON:
                self._send_empty(coap.TYPE_ACK, reply.mid)
                self._last_acked_mid = reply.mid
            return reply
        if reply.mtype == coap.TYPE_CON:
            if reply.mid == self._last_acked_mid:
                # Our ACK of an earlier separate response was lost: acknowledge again.
                self._send_empty(coap.TYPE_ACK, reply.mid)
            else:
                self._send_empty(coap.TYPE_RST, reply.mid)
        _log.debug("stray response ignored, mid", reply.mid)
        return None


def path_options(path):
    """Split "d/3f2a" into Uri-Path options [(11, b"d"), (11, b"3f2a")]."""
    return [(coap.OPT_URI_PATH, segment.encode()) for segment in path.strip("/").split("/") if segment]
