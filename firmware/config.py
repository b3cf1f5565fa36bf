"""Device configuration from /ota_config.json, with firmware defaults for missing keys."""
import binascii
import json
import log
import psm
from ota_proto import DEFAULT_CHANNEL, MAX_CHANNEL_BYTES, MAX_DEVICE_ID_BYTES

CONFIG_PATH = "/ota_config.json"
# Max Block2 requests in flight, because sim7020.RX_QUEUE_MAX queues that many responses.
MAX_BLOCK_WINDOW = 8

# block_window 4: about the NB-IoT bandwidth-delay product at a 1 s round trip
# (docs/firmware.md, "Pipelined download").
# Default block size: a 512-byte block fits one AT+CCOAPNMI line of about 1.1 KB
# of hex and needs half the round trips of 256-byte blocks. docs/firmware.md
# explains how to measure the modem's real limit.
DEFAULTS = {
    "device_id": None,
    "server": "127.0.0.1",
    "port": 5683,
    "apn": "",
    "channel": DEFAULT_CHANNEL,
    "check_interval_s": 3600,
    "public_key": None,
    "block_size": 512,
    "block_window": 4,
    "ack_timeout_ms": 12000,
    "max_retransmit": 4,
    "trial_boots": 3,
    "modem_pwrkey_ms": 1000,
    # Optional keys beyond the ones ota-tool writes.
    "exchange_deadline_ms": None,
    "attach_timeout_ms": 180000,
    "modem_debug": False,
    "watchdog_ms": 8000,
    "log_level": "info",
    # GPIO of the status LED: 25 on a plain Pico. A Pico W wires its LED to the
    # wireless chip, which MicroPython names "LED".
    "led_pin": 25,
    # Power saving mode requested after a check-in without an update: T3412 (periodic
    # TAU) above check_interval_s, so the modem wakes for check-ins, not for TAUs;
    # T3324 (active time) short, since the device pulls and is never paged. 0 turns PSM off.
    "psm_tau_s": 14400,
    "psm_active_s": 10,
}

_INT_KEYS = ("port", "check_interval_s", "block_size", "block_window", "ack_timeout_ms", "max_retransmit", "trial_boots",
             "modem_pwrkey_ms", "attach_timeout_ms", "watchdog_ms", "psm_tau_s", "psm_active_s")

_log = log.Logger("config")


class ConfigError(Exception):
    pass


def _default_device_id():
    import machine
    return "pico-" + binascii.hexlify(machine.unique_id()).decode()


def load(path=CONFIG_PATH):
    """Read and validate the configuration; raise ConfigError naming the invalid key."""
    config = dict(DEFAULTS)
    try:
        with open(path) as f:
            loaded = json.load(f)
    except OSError:
        _log.warn("no configuration file, using defaults:", path)
        loaded = {}
    except ValueError as err:
        raise ConfigError("%s is not valid JSON (%s): regenerate it with ota-tool device add" % (path, err))
    if not isinstance(loaded, dict):
        raise ConfigError("%s must contain a JSON object: regenerate it with ota-tool device add" % path)

    for key in loaded:
        if key in config:
            config[key] = loaded[key]
        else:
            _log.warn("unknown configuration key ignored:", key)
    for key in _INT_KEYS:
        if not isinstance(config[key], int) or config[key] < 0:
            raise ConfigError("configuration key %r must be a non-negative integer, got %r" % (key, config[key]))
    if config["trial_boots"] < 1:
        raise ConfigError("trial_boots must be at least 1, got %d" % config["trial_boots"])
    if config["watchdog_ms"] > 8388:
        raise ConfigError("watchdog_ms must be 0 (off) or at most 8388 (the rp2 maximum), got %d" % config["watchdog_ms"])
    if not 16 <= config["block_size"] <= 1024:
        raise ConfigError("block_size must be 16..1024 bytes, got %d" % config["block_size"])
    if not 1 <= config["block_window"] <= MAX_BLOCK_WINDOW:
        raise ConfigError("block_window must be 1..%d block requests in flight, got %d (1 is stop-and-wait)"
                          % (MAX_BLOCK_WINDOW, config["block_window"]))
    led_pin = config["led_pin"]
    if not (led_pin == "LED" or (isinstance(led_pin, int) and 0 <= led_pin <= 29)):
        raise ConfigError("led_pin must be a GPIO number 0..29 or \"LED\" (Pico W), got %r" % (led_pin,))
    try:
        psm.encode_tau(config["psm_tau_s"])
        psm.encode_active(config["psm_active_s"])
    except ValueError as err:
        raise ConfigError("%s: set a shorter timer in %s" % (err, path))

    if not config["device_id"]:
        config["device_id"] = _default_device_id()
    _check_text("device_id", config["device_id"], MAX_DEVICE_ID_BYTES, b"._-", True)
    if config["device_id"] in (".", ".."):
        # The server rejects them: as URL path segments they would be resolved away.
        raise ConfigError("configuration key 'device_id' must not be %r" % config["device_id"])
    _check_text("channel", config["channel"], MAX_CHANNEL_BYTES, b"-", False)
    config["public_key_bytes"] = _public_key(config["public_key"])
    level = {"debug": log.DEBUG, "info": log.INFO, "warn": log.WARN, "error": log.ERROR}.get(config["log_level"])
    if level is None:
        raise ConfigError("log_level must be debug, info, warn or error, got %r" % (config["log_level"],))
    log.set_level(level)
    return config


def _check_text(key, value, max_bytes, punctuation, upper_allowed):
    """Raise ConfigError unless value matches the protocol's pattern for key."""
    valid = isinstance(value, str) and 1 <= len(value) <= max_bytes
    if valid:
        for byte in value.encode():
            is_lower_or_digit = 0x61 <= byte <= 0x7A or 0x30 <= byte <= 0x39
            is_upper = 0x41 <= byte <= 0x5A
            if not (is_lower_or_digit or (upper_allowed and is_upper) or byte in punctuation):
                valid = False
                break
    if not valid:
        allowed = "letters, digits" if upper_allowed else "lower-case letters, digits"
        raise ConfigError("configuration key %r must be 1..%d bytes of %s and %s, got %r"
                          % (key, max_bytes, allowed, punctuation.decode(), value))


def _public_key(text):
    """Decode the hex public key; None when absent, so updates fail closed later."""
    if text is None:
        return None
    try:
        key = binascii.unhexlify(text)
    except (ValueError, TypeError):
        key = b""
    if len(key) != 32:
        raise ConfigError("public_key must be 64 hex characters (a raw Ed25519 key), got %r" % (text,))
    return key
