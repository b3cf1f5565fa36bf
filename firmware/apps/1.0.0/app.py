"""Example app 1.0.0, the factory image: blinks the LED every 0.5 s."""
import time

VERSION = "1.0.0"
HALF_PERIOD_MS = 500


def step(led):
    """Run one on/off cycle (1 s); the launcher calls this in a loop."""
    led.on()
    time.sleep_ms(HALF_PERIOD_MS)
    led.off()
    time.sleep_ms(HALF_PERIOD_MS)
