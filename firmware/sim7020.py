"""SIM7020E NB-IoT modem driver: power, AT commands, attach, DNS, CoAP contexts.

The modem is a UDP pipe here: AT+CCOAPSEND carries a CoAP PDU built by
coap.py and every datagram that comes back arrives as a +CCOAPNMI URC, at any
time, also between a command and its final result. URCs are parsed wherever a
line is read and queued. CoapTransport gives coap_client the send/receive pair
of one CoAP context.
"""
from micropython import const
import binascii
import time
import machine
import log

UART_ID = const(0)
TX_PIN = const(0)  # GP0 to modem RX
RX_PIN = const(1)  # GP1 from modem TX
PWRKEY_PIN = const(14)
BAUDRATE = const(115200)

# One +CCOAPNMI line of a 1024-byte block is about 2.1 KB of hex. The UART ring
# buffer fits a whole line, so no byte is lost while Python writes flash.
RX_BUFFER_BYTES = const(2560)
LINE_BYTES = const(2400)
# Largest PDU one AT+CCOAPSEND carries.
# NOTE: 512 bytes is assumed, not measured; firmware/tools/bringup.py measures it on a board.
MAX_SEND_BYTES = const(512)
# Datagrams queued while a command runs: one per Block2 request in flight, up to
# config.MAX_BLOCK_WINDOW.
RX_QUEUE_MAX = const(8)

# Timeouts in ms. These are estimates with headroom, not datasheet values:
# bringup.py prints the real response times of a board.
UART_TIMEOUT_MS = const(20)  # wait for a first byte inside one readline()
UART_CHAR_TIMEOUT_MS = const(10)  # gap between bytes inside one line
POLL_MS = const(10)
AT_TIMEOUT_MS = const(2000)  # ordinary commands
AT_PROBE_TIMEOUT_MS = const(500)  # "AT" while finding out whether the modem is on
CFUN_TIMEOUT_MS = const(10000)  # radio on/off
DNS_TIMEOUT_MS = const(30000)  # AT+CDNSGIP result URC
BOOT_TIMEOUT_MS = const(10000)  # from PWRKEY release to the first reply to "AT"
OFF_SETTLE_MS = const(3000)  # after a PWRKEY pulse that turns the modem off
ATTACH_POLL_MS = const(2000)
SIM_TRIES = const(5)

# AT commands the driver sends.
CMD_AT = b"AT"
CMD_ECHO_OFF = b"ATE0"
CMD_SIM_STATUS = b"AT+CPIN?"
CMD_SIGNAL_QUALITY = b"AT+CSQ"
CMD_RADIO_OFF = b"AT+CFUN=0"
CMD_RADIO_ON = b"AT+CFUN=1"
CMD_RADIO_STATUS = b"AT+CFUN?"
CMD_SET_APN = 'AT*MCGDEFCONT="IP","%s"'
CMD_ATTACH_STATUS = b"AT+CGATT?"
CMD_REGISTRATION = b"AT+CEREG?"
CMD_PDP_INFO = b"AT+CGCONTRDP"
CMD_DNS_LOOKUP = 'AT+CDNSGIP="%s"'
CMD_COAP_NEW = 'AT+CCOAPNEW="%s",%d,%d'
CMD_COAP_SEND = b"AT+CCOAPSEND="
CMD_COAP_DELETE = "AT+CCOAPDEL=%d"
CMD_PSM = 'AT+CPSMS=%d,,,"%s","%s"'
CMD_EDRX = 'AT+CEDRXS=%d,5,"%s"'

# Replies and URCs.
RESULT_OK = b"OK"
RESULT_ERROR = b"ERROR"
RESULT_CME_ERROR = b"+CME ERROR"
REPLY_SIM_READY = b"+CPIN: READY"
REPLY_SIGNAL = b"+CSQ:"
REPLY_ATTACHED = b"+CGATT: 1"
REPLY_REGISTRATION = b"+CEREG:"
REPLY_COAP_NEW = b"+CCOAPNEW:"
URC_COAP_DATA = b"+CCOAPNMI:"
URC_DNS = b"+CDNSGIP:"

# +CEREG <stat> values of a registered modem.
REG_HOME = const(1)
REG_ROAMING = const(5)
PDP_CID = const(1)

_HEX_DIGITS = b"0123456789ABCDEF"
_CONSUMED = b""  # _read_line result for a blank line or a URC handled there

_log = log.Logger("modem")


class ModemError(Exception):
    """Failure reply (ERROR, +CME ERROR) or an unexpected reply from the modem."""


class ModemTimeout(ModemError):
    """No reply from the modem within the timeout."""


def is_ipv4(host):
    parts = host.split(".")
    if len(parts) != 4:
        return False
    for part in parts:
        if not part.isdigit() or int(part) > 255:
            return False
    return True


class Sim7020:
    def __init__(self, pwrkey_ms=1000, debug=False, idle=None, uart=None, pwrkey=None):
        self.uart = uart or machine.UART(UART_ID, baudrate=BAUDRATE, tx=machine.Pin(TX_PIN), rx=machine.Pin(RX_PIN),
                                         timeout=UART_TIMEOUT_MS, timeout_char=UART_CHAR_TIMEOUT_MS,
                                         rxbuf=RX_BUFFER_BYTES)
        self.pwrkey = pwrkey or machine.Pin(PWRKEY_PIN, machine.Pin.OUT)
        self.pwrkey.off()
        self.pwrkey_ms = pwrkey_ms
        self.debug = debug
        self.idle = idle
        self._line = bytearray(LINE_BYTES)
        self._line_length = 0
        self._tx = bytearray(len(CMD_COAP_SEND) + 16 + 2 * MAX_SEND_BYTES + 2)
        self._rx_queue = []
        self._dns_reply = None
        self.bytes_sent = 0

    # Line layer ----------------------------------------------------------

    def _read_line(self, deadline):
        """Return the next line as bytes, b"" for a URC consumed here, None at the deadline.

        +CCOAPNMI lines are parsed straight from the line buffer and queued, so a
        block never exists twice as hex; +CDNSGIP is kept for resolve().
        """
        uart = self.uart
        while True:
            chunk = uart.readline() if uart.any() else None
            if chunk:
                end = self._line_length + len(chunk)
                complete = chunk[-1] == 0x0A
                if end > LINE_BYTES:
                    # Skip the rest of an oversized line rather than parse half of it.
                    _log.warn("line longer than the buffer dropped, bytes:", end)
                    self._line_length = 0 if complete else LINE_BYTES
                    continue
                self._line[self._line_length:end] = chunk
                self._line_length = end
                if complete:
                    return self._take_line()
                continue
            if time.ticks_diff(deadline, time.ticks_ms()) <= 0:
                return None
            if self.idle:
                self.idle()
            time.sleep_ms(POLL_MS)

    def _take_line(self):
        view = memoryview(self._line)
        start = 0
        end = self._line_length
        self._line_length = 0
        while start < end and self._line[start] in b"\r\n ":
            start += 1
        while end > start and self._line[end - 1] in b"\r\n ":
            end -= 1
        if start == end:
            return _CONSUMED
        if self.debug:
            print("<<", bytes(view[start:min(end, start + 80)]))
        if end - start > len(URC_COAP_DATA) and bytes(view[start:start + len(URC_COAP_DATA)]) == URC_COAP_DATA:
            self._queue_coap_data(view[start + len(URC_COAP_DATA):end])
            return _CONSUMED
        line = bytes(view[start:end])
        if line.startswith(URC_DNS):
            self._dns_reply = line
            return _CONSUMED
        return line

    def _queue_coap_data(self, fields):
        """Parse `<id>,<len>,<hex>` (hex quoted or not) and queue (id, payload)."""
        try:
            first = bytes(fields[:12]).index(b",")
            second = first + 1 + bytes(fields[first + 1:first + 13]).index(b",")
            context = int(bytes(fields[:first]))
            length = int(bytes(fields[first + 1:second]))
            hex_start = second + 1
            hex_end = len(fields)
            if fields[hex_start] == 0x22:
                hex_start += 1
            if fields[hex_end - 1] == 0x22:
                hex_end -= 1
            if hex_end - hex_start != 2 * length:
                raise ValueError("length %d but %d hex digits" % (length, hex_end - hex_start))
            payload = binascii.unhexlify(fields[hex_start:hex_end])
        except (ValueError, IndexError) as err:
            _log.warn("malformed +CCOAPNMI dropped:", err)
            return
        if len(self._rx_queue) >= RX_QUEUE_MAX:
            _log.warn("receive queue full, oldest datagram dropped")
            self._rx_queue.pop(0)
        self._rx_queue.append((context, payload))

    # Command layer -------------------------------------------------------

    def command(self, cmd, timeout_ms=AT_TIMEOUT_MS):
        """Send one AT command and return its information lines (bytes) before OK.

        Raises ModemError on ERROR or +CME ERROR, ModemTimeout when no final
        result arrives within timeout_ms.
        """
        if isinstance(cmd, str):
            cmd = cmd.encode()
        if self.debug:
            print(">>", cmd)
        self.uart.write(cmd)
        self.uart.write(b"\r")
        return self._collect(cmd, timeout_ms)

    def _collect(self, cmd, timeout_ms):
        deadline = time.ticks_add(time.ticks_ms(), timeout_ms)
        info = []
        while True:
            line = self._read_line(deadline)
            if line is None:
                raise ModemTimeout("%s: no reply within %d ms" % (cmd[:24], timeout_ms))
            if line == RESULT_OK:
                return info
            if line == RESULT_ERROR or line.startswith(RESULT_CME_ERROR):
                raise ModemError("%s failed: %s" % (cmd[:24], line))
            if not line or line.startswith(b"AT"):
                continue  # command echo, on until ATE0
            info.append(line)

    def _pause(self, duration_ms):
        """Wait duration_ms while still reading URCs into the queue."""
        self._read_until(time.ticks_add(time.ticks_ms(), duration_ms), lambda: False)

    def _read_until(self, deadline, done):
        while not done():
            line = self._read_line(deadline)
            if line is None:
                return False
            if line:
                _log.debug("unsolicited line ignored:", line)
        return True

    # Power ---------------------------------------------------------------

    def _replies(self):
        try:
            self.command(CMD_AT, AT_PROBE_TIMEOUT_MS)
            return True
        except ModemTimeout:
            return False
        except ModemError:
            return True  # an ERROR is still a reply

    def pulse_pwrkey(self):
        """Toggle the modem between off and on with one PWRKEY pulse."""
        _log.info("PWRKEY pulse, ms:", self.pwrkey_ms)
        self.pwrkey.on()
        time.sleep_ms(self.pwrkey_ms)
        self.pwrkey.off()

    def _wait_boot(self):
        deadline = time.ticks_add(time.ticks_ms(), BOOT_TIMEOUT_MS)
        while time.ticks_diff(deadline, time.ticks_ms()) > 0:
            if self._replies():
                return True
        return False

    def power_on(self):
        """Make sure the modem replies to AT; pulse PWRKEY only if it stays silent.

        The modem keeps its power across a Pico reset, so a blind pulse would
        switch a running modem off. Two pulses cover a modem that was on but hung.
        """
        for _ in range(3):
            if self._replies():
                return
        for _ in range(2):
            self.pulse_pwrkey()
            if self._wait_boot():
                return
        raise ModemTimeout("modem does not reply to AT after two PWRKEY pulses: check its supply, GP0/GP1 wiring and GP14")

    def restart(self):
        """Switch a modem that stopped replying off and on again."""
        _log.warn("restarting the modem")
        if self._replies():
            self.pulse_pwrkey()
            self._pause(OFF_SETTLE_MS)
        self._rx_queue = []
        self.power_on()

    # Network -------------------------------------------------------------

    def start(self, apn, attach_timeout_ms):
        """Power on, disable echo, check the SIM, set the APN if needed, wait for attach."""
        self.power_on()
        self.command(CMD_ECHO_OFF)
        for attempt in range(SIM_TRIES):
            try:
                if REPLY_SIM_READY in self.command(CMD_SIM_STATUS):
                    break
            except ModemError as err:
                _log.warn("SIM not ready:", err)
            self._pause(1000)
        else:
            raise ModemError("SIM not ready after %d tries: check that a SIM is inserted" % SIM_TRIES)
        if self.attached():
            return
        if apn:
            self.command(CMD_RADIO_OFF, CFUN_TIMEOUT_MS)
            self.command(CMD_SET_APN % apn)
            self.command(CMD_RADIO_ON, CFUN_TIMEOUT_MS)
        self.wait_attach(attach_timeout_ms)

    def attached(self):
        if REPLY_ATTACHED not in self.command(CMD_ATTACH_STATUS):
            return False
        for line in self.command(CMD_REGISTRATION):
            if line.startswith(REPLY_REGISTRATION):
                fields = line[len(REPLY_REGISTRATION):].split(b",")
                if len(fields) >= 2 and int(fields[1]) in (REG_HOME, REG_ROAMING):
                    return True
        return False

    def wait_attach(self, timeout_ms):
        deadline = time.ticks_add(time.ticks_ms(), timeout_ms)
        while not self.attached():
            if time.ticks_diff(deadline, time.ticks_ms()) <= 0:
                raise ModemTimeout("not attached after %d ms: check the APN, the SIM and the signal (AT+CSQ)" % timeout_ms)
            self._pause(ATTACH_POLL_MS)
        _log.info("attached")

    def signal_quality(self):
        """Return (rssi, ber) of AT+CSQ; rssi 99 means unknown."""
        for line in self.command(CMD_SIGNAL_QUALITY):
            if line.startswith(REPLY_SIGNAL):
                rssi, ber = line[len(REPLY_SIGNAL):].split(b",")
                return int(rssi), int(ber)
        raise ModemError("AT+CSQ returned no +CSQ line")

    def resolve(self, host):
        """Return the IPv4 address of host, asking the modem's DNS for names."""
        if is_ipv4(host):
            return host
        self._dns_reply = None
        self.command(CMD_DNS_LOOKUP % host)
        deadline = time.ticks_add(time.ticks_ms(), DNS_TIMEOUT_MS)
        if not self._read_until(deadline, lambda: self._dns_reply is not None):
            raise ModemTimeout("DNS lookup of %s: no +CDNSGIP within %d ms" % (host, DNS_TIMEOUT_MS))
        fields = self._dns_reply[len(URC_DNS):].strip().split(b",")
        if fields[0] != b"1" or len(fields) < 3:
            raise ModemError("DNS lookup of %s failed: %s; check the name or use an IP address" % (host, self._dns_reply))
        return fields[2].strip(b'"').decode()

    def set_psm(self, enabled, tau_bits, active_bits):
        """Request PSM with T3412 (periodic TAU) and T3324 (active time) as 8-bit strings."""
        self.command(CMD_PSM % (1 if enabled else 0, tau_bits, active_bits))

    def set_edrx(self, mode, cycle_bits):
        """Request eDRX for NB-S1 (access technology 5) with a 4-bit cycle string."""
        self.command(CMD_EDRX % (mode, cycle_bits))

    # CoAP contexts -------------------------------------------------------

    def coap_open(self, ip, port):
        """Create a CoAP client context towards ip:port and return its transport."""
        for line in self.command(CMD_COAP_NEW % (ip, port, PDP_CID)):
            if line.startswith(REPLY_COAP_NEW):
                return CoapTransport(self, int(line[len(REPLY_COAP_NEW):]))
        raise ModemError("AT+CCOAPNEW returned no context id")

    def coap_close(self, context):
        self.command(CMD_COAP_DELETE % context)

    def coap_send(self, context, pdu):
        """Send one CoAP PDU (at most MAX_SEND_BYTES) through a context."""
        length = len(pdu)
        if length > MAX_SEND_BYTES:
            raise ValueError("CoAP PDU of %d bytes exceeds the %d bytes AT+CCOAPSEND takes" % (length, MAX_SEND_BYTES))
        buf = self._tx
        pos = len(CMD_COAP_SEND)
        buf[:pos] = CMD_COAP_SEND
        pos = _put_decimal(buf, pos, context)
        buf[pos] = 0x2C  # ","
        pos = _put_decimal(buf, pos + 1, length)
        buf[pos] = 0x2C
        buf[pos + 1] = 0x22  # '"'
        pos += 2
        for i in range(length):
            byte = pdu[i]
            buf[pos] = _HEX_DIGITS[byte >> 4]
            buf[pos + 1] = _HEX_DIGITS[byte & 0x0F]
            pos += 2
        buf[pos] = 0x22
        buf[pos + 1] = 0x0D  # "\r"
        pos += 2
        if self.debug:
            print(">>", bytes(buf[:min(pos, 80)]))
        self.uart.write(memoryview(buf)[:pos])
        self.bytes_sent += length
        self._collect(CMD_COAP_SEND, AT_TIMEOUT_MS)

    def coap_receive(self, context, timeout_ms):
        """Return the next datagram of a context, or None after timeout_ms."""
        deadline = time.ticks_add(time.ticks_ms(), timeout_ms)
        while True:
            queue = self._rx_queue
            for i in range(len(queue)):
                if queue[i][0] == context:
                    return queue.pop(i)[1]
            line = self._read_line(deadline)
            if line is None:
                return None
            if line:
                _log.debug("unsolicited line ignored:", line)


def _put_decimal(buf, pos, value):
    digits = b"%d" % value
    buf[pos:pos + len(digits)] = digits
    return pos + len(digits)


class CoapTransport:
    """send/receive of one CoAP context, the transport coap_client.CoapClient expects."""

    def __init__(self, modem, context):
        self.modem = modem
        self.context = context

    def send(self, pdu):
        self.modem.coap_send(self.context, pdu)

    def receive(self, timeout_ms):
        return self.modem.coap_receive(self.context, timeout_ms)

    def close(self):
        self.modem.coap_close(self.context)
