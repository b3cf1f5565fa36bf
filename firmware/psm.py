"""Power saving mode (PSM) timers for AT+CPSMS, encoded per 3GPP TS 24.008.

The periodic TAU timer T3412 (how long the modem may sleep before it must report to
the network) is a GPRS Timer 3 value, table 10.5.163a. The active time T3324 (how long
the modem stays reachable after a transfer before it enters PSM) is a GPRS Timer 2
value, table 10.5.163. Both are one byte sent as 8 binary digits: bits 8..6 select the
unit and bits 5..1 hold a multiplier 0..31. The unit tables below follow Nordic's nRF91
AT command reference for +CPSMS, which quotes those 24.008 tables.
"""
from micropython import const

_MAX_MULTIPLIER = const(31)
# (unit code, seconds per step), finest first: a value uses the first unit that fits.
_TAU_UNITS = ((3, 2), (4, 30), (5, 60), (0, 600), (1, 3600), (2, 36000), (6, 1152000))
_ACTIVE_UNITS = ((0, 2), (1, 60), (2, 360))
# Unit code 7 (bits 111) means "timer deactivated" in both tables.
DEACTIVATED = "11100000"


def _encode(seconds, units, name):
    if not isinstance(seconds, int) or seconds < 0:
        raise ValueError("%s must be a non-negative number of seconds, got %r" % (name, seconds))
    for code, step_s in units:
        multiplier = (seconds + step_s - 1) // step_s  # rounds up: never shorter than requested
        if multiplier <= _MAX_MULTIPLIER:
            return "{:08b}".format(code << 5 | multiplier)
    longest = units[-1][1] * _MAX_MULTIPLIER
    raise ValueError("%s %d s exceeds the longest timer of %d s" % (name, seconds, longest))


def encode_tau(seconds):
    """Return the T3412 extended bits for at least seconds, such as "00001100" (10 min x 12) for 7200."""
    return _encode(seconds, _TAU_UNITS, "psm_tau_s")


def encode_active(seconds):
    """Return the T3324 bits for at least seconds, such as "00000101" for 10."""
    return _encode(seconds, _ACTIVE_UNITS, "psm_active_s")


def decode(bits, tau):
    """Return the seconds a T3412 (tau=True) or T3324 bit string encodes, None when deactivated."""
    value = int(bits, 2)
    code = value >> 5
    for unit_code, step_s in _TAU_UNITS if tau else _ACTIVE_UNITS:
        if unit_code == code:
            return (value & _MAX_MULTIPLIER) * step_s
    return None
