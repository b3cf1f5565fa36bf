# machine module of the simulated Pico: the subset of the rp2 port's API that the
# firmware uses (Pin, UART, WDT, reset, lightsleep, deepsleep, unique_id).
# Every call samples the heap and then blocks on the harness, which owns the
# UART peer, the pins and the clock on the Node.js main thread.

import gc
import uctypes
import _harness
from pico_heap import sample as _sample

# rp2 reset causes (machine.reset() goes through the watchdog on the RP2040).
PWRON_RESET = 1
WDT_RESET = 3

# rp2 limit: the RP2040 watchdog counts 24 bits at 2 ticks per microsecond (rp2 port).
_WDT_MAX_MS = 8388

# Default ring buffer sizes of the rp2 UART driver, in bytes.
_UART_RXBUF = 256
_UART_TXBUF = 256

_LED_PIN = 25


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    ALT = 3
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_FALLING = 4
    IRQ_RISING = 8

    def __init__(self, id, mode=-1, pull=-1, *, value=None):
        if id == "LED":
            id = _LED_PIN
        if not isinstance(id, int) or not 0 <= id <= 29:
            raise ValueError("pin %r is invalid: use 0..29 or 'LED'" % (id,))
        self._id = id
        self._mode = Pin.IN
        self._level = 0
        self.init(mode, pull, value=value)

    def init(self, mode=-1, pull=-1, *, value=None):
        if mode != -1:
            self._mode = mode
        if value is not None:
            self.value(value)

    def value(self, v=None):
        _sample()
        if v is None:
            if self._mode == Pin.OUT:
                return self._level
            return _harness.pin_read(self._id)
        self._level = 1 if v else 0
        if self._mode == Pin.OUT or self._mode == Pin.OPEN_DRAIN:
            _harness.pin_write(self._id, self._level)

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def high(self):
        self.value(1)

    def low(self):
        self.value(0)

    def toggle(self):
        self.value(0 if self._level else 1)

    def __repr__(self):
        return "Pin(GPIO%d, mode=%s)" % (self._id, ("IN", "OUT", "OPEN_DRAIN", "ALT")[self._mode])


class UART:
    def __init__(self, id, baudrate=115200, bits=8, parity=None, stop=1, *, tx=None, rx=None,
                 timeout=0, timeout_char=0, rxbuf=_UART_RXBUF, txbuf=_UART_TXBUF, **kwargs):
        if id != 0:
            raise ValueError("UART(%d) is not wired on the simulated Pico: use UART(0)" % id)
        self._opened = False
        self.init(baudrate, bits, parity, stop, tx=tx, rx=rx, timeout=timeout,
                  timeout_char=timeout_char, rxbuf=rxbuf, txbuf=txbuf)

    def init(self, baudrate=115200, bits=8, parity=None, stop=1, *, tx=None, rx=None,
             timeout=0, timeout_char=0, rxbuf=_UART_RXBUF, txbuf=_UART_TXBUF, **kwargs):
        self._baudrate = baudrate
        self._timeout_ms = timeout
        # rp2 raises timeout_char to the time of one 13-bit frame plus 1 ms.
        self._timeout_char_ms = max(timeout_char, 13000 // baudrate + 1)
        _sample()
        _harness.uart_init(baudrate, rxbuf, txbuf)
        self._opened = True

    def deinit(self):
        _sample()
        _harness.uart_deinit()
        self._opened = False

    def any(self):
        _sample()
        return _harness.uart_any()

    def write(self, buf):
        if isinstance(buf, str):
            buf = buf.encode()
        n = len(buf)
        if n == 0:
            return 0
        _sample()
        return _harness.uart_write(uctypes.addressof(buf), n)

    def _receive(self, n, line):
        # Stages up to n bytes in the harness; returns their count, or -1 on timeout.
        # rp2 readline() reads one byte per driver call, so each byte gets `timeout`.
        _sample()
        timeout_char_ms = self._timeout_ms if line else self._timeout_char_ms
        return _harness.uart_read(n, self._timeout_ms, timeout_char_ms, 1 if line else 0)

    def _take_bytes(self, k):
        _harness.stage(k)
        return bytes(uctypes.bytearray_at(_harness.SCRATCH_ADDRESS, k))

    def read(self, n=-1):
        if n is not None and n >= 0:
            if n == 0:
                return b""
            k = self._receive(n, False)
            return None if k < 0 else self._take_bytes(k)
        # Like the rp2 stream readall: chunks of 256 bytes until a chunk times out.
        parts = []
        while True:
            k = self._receive(256, False)
            if k < 0:
                break
            parts.append(self._take_bytes(k))
        return b"".join(parts) if parts else None

    def readinto(self, buf, nbytes=None):
        n = len(buf) if nbytes is None else min(nbytes, len(buf))
        if n == 0:
            return 0
        k = self._receive(n, False)
        if k < 0:
            return None
        _harness.take(uctypes.addressof(buf), k)
        return k

    def readline(self, size=-1):
        n = 0x7FFFFFFF if size is None or size < 0 else size
        k = self._receive(n, True)
        return None if k < 0 else self._take_bytes(k)

    def flush(self):
        _sample()
        _harness.uart_flush()

    def txdone(self):
        _sample()
        return _harness.uart_txdone() == 1

    def sendbreak(self):
        pass

    def __repr__(self):
        return "UART(0, baudrate=%d, timeout=%d, timeout_char=%d)" % (
            self._baudrate, self._timeout_ms, self._timeout_char_ms)


class WDT:
    def __init__(self, id=0, timeout=5000):
        if id != 0:
            raise ValueError("WDT(%d) does not exist: use WDT(0)" % id)
        if timeout > _WDT_MAX_MS:
            raise ValueError("timeout %d ms is longer than the rp2 maximum %d ms" % (timeout, _WDT_MAX_MS))
        _sample()
        _harness.wdt_start(timeout)

    def feed(self):
        _sample()
        _harness.wdt_feed()


def reset():
    _sample()
    _harness.reset("machine.reset")


def soft_reset():
    raise SystemExit


def reset_cause():
    _sample()
    return _harness.reset_cause()


def unique_id():
    _sample()
    return bytes.fromhex(_harness.unique_id())


def freq(hz=None):
    return 125000000 if hz is None else None


def idle():
    _sample()
    _harness.sleep_ms(0.001)


def lightsleep(time_ms=None):
    _sample()
    # Without a time the board sleeps until an interrupt, which the harness never raises.
    _harness.sleep_ms(-1 if time_ms is None else time_ms)


def deepsleep(time_ms=None):
    # rp2: deepsleep is a lightsleep followed by a reset.
    lightsleep(time_ms)
    _harness.reset("deepsleep")


def disable_irq():
    return 0


def enable_irq(state=0):
    pass
