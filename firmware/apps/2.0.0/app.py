"""Example app 2.0.0: fast blink, 0.1 s on and 0.1 s off."""
import time

VERSION = "2.0.0"
HALF_PERIOD_MS = 100
CYCLES_PER_STEP = 2


def step(led):
    """Run two on/off cycles (400 ms); the launcher calls this in a loop."""
    for _ in range(CYCLES_PER_STEP):
        led.on()
        time.sleep_ms(HALF_PERIOD_MS)
        led.off()
        time.sleep_ms(HALF_PERIOD_MS)
