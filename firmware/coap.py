"""CoAP message codec (RFC 7252 section 3) and Block2 values (RFC 7959 section 2.2).

Only the byte format: no message ids, retransmission or matching; that is
coap_client.py. Malformed messages raise ValueError, because RFC 7252 section 4.2
requires a message format error to be rejected, never guessed at.
"""
from micropython import const

VERSION = const(1)

# Message types (RFC 7252 section 3).
TYPE_CON = const(0)
TYPE_NON = const(1)
TYPE_ACK = const(2)
TYPE_RST = const(3)

# Codes as class * 32 + detail (RFC 7252 section 12.1).
EMPTY = const(0)
GET = const(1)
POST = const(2)
PUT = const(3)
DELETE = const(4)
CREATED = const(65)  # 2.01
CHANGED = const(68)  # 2.04
VALID = const(67)  # 2.03
CONTENT = const(69)  # 2.05
BAD_REQUEST = const(128)  # 4.00
BAD_OPTION = const(130)  # 4.02
NOT_FOUND = const(132)  # 4.04
REQUEST_ENTITY_INCOMPLETE = const(136)  # 4.08
REQUEST_ENTITY_TOO_LARGE = const(141)  # 4.13
SERVICE_UNAVAILABLE = const(163)  # 5.03

# Option numbers (RFC 7252 section 12.2, RFC 7959 section 7.2).
OPT_IF_MATCH = const(1)
OPT_URI_HOST = const(3)
OPT_ETAG = const(4)
OPT_IF_NONE_MATCH = const(5)
OPT_OBSERVE = const(6)
OPT_URI_PORT = const(7)
OPT_LOCATION_PATH = const(8)
OPT_URI_PATH = const(11)
OPT_CONTENT_FORMAT = const(12)
OPT_MAX_AGE = const(14)
OPT_URI_QUERY = const(15)
OPT_ACCEPT = const(17)
OPT_LOCATION_QUERY = const(20)
OPT_BLOCK2 = const(23)
OPT_BLOCK1 = const(27)
OPT_SIZE2 = const(28)
OPT_PROXY_URI = const(35)
OPT_PROXY_SCHEME = const(39)
OPT_SIZE1 = const(60)

PAYLOAD_MARKER = const(0xFF)
MAX_TOKEN_BYTES = const(8)
HEADER_BYTES = const(4)

# Block sizes are 2 ** (SZX + 4) bytes; SZX 7 is reserved (RFC 7959 section 2.2).
MAX_SZX = const(6)


def code_string(code):
    """Format a code as "c.dd" for logs and errors."""
    return "%d.%02d" % (code >> 5, code & 0x1F)


class Message:
    """One decoded CoAP message; option values and payload are memoryviews into the input."""

    def __init__(self, mtype, code, mid, token, options, payload):
        self.mtype = mtype
        self.code = code
        self.mid = mid
        self.token = token
        self.options = options
        self.payload = payload

    def option(self, number):
        """Return the first value of an option, or None when absent."""
        for opt_number, value in self.options:
            if opt_number == number:
                return value
        return None

    def uint_option(self, number):
        """Return an option decoded as uint, or None when absent."""
        value = self.option(number)
        return None if value is None else decode_uint(value)


def encode_uint(value):
    """Encode an option uint in the fewest bytes, 0 as empty (RFC 7252 section 3.2)."""
    if value < 0:
        raise ValueError("option uint must be >= 0, got %d" % value)
    length = 0
    while value >> (8 * length):
        length += 1
    out = bytearray(length)
    for i in range(length):
        out[length - 1 - i] = (value >> (8 * i)) & 0xFF
    return bytes(out)


def decode_uint(data):
    value = 0
    for byte in data:
        value = (value << 8) | byte
    return value


def _nibble(value):
    if value < 13:
        return value, 0
    if value < 269:
        return 13, 1
    if value < 65805:
        return 14, 2
    raise ValueError("option delta or length %d exceeds 65804" % value)


def _put_extended(buf, pos, nibble, value):
    if nibble == 13:
        buf[pos] = value - 13
        return pos + 1
    if nibble == 14:
        value -= 269
        buf[pos] = value >> 8
        buf[pos + 1] = value & 0xFF
        return pos + 2
    return pos


def encode_into(buf, mtype, code, mid, token=b"", options=(), payload=None):
    """Encode a message into the bytearray buf and return its length.

    options is a sequence of (number, value bytes) in non-decreasing number
    order; repeated options (Uri-Path segments) keep the order given.
    """
    if len(token) > MAX_TOKEN_BYTES:
        raise ValueError("token is %d bytes, at most 8 allowed" % len(token))
    if not 0 <= mid <= 0xFFFF:
        raise ValueError("message id %d outside 0..65535" % mid)
    buf[0] = (VERSION << 6) | (mtype << 4) | len(token)
    buf[1] = code
    buf[2] = mid >> 8
    buf[3] = mid & 0xFF
    pos = HEADER_BYTES
    buf[pos:pos + len(token)] = token
    pos += len(token)
    previous = 0
    for number, value in options:
        if number < previous:
            raise ValueError("option %d after option %d: pass options sorted by number" % (number, previous))
        delta_nibble, _ = _nibble(number - previous)
        length_nibble, _ = _nibble(len(value))
        buf[pos] = (delta_nibble << 4) | length_nibble
        pos = _put_extended(buf, pos + 1, delta_nibble, number - previous)
        pos = _put_extended(buf, pos, length_nibble, len(value))
        buf[pos:pos + len(value)] = value
        pos += len(value)
        previous = number
    if payload:
        buf[pos] = PAYLOAD_MARKER
        buf[pos + 1:pos + 1 + len(payload)] = payload
        pos += 1 + len(payload)
    return pos


def encode(mtype, code, mid, token=b"", options=(), payload=None):
    """Encode a message and return new bytes (for tests and rare messages)."""
    size = HEADER_BYTES + len(token) + 1 + (len(payload) if payload else 0)
    for _, value in options:
        size += 5 + len(value)
    buf = bytearray(size)
    return bytes(buf[:encode_into(buf, mtype, code, mid, token, options, payload)])


def _read_extended(data, pos, nibble):
    if nibble < 13:
        return nibble, pos
    if nibble == 13:
        if pos >= len(data):
            raise ValueError("CoAP option truncated in its extended delta or length")
        return data[pos] + 13, pos + 1
    if nibble == 14:
        if pos + 1 >= len(data):
            raise ValueError("CoAP option truncated in its extended delta or length")
        return ((data[pos] << 8) | data[pos + 1]) + 269, pos + 2
    raise ValueError("CoAP option nibble 15 is reserved (RFC 7252 section 3.1)")


def decode(data):
    """Decode a whole datagram into a Message; raise ValueError on a format error."""
    data = memoryview(data)
    if len(data) < HEADER_BYTES:
        raise ValueError("CoAP message is %d bytes, the header alone needs 4" % len(data))
    first = data[0]
    if first >> 6 != VERSION:
        raise ValueError("CoAP version %d, expected 1" % (first >> 6))
    mtype = (first >> 4) & 0x03
    token_length = first & 0x0F
    if token_length > MAX_TOKEN_BYTES:
        raise ValueError("CoAP token length %d is reserved, at most 8 allowed" % token_length)
    code = data[1]
    mid = (data[2] << 8) | data[3]
    if code == EMPTY and len(data) != HEADER_BYTES:
        raise ValueError("empty CoAP message carries %d bytes after the header" % (len(data) - HEADER_BYTES))

    pos = HEADER_BYTES + token_length
    if pos > len(data):
        raise ValueError("CoAP message truncated in its %d-byte token" % token_length)
    token = bytes(data[HEADER_BYTES:pos])

    options = []
    number = 0
    payload = data[len(data):]
    while pos < len(data):
        byte = data[pos]
        if byte == PAYLOAD_MARKER:
            if pos + 1 == len(data):
                raise ValueError("CoAP payload marker without a payload (RFC 7252 section 3)")
            payload = data[pos + 1:]
            break
        delta, pos = _read_extended(data, pos + 1, byte >> 4)
        length, pos = _read_extended(data, pos, byte & 0x0F)
        number += delta
        if pos + length > len(data):
            raise ValueError("CoAP option %d announces %d bytes, %d left" % (number, length, len(data) - pos))
        options.append((number, data[pos:pos + length]))
        pos += length
    return Message(mtype, code, mid, token, options, payload)


def block_value(num, more, szx):
    """Pack a Block1/Block2 option value: NUM << 4 | M << 3 | SZX."""
    if not 0 <= szx <= MAX_SZX:
        raise ValueError("SZX %d outside 0..6 (7 is reserved)" % szx)
    if not 0 <= num < (1 << 20):
        raise ValueError("block number %d outside 0..1048575" % num)
    return (num << 4) | (8 if more else 0) | szx


def parse_block(value):
    """Unpack a Block option uint into (num, more, szx); raise ValueError on SZX 7."""
    szx = value & 0x07
    if szx == 7:
        raise ValueError("SZX 7 is reserved (RFC 7959 section 2.2)")
    return value >> 4, bool(value & 0x08), szx


def block_size(szx):
    return 16 << szx


def szx_for(size_bytes):
    """Return the largest SZX whose block size fits in size_bytes (16..1024)."""
    if size_bytes < 16:
        raise ValueError("block size %d below the minimum 16 bytes" % size_bytes)
    szx = 0
    while szx < MAX_SZX and (32 << szx) <= size_bytes:
        szx += 1
    return szx
