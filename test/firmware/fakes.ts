// Python stand-ins for unit tests that need hardware modules without the full harness:
// a `machine` module with the rp2 API surface the firmware uses, and a scripted
// SIM7020E on a fake UART that replies to AT commands synchronously.

export const FAKE_MACHINE = `
import time

class Pin:
    OUT = 1
    IN = 0
    changes = []  # (pin, level, ticks_ms) for every output change
    def __init__(self, number, mode=None):
        self.number = number
        self.level = 0
    def value(self, *level):
        if level:
            self.level = level[0]
            Pin.changes.append((self.number, self.level, time.ticks_ms()))
        return self.level
    def on(self):
        self.value(1)
    def off(self):
        self.value(0)
    def toggle(self):
        self.value(1 - self.level)

class ResetCalled(Exception):
    pass

def reset():
    raise ResetCalled()

def unique_id():
    return b"\\xe6\\x61\\x38\\x52\\x03\\x44\\x5a\\x2d"
`;

export const FAKE_MODEM = `
class FakeModemUart:
    """Answers each command line through handler(command) -> list of reply lines."""
    def __init__(self, handler, powered=True):
        self.handler = handler
        self.powered = powered
        self.echo = True
        self.commands = []
        self.pending = bytearray()
        self.rx = bytearray()
    def write(self, data):
        self.pending.extend(bytes(data))
        while b"\\r" in self.pending:
            end = self.pending.index(b"\\r")
            command = bytes(self.pending[:end]).decode()
            self.pending = self.pending[end + 1:]
            if not self.powered:
                continue
            self.commands.append(command)
            if self.echo:
                self.rx.extend(command.encode() + b"\\r\\r\\n")
            if command == "ATE0":
                self.echo = False
            self.push(*self.handler(command))
    def push(self, *lines):
        for line in lines:
            self.rx.extend(b"\\r\\n" + line.encode() + b"\\r\\n")
    def any(self):
        return len(self.rx)
    def readline(self):
        if not self.rx:
            return None
        end = self.rx.find(b"\\n")
        end = len(self.rx) if end < 0 else end + 1
        line = bytes(self.rx[:end])
        self.rx = self.rx[end:]
        return line
`;
