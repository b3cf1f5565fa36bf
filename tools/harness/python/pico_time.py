# time module of the simulated Pico (installed as time and utime). The WebAssembly build's own sleep functions
# spin the CPU and its clocks are the host's; here sleeps block on the harness
# (which may shorten them, see clockScale) and the clocks are the board's virtual
# clock, so the watchdog, the LED timestamps and ticks_ms() all agree.

import gc
import _harness
from pico_heap import sample as _sample

# The WebAssembly build's own time module: imported before the harness puts this
# module in sys.modules under the names time and utime.
import time as _builtin_time

# rp2: the RTC starts at 2021-01-01 00:00:00 when the board powers on.
_EPOCH_AT_POWER_ON_S = 1609459200


def ticks_ms():
    _sample()
    return _harness.ticks_ms()


def ticks_us():
    _sample()
    return _harness.ticks_us()


def ticks_cpu():
    return ticks_us()


ticks_add = _builtin_time.ticks_add
ticks_diff = _builtin_time.ticks_diff


def sleep_ms(ms):
    _sample()
    if ms > 0:
        _harness.sleep_ms(ms)


def sleep_us(us):
    _sample()
    if us > 0:
        _harness.sleep_ms(us / 1000)


def sleep(seconds):
    _sample()
    if seconds > 0:
        _harness.sleep_ms(seconds * 1000)


def time():
    _sample()
    return _EPOCH_AT_POWER_ON_S + int(_harness.power_on_ms() // 1000)


def time_ns():
    _sample()
    return (_EPOCH_AT_POWER_ON_S * 1000 + int(_harness.power_on_ms())) * 1000000


def gmtime(secs=None):
    return _builtin_time.gmtime(time() if secs is None else secs)


def localtime(secs=None):
    return _builtin_time.gmtime(time() if secs is None else secs)


def mktime(tuple_):
    return _builtin_time.mktime(tuple_)
