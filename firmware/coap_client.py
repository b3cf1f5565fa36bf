"""CoAP client exchanges: CON requests with retransmission, matching and deadlines.

One request at a time with request(), or several in flight with start() and poll()
on RequestSlots, each slot with its own mid, token and retransmission timer.

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


class RequestSlot:
    """One Confirmable request in flight: its encoded PDU, mid, token and retransmission timer.

    tag is the caller's label for the request, such as a block number. Slots are
    allocated once and reused, so keeping several requests in flight allocates
    nothing per request beyond the token.
    """

    def __init__(self, pdu_bytes=MAX_PDU_BYTES):
        self.pdu = bytearray(pdu_bytes)
        self.capacity = pdu_bytes
        self.length = 0
        self.active = False
        self.tag = None
        self.code = 0
        self.mid = 0
        self.token = b""
        self.acked = False
        self.retransmits = 0
        self.timeout_ms = 0
        self.resend_at = 0
        self.deadline = 0


class CoapClient:
    """Runs CON exchanges over a transport: one at a time with request(), several with start() and poll().

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
        self._slot = RequestSlot()
        self._single = (self._slot,)
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
        self.start(self._slot, code, options, payload)
        _, result = self.poll(self._single)
        if isinstance(result, CoapError):
            raise result
        return result

    def start(self, slot, code, options=(), payload=None, tag=None):
        """Encode a CON request into slot with a new mid and token, and send it.

        Raises CoapError when the transport cannot send; the slot then stays idle.
        """
        self._mid = (self._mid + 1) & 0xFFFF
        slot.mid = self._mid
        slot.token = self._new_token()
        slot.code = code
        slot.tag = tag
        slot.length = coap.encode_into(slot.pdu, coap.TYPE_CON, code, slot.mid, slot.token, options, payload)
        if slot.length > slot.capacity:
            # A slice assignment past the end grows a bytearray instead of raising.
            slot.pdu = bytearray(slot.capacity)
            raise ValueError("request of %d bytes exceeds the %d-byte request slot" % (slot.length, slot.capacity))

        now = self._ticks_ms()
        slot.deadline = time.ticks_add(now, self.deadline_ms)
        # Initial timeout is random in [ACK_TIMEOUT, ACK_TIMEOUT * ACK_RANDOM_FACTOR).
        spread = self.ack_timeout_ms * (ACK_RANDOM_FACTOR_PERMILLE - 1000) // 1000
        slot.timeout_ms = self.ack_timeout_ms + (self._next_random() % spread if spread else 0)
        slot.retransmits = 0
        slot.acked = False
        slot.active = False
        self._send(memoryview(slot.pdu)[:slot.length])
        slot.resend_at = time.ticks_add(now, slot.timeout_ms)
        slot.active = True

    def poll(self, slots):
        """Wait until one active slot of slots completes and return (slot, result).

        result is the response Message, or the CoapError (timeout, reset or a failed
        retransmission) that ended that exchange. Each slot retransmits on its own
        timer. The returned slot is idle again. Raises CoapError when the transport
        cannot receive, ValueError when no slot is active.
        """
        while True:
            now = self._ticks_ms()
            wake_at = None
            for slot in slots:
                if not slot.active:
                    continue
                failure = self._service_timer(slot, now)
                if failure is not None:
                    slot.active = False
                    return slot, failure
                due = slot.deadline if slot.acked else slot.resend_at
                if time.ticks_diff(slot.deadline, due) < 0:
                    due = slot.deadline
                if wake_at is None or time.ticks_diff(due, wake_at) < 0:
                    wake_at = due
            if wake_at is None:
                raise ValueError("poll() needs at least one active request slot")
            if self._idle:
                self._idle()
            data = self._receive(max(1, time.ticks_diff(wake_at, now)))
            if data is None:
                continue
            try:
                reply = coap.decode(data)
            except ValueError as err:
                _log.warn("malformed datagram ignored:", err)
                continue
            slot, result = self._match(reply, slots)
            if slot is not None:
                slot.active = False
                return slot, result

    def _service_timer(self, slot, now):
        """Retransmit slot when its timer is due; return the CoapError that ends it, or None."""
        if time.ticks_diff(slot.deadline, now) <= 0:
            return CoapTimeout("no response to %s mid %d within the %d ms deadline"
                               % (coap.code_string(slot.code), slot.mid, self.deadline_ms))
        if slot.acked or time.ticks_diff(slot.resend_at, now) > 0:
            return None
        if slot.retransmits >= self.max_retransmit:
            return CoapTimeout("no response to %s mid %d after %d retransmissions"
                               % (coap.code_string(slot.code), slot.mid, slot.retransmits))
        slot.retransmits += 1
        self.retransmissions += 1
        slot.timeout_ms *= 2
        slot.resend_at = time.ticks_add(now, slot.timeout_ms)
        _log.info("retransmit", slot.mid, slot.retransmits)
        try:
            self._send(memoryview(slot.pdu)[:slot.length])
        except CoapError as err:
            return err
        return None

    def _match(self, reply, slots):
        """Return (slot, response or CoapReset) when reply ends an exchange, else (None, None).

        An empty ACK marks its slot acknowledged, so only the deadline runs on
        while a separate response is awaited (RFC 7252 section 5.2.2).
        """
        if reply.mtype == coap.TYPE_RST:
            slot = _slot_by_mid(slots, reply.mid)
            if slot is not None:
                return slot, CoapReset("server reset mid %d" % reply.mid)
            return None, None
        if reply.mtype == coap.TYPE_ACK:
            slot = _slot_by_mid(slots, reply.mid)
            if slot is None:
                _log.debug("stray ACK ignored, mid", reply.mid)
                return None, None
            if reply.code == coap.EMPTY:
                slot.acked = True
                return None, None
            if reply.token != slot.token:
                _log.warn("ACK with a foreign token ignored, mid", reply.mid)
                return None, None
            return slot, reply
        if reply.code == coap.EMPTY or reply.code < 64:
            # A CoAP ping (empty CON) or a request: this client serves nothing.
            if reply.mtype == coap.TYPE_CON:
                self._send_empty(coap.TYPE_RST, reply.mid)
            return None, None
        # Separate response (RFC 7252 section 5.2.2); it may overtake a lost empty ACK.
        slot = _slot_by_token(slots, reply.token)
        if slot is not None:
            if reply.mtype == coap.TYPE_CON:
                self._send_empty(coap.TYPE_ACK, reply.mid)
                self._last_acked_mid = reply.mid
            return slot, reply
        if reply.mtype == coap.TYPE_CON:
            if reply.mid == self._last_acked_mid:
                # Our ACK of an earlier separate response was lost: acknowledge again.
                self._send_empty(coap.TYPE_ACK, reply.mid)
            else:
                self._send_empty(coap.TYPE_RST, reply.mid)
        _log.debug("stray response ignored, mid", reply.mid)
        return None, None


def _slot_by_mid(slots, mid):
    for slot in slots:
        if slot.active and slot.mid == mid:
            return slot
    return None


def _slot_by_token(slots, token):
    for slot in slots:
        if slot.active and slot.token == token:
            return slot
    return None


def path_options(path):
    """Split "d/3f2a" into Uri-Path options [(11, b"d"), (11, b"3f2a")]."""
    return [(coap.OPT_URI_PATH, segment.encode()) for segment in path.strip("/").split("/") if segment]
