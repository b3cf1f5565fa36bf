"""Example app 3.0.0: slow pulse, the LED fades in and out without PWM.

Brightness comes from the duty cycle of short on/off periods (software PWM at
100 Hz), so the app uses only machine.Pin through the launcher's LED object.
"""
import time

VERSION = "3.0.0"
FRAME_MS = 10  # one software PWM period: 100 Hz, above visible flicker
LEVELS = 10  # brightness steps from off to full
FRAMES_PER_LEVEL = 5  # 50 ms per step: a full fade in or out takes 0.5 s

_rising = True


def _show(level):
    on_ms = FRAME_MS * level // LEVELS
    return on_ms, FRAME_MS - on_ms


def step(led):
    """Fade in or out once (about 0.5 s), alternating on each call."""
    global _rising
    levels = range(LEVELS + 1) if _rising else range(LEVELS, -1, -1)
    for level in levels:
        on_ms, off_ms = _show(level)
        for _ in range(FRAMES_PER_LEVEL):
            if on_ms:
                led.on()
                time.sleep_ms(on_ms)
            if off_ms:
                led.off()
                time.sleep_ms(off_ms)
    _rising = not _rising
