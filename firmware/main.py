"""Launcher: boots the active A/B slot, rolls back failed trials, runs the app and OTA check-ins.

Copied to the Pico once and never replaced by an update. Each boot loads the
configuration and slot state. A trial boot is counted, and after trial_boots
unconfirmed boots the launcher rolls back. Then it imports app.py from the
active slot, and an exception there during a trial rolls back at once.
Finally it loops over app.step(led), with an OTA check-in right after boot and
every check_interval_s. A step may return a number of ms the app has nothing
to do; the launcher spends them in machine.lightsleep, up to the next check-in.
"""
from micropython import const
import gc
import sys
import time
import machine
import config
import led
import log
import ota_proto as proto
import reports
import slots

# rp2 caps the watchdog at 8388 ms.
DEFAULT_WATCHDOG_MS = const(8000)
# Pause between steps when no app could be loaded, so check-ins still run.
NO_APP_PAUSE_MS = const(1000)

_log = log.Logger("main")


class Launcher:
    def __init__(self):
        self.led = led.Led()
        self.wdt = None
        self.watchdog_ms = 0
        self.config = None
        self.app = None

    def idle(self):
        """Keep the board alive during long waits: feed the watchdog, blink the LED."""
        if self.wdt:
            self.wdt.feed()
        self.led.service()

    def light_sleep(self, duration_ms, next_check):
        """Sleep with machine.lightsleep for duration_ms, but not past the next check-in.

        The RP2040 watchdog keeps counting in light sleep, so the sleep is cut into
        pieces of half the watchdog timeout with a feed after each.
        """
        duration_ms = min(duration_ms, max(0, time.ticks_diff(next_check, time.ticks_ms())))
        piece_max_ms = self.watchdog_ms // 2 if self.wdt else duration_ms
        while duration_ms > 0:
            piece_ms = min(duration_ms, piece_max_ms)
            machine.lightsleep(piece_ms)
            if self.wdt:
                self.wdt.feed()
            duration_ms -= piece_ms

    def rollback(self, state, reason):
        """Queue a rolled-back report, switch to the previous slot and reset."""
        target = slots.running_version(state)
        previous = slots.other(state["active"])
        if not slots.has_app(previous):
            _log.error("cannot roll back, slot has no app:", previous)
            return
        _log.error("rolling back", target, reason)
        # Queued before the switch: a power cut in between repeats the rollback,
        # and the outbox keeps one report per outcome and version.
        reports.add(proto.OUTCOME_ROLLED_BACK, target, reason)
        slots.save(slots.rolled_back(state))
        machine.reset()

    def load_app(self, state):
        """Import app.py of the active slot, with that slot first on sys.path."""
        folder = slots.slot_dir(state["active"])
        other = slots.slot_dir(slots.other(state["active"]))
        sys.path[:] = [folder] + [path for path in sys.path if path not in (folder, other)]
        for name in list(sys.modules):
            module_file = getattr(sys.modules[name], "__file__", "") or ""
            if name == "app" or module_file.startswith(other + "/"):
                del sys.modules[name]
        return __import__("app")

    def boot(self):
        """Load configuration and state, count a trial boot, import the app; return the state."""
        try:
            self.config = config.load()
            if self.config["led_pin"] != led.LED_PIN:
                self.led = led.Led(self.config["led_pin"])
        except config.ConfigError as err:
            # The app still runs; only updates stop until the file is fixed.
            _log.error("configuration unusable, updates disabled:", err)
            self.led.sos(1)
        state = slots.load()
        trial_boots = self.config["trial_boots"] if self.config else config.DEFAULTS["trial_boots"]
        if state["trial"]:
            state["boots"] += 1
            slots.save(state)
            _log.info("trial boot", state["boots"], "of", trial_boots)
            if state["boots"] > trial_boots:
                self.rollback(state, "not confirmed after %d boots" % trial_boots)
        _log.info("booting slot", state["active"], slots.running_version(state))
        try:
            self.app = self.load_app(state)
            _log.info("running app", slots.running_version(state), "from slot", state["active"])
        except Exception as err:  # any fault of the app's code, which the launcher must survive
            sys.print_exception(err)
            if state["trial"]:
                self.rollback(state, "import failed: %r" % err)
            _log.error("app import failed, running without an app:", err)
            self.app = None
            self.led.sos(1)
        return state

    def run(self):
        state = self.boot()
        updater = None
        if self.config:
            # Imported before the watchdog starts, because compiling ota.py and its
            # modules from source cannot feed it. An import that outlasts watchdog_ms
            # would otherwise reset the board before every first check-in.
            import ota
            updater = ota.Updater(self.config, self.led, self.idle)
        watchdog_ms = self.config["watchdog_ms"] if self.config else DEFAULT_WATCHDOG_MS
        self.watchdog_ms = watchdog_ms
        if watchdog_ms:
            # NOTE: ed25519.verify runs without feeding the watchdog; if a board needs
            # longer than watchdog_ms for it (bringup.py measures it), set watchdog_ms 0.
            self.wdt = machine.WDT(timeout=watchdog_ms)
        next_check = time.ticks_ms()
        while True:
            if self.wdt:
                self.wdt.feed()
            if updater and time.ticks_diff(time.ticks_ms(), next_check) >= 0:
                try:
                    state = updater.check_in(state)
                except Exception as err:  # an updater bug must not stop the app
                    sys.print_exception(err)
                    _log.error("check-in crashed:", err)
                    updater.disconnect()
                    state = slots.load()
                    self.led.sos(1, self.idle)
                # A 5.03 may ask for a longer wait than the interval, never a shorter one.
                wait_s = max(self.config["check_interval_s"], updater.retry_after_s)
                next_check = time.ticks_add(time.ticks_ms(), wait_s * 1000)
                gc.collect()
            if self.app is None:
                self.light_sleep(NO_APP_PAUSE_MS, next_check)
                continue
            try:
                sleep_ms = self.app.step(self.led)
            except Exception as err:  # a fault of the app's code
                sys.print_exception(err)
                if state["trial"]:
                    self.rollback(state, "step failed: %r" % err)
                _log.error("app step failed:", err)
                self.led.sos(1, self.idle)
                continue
            if isinstance(sleep_ms, int) and sleep_ms > 0:
                self.light_sleep(sleep_ms, next_check)


Launcher().run()
