"""Status patterns on the onboard LED (GP25).

0.5 s blink in normal operation, 0.1 s blink while updating, SOS (3 short,
3 long, 3 short) on error. Apps drive the LED through the same object.
"""
from micropython import const
import time
import machine

LED_PIN = const(25)
NORMAL_HALF_PERIOD_MS = const(500)
UPDATING_HALF_PERIOD_MS = const(100)
SOS_SHORT_MS = const(150)
SOS_LONG_MS = const(450)
SOS_GAP_MS = const(150)
SOS_PAUSE_MS = const(900)

MODE_NORMAL = const(0)
MODE_UPDATING = const(1)


class Led:
    def __init__(self, pin=LED_PIN):
        self.pin = machine.Pin(pin, machine.Pin.OUT)
        self.mode = MODE_NORMAL
        self._next_toggle = time.ticks_ms()
        self._sos_running = False

    def on(self):
        self.pin.on()

    def off(self):
        self.pin.off()

    def toggle(self):
        self.pin.toggle()

    def value(self, *level):
        return self.pin.value(*level)

    def set_updating(self, updating):
        self.mode = MODE_UPDATING if updating else MODE_NORMAL

    def service(self):
        """Toggle the LED when its half period is over; call often while waiting."""
        if self._sos_running:
            # sos() calls idle() between flashes, and idle() calls this: a toggle
            # here would put a blink inside the SOS pattern.
            return
        now = time.ticks_ms()
        if time.ticks_diff(now, self._next_toggle) >= 0:
            self.pin.toggle()
            half = UPDATING_HALF_PERIOD_MS if self.mode == MODE_UPDATING else NORMAL_HALF_PERIOD_MS
            self._next_toggle = time.ticks_add(now, half)

    def sos(self, repeats=1, idle=None):
        """Show SOS repeats times (about 4.5 s each); idle() runs between flashes."""
        self._sos_running = True
        try:
            self.pin.off()
            time.sleep_ms(SOS_PAUSE_MS)
            for _ in range(repeats):
                for on_ms in (SOS_SHORT_MS, SOS_SHORT_MS, SOS_SHORT_MS, SOS_LONG_MS, SOS_LONG_MS, SOS_LONG_MS,
                              SOS_SHORT_MS, SOS_SHORT_MS, SOS_SHORT_MS):
                    self.pin.on()
                    time.sleep_ms(on_ms)
                    self.pin.off()
                    time.sleep_ms(SOS_GAP_MS)
                    if idle:
                        idle()
                time.sleep_ms(SOS_PAUSE_MS)
        finally:
            self._sos_running = False
        self.mode = MODE_NORMAL
