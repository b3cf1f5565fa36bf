"""CBOR (RFC 8949) encoder and decoder for the subset the OTA protocol uses.

Supported: unsigned and negative integers, byte strings, text strings, arrays,
maps, false, true and null, all with definite lengths. Anything else (floats,
tags, indefinite lengths, reserved additional-info values, trailing bytes) is
rejected with ValueError, so a malformed server response never reaches the updater.
"""
from micropython import const
import struct

_MAJOR_UINT = const(0)
_MAJOR_NINT = const(1)
_MAJOR_BYTES = const(2)
_MAJOR_TEXT = const(3)
_MAJOR_ARRAY = const(4)
_MAJOR_MAP = const(5)
_MAJOR_TAG = const(6)
_MAJOR_SIMPLE = const(7)

# Simple values (RFC 8949 section 3.3).
_SIMPLE_FALSE = const(20)
_SIMPLE_TRUE = const(21)
_SIMPLE_NULL = const(22)

# Nesting limit: protocol maps are flat, so a deep structure is an attack or a bug.
MAX_DEPTH = const(8)


def _head(out, major, value):
    if value < 24:
        out.append((major << 5) | value)
    elif value < 0x100:
        out.append((major << 5) | 24)
        out.append(value)
    elif value < 0x10000:
        out.append((major << 5) | 25)
        out.extend(struct.pack(">H", value))
    elif value < 0x100000000:
        out.append((major << 5) | 26)
        out.extend(struct.pack(">I", value))
    elif value < 0x10000000000000000:
        out.append((major << 5) | 27)
        out.extend(struct.pack(">Q", value))
    else:
        raise ValueError("integer %d does not fit in 64 bits" % value)


def _encode_into(out, value):
    if value is None:
        out.append((_MAJOR_SIMPLE << 5) | _SIMPLE_NULL)
    elif value is True:
        out.append((_MAJOR_SIMPLE << 5) | _SIMPLE_TRUE)
    elif value is False:
        out.append((_MAJOR_SIMPLE << 5) | _SIMPLE_FALSE)
    elif isinstance(value, int):
        if value >= 0:
            _head(out, _MAJOR_UINT, value)
        else:
            _head(out, _MAJOR_NINT, -1 - value)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        _head(out, _MAJOR_BYTES, len(value))
        out.extend(value)
    elif isinstance(value, str):
        data = value.encode()
        _head(out, _MAJOR_TEXT, len(data))
        out.extend(data)
    elif isinstance(value, (list, tuple)):
        _head(out, _MAJOR_ARRAY, len(value))
        for item in value:
            _encode_into(out, item)
    elif isinstance(value, dict):
        # MicroPython dicts have no insertion order, so keys are sorted by their
        # encoded bytes (RFC 8949 section 4.2.1) to make the output deterministic.
        _head(out, _MAJOR_MAP, len(value))
        keys = []
        for key in value:
            encoded = bytearray()
            _encode_into(encoded, key)
            keys.append((bytes(encoded), key))
        keys.sort()
        for encoded, key in keys:
            out.extend(encoded)
            _encode_into(out, value[key])
    else:
        raise ValueError("cannot encode %s as CBOR: use int, bytes, str, list, dict, bool or None" % type(value))


def encode(value):
    """Encode a value as CBOR and return the bytes."""
    out = bytearray()
    _encode_into(out, value)
    return bytes(out)


class _Reader:
    def __init__(self, data):
        self.data = memoryview(data)
        self.pos = 0

    def take(self, count):
        end = self.pos + count
        if end > len(self.data):
            raise ValueError("CBOR truncated: %d bytes needed at offset %d, %d left" % (count, self.pos, len(self.data) - self.pos))
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def argument(self, info):
        if info < 24:
            return info
        if info == 24:
            return self.take(1)[0]
        if info == 25:
            return struct.unpack(">H", self.take(2))[0]
        if info == 26:
            return struct.unpack(">I", self.take(4))[0]
        if info == 27:
            return struct.unpack(">Q", self.take(8))[0]
        # 28..30 are reserved, 31 is an indefinite length (RFC 8949 section 3).
        raise ValueError("CBOR additional info %d at offset %d is reserved or indefinite: not supported" % (info, self.pos - 1))

    def item(self, depth):
        if depth > MAX_DEPTH:
            raise ValueError("CBOR nested deeper than %d levels" % MAX_DEPTH)
        initial = self.take(1)[0]
        major = initial >> 5
        info = initial & 0x1F
        if major == _MAJOR_SIMPLE:
            if info == _SIMPLE_FALSE:
                return False
            if info == _SIMPLE_TRUE:
                return True
            if info == _SIMPLE_NULL:
                return None
            raise ValueError("CBOR simple value or float 0x%02x at offset %d is not supported" % (initial, self.pos - 1))
        if major == _MAJOR_TAG:
            raise ValueError("CBOR tag at offset %d is not supported" % (self.pos - 1))

        value = self.argument(info)
        if major == _MAJOR_UINT:
            return value
        if major == _MAJOR_NINT:
            return -1 - value
        if major == _MAJOR_BYTES:
            return bytes(self.take(value))
        if major == _MAJOR_TEXT:
            raw = self.take(value)
            try:
                return str(raw, "utf-8")
            except UnicodeError:
                raise ValueError("CBOR text at offset %d is not valid UTF-8" % (self.pos - value))

        if major == _MAJOR_ARRAY:
            self._check_count(value)
            return [self.item(depth + 1) for _ in range(value)]
        self._check_count(value)
        result = {}
        for _ in range(value):
            key = self.item(depth + 1)
            if not isinstance(key, (int, str)):
                raise ValueError("CBOR map key %r is neither an integer nor text" % (key,))
            result[key] = self.item(depth + 1)
        return result

    def _check_count(self, count):
        # Every element takes at least one byte, so a count beyond what is left is a lie.
        if count > len(self.data) - self.pos:
            raise ValueError("CBOR container announces %d items but only %d bytes are left" % (count, len(self.data) - self.pos))


def decode(data):
    """Decode exactly one CBOR item from data; raise ValueError on malformed input."""
    reader = _Reader(data)
    value = reader.item(0)
    if reader.pos != len(reader.data):
        raise ValueError("CBOR item ends at offset %d but %d bytes follow" % (reader.pos, len(reader.data) - reader.pos))
    return value
