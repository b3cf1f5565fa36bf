"""Streaming unpack of a release bundle into a slot folder with bounded RAM.

Format (src/protocol/bundle.ts): "PB" 0x01, then entries of nameLength (uint8,
1..64), name (UTF-8 relative path), size (uint32 big-endian), data, then a zero
name length. Names are checked exactly like bundleNameProblem() on the server.
"""
from micropython import const
import binascii
import os
import struct
from ota_proto import BUNDLE_MAGIC, MAX_NAME_BYTES

CHUNK_BYTES = const(512)
# zlib window of the publisher (ota-tool deflates with windowBits 10, 1 KiB);
# 0 lets DeflateIO take it from the zlib header (RFC 1950 section 2.2).
_WBITS_FROM_HEADER = const(0)


def name_problem(name):
    """Return why name cannot be unpacked, or None; mirrors bundleNameProblem()."""
    if not 1 <= len(name) <= MAX_NAME_BYTES:
        return "file name %r must be 1..%d bytes, got %d" % (name, MAX_NAME_BYTES, len(name))
    segment_length = 0
    dots = 0
    for byte in name:
        if byte == 0x2F:  # "/"
            if segment_length == 0 or dots == segment_length and dots <= 2:
                return _segment_problem(name, segment_length)
            segment_length = 0
            dots = 0
            continue
        allowed = (0x30 <= byte <= 0x39 or 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A
                   or byte == 0x2E or byte == 0x5F or byte == 0x2D)
        if not allowed:
            return "file name %r must be a relative path of letters, digits, \".\", \"_\", \"-\" and \"/\"" % (name,)
        segment_length += 1
        if byte == 0x2E:
            dots += 1
    if segment_length == 0 or dots == segment_length and dots <= 2:
        return _segment_problem(name, segment_length)
    return None


def _segment_problem(name, segment_length):
    if segment_length == 0:
        return "file name %r must be a relative path of letters, digits, \".\", \"_\", \"-\" and \"/\"" % (name,)
    return "file name %r must not contain \".\" or \"..\" segments" % (name,)


def _read_exact(stream, buf, count):
    """Fill buf[:count] from stream; DeflateIO may return short reads mid-stream."""
    view = memoryview(buf)
    got = 0
    while got < count:
        n = stream.readinto(view[got:count])
        if not n:
            raise ValueError("bundle truncated: %d of %d bytes read" % (got, count))
        got += n


def _copy(stream, out, buf, size, idle):
    """Copy size bytes; a whole-buffer chunk is passed as buf itself, so the
    loop allocates no memoryview slice per chunk."""
    view = memoryview(buf)
    left = size
    while left:
        if idle:
            idle()
        count = min(left, len(buf))
        got = stream.readinto(buf if count == len(buf) else view[:count])
        if not got:
            raise ValueError("bundle truncated: %d bytes of a file missing" % left)
        if got < count:
            _read_exact(stream, view[got:], count - got)
        out.write(buf if count == len(buf) else view[:count])
        left -= count


def _make_parents(folder, name):
    path = folder
    parts = name.split("/")
    for part in parts[:-1]:
        path += "/" + part
        try:
            os.mkdir(path)
        except OSError:
            pass  # the folder exists already


def unpack(stream, folder, deflated=False, buf=None, idle=None):
    """Unpack the bundle read from stream into folder; return the list of names.

    With deflated=True the stream is a zlib stream and is inflated while read.
    buf is an optional reusable bytearray of at least 64 bytes. idle() runs before
    every chunk, so the caller can feed the watchdog on a slow flash. Raises ValueError
    on a malformed bundle; files already written stay (the caller clears the slot).
    """
    if deflated:
        import deflate
        stream = deflate.DeflateIO(stream, deflate.ZLIB, _WBITS_FROM_HEADER)
    if buf is None:
        buf = bytearray(CHUNK_BYTES)
    view = memoryview(buf)
    _read_exact(stream, buf, 3)
    if bytes(view[:3]) != BUNDLE_MAGIC:
        raise ValueError("not a release bundle: the first 3 bytes must be 50 42 01, got %s" % binascii.hexlify(bytes(view[:3])).decode())
    names = []
    while True:
        _read_exact(stream, buf, 1)
        name_length = buf[0]
        if name_length == 0:
            break
        _read_exact(stream, buf, name_length + 4)
        raw_name = bytes(view[:name_length])
        problem = name_problem(raw_name)
        if problem:
            raise ValueError(problem)
        name = raw_name.decode()
        if name in names:
            raise ValueError("file name %r appears twice in the bundle" % name)
        size = struct.unpack_from(">I", buf, name_length)[0]
        _make_parents(folder, name)
        with open(folder + "/" + name, "wb") as out:
            _copy(stream, out, buf, size, idle)
        names.append(name)
    if stream.read(1):
        raise ValueError("bundle has bytes after the end marker")
    return names
