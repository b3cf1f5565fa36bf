"""Levelled print logger with a module tag; one line per event on the REPL UART."""
from micropython import const

DEBUG = const(10)
INFO = const(20)
WARN = const(30)
ERROR = const(40)

_NAMES = {DEBUG: "D", INFO: "I", WARN: "W", ERROR: "E"}
level = INFO


def set_level(new_level):
    global level
    level = new_level


class Logger:
    """Prints `<level> <tag>: <message> <values...>`; values are passed, not formatted."""

    def __init__(self, tag):
        self.tag = tag

    def _emit(self, at, message, values):
        if at >= level:
            print(_NAMES[at], self.tag + ":", message, *values)

    def debug(self, message, *values):
        self._emit(DEBUG, message, values)

    def info(self, message, *values):
        self._emit(INFO, message, values)

    def warn(self, message, *values):
        self._emit(WARN, message, values)

    def error(self, message, *values):
        self._emit(ERROR, message, values)
