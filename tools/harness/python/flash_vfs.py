# The simulated Pico's flash filesystem: a MicroPython user VFS (the object protocol
# that os.mount() accepts) whose files live on the Node.js main thread, so they
# survive reboots and power cuts. The main thread models littlefs durability:
# written data counts only after flush() or close().

import gc
import io
import json
import uctypes
import _harness
from pico_heap import sample as _sample

_S_IFDIR = 0x4000
_S_IFREG = 0x8000

# MicroPython stream ioctl requests (py/stream.h).
_IOCTL_FLUSH = 1
_IOCTL_CLOSE = 4
_EINVAL = 22

# Bytes one harness reply can carry.
_DATA_CAPACITY = _harness.DATA_CAPACITY


def _check(result):
    if isinstance(result, int) and result < 0:
        raise OSError(-result)
    return result


def _take(k):
    # The reply is copied to a scratch area outside the GC heap, so the only
    # allocation is the bytes object that the rp2 port would allocate too.
    _harness.stage(k)
    return bytes(uctypes.bytearray_at(_harness.SCRATCH_ADDRESS, k))


class FlashFile(io.IOBase):
    def __init__(self, handle, text):
        self._handle = handle
        self._text = text
        self._closed = False

    def _decode(self, data):
        return str(data, "utf-8") if self._text else data

    def readinto(self, buf):
        view = memoryview(buf)
        total = 0
        while total < len(view):
            _sample()
            k = _check(_harness.fs_read(self._handle, min(len(view) - total, _DATA_CAPACITY)))
            if k == 0:
                break
            _harness.take(uctypes.addressof(view[total:]), k)
            total += k
        return total

    def read(self, size=-1):
        parts = []
        remaining = -1 if size is None or size < 0 else size
        while remaining != 0:
            want = _DATA_CAPACITY if remaining < 0 else min(remaining, _DATA_CAPACITY)
            _sample()
            k = _check(_harness.fs_read(self._handle, want))
            if k == 0:
                break
            parts.append(_take(k))
            if remaining > 0:
                remaining -= k
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        return self._decode(data)

    def readline(self, size=-1):
        limit = 0x7FFFFFFF if size is None or size < 0 else size
        _sample()
        return self._decode(_take(_check(_harness.fs_readline(self._handle, limit))))

    def readlines(self):
        lines = []
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def write(self, buf):
        if isinstance(buf, str):
            buf = buf.encode()
        n = len(buf)
        if n == 0:
            return 0
        _sample()
        return _check(_harness.fs_write(self._handle, uctypes.addressof(buf), n))

    def seek(self, offset, whence=0):
        _sample()
        return _check(_harness.fs_seek(self._handle, offset, whence))

    def tell(self):
        return self.seek(0, 1)

    def flush(self):
        _sample()
        _check(_harness.fs_flush(self._handle))

    def close(self):
        if self._closed:
            return
        self._closed = True
        _sample()
        _check(_harness.fs_close(self._handle))

    def ioctl(self, request, arg):
        if request == _IOCTL_FLUSH:
            self.flush()
            return 0
        if request == _IOCTL_CLOSE:
            self.close()
            return 0
        return -_EINVAL

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class FlashVfs:
    def __init__(self):
        self._cwd = "/"

    def _abs(self, path):
        if path.startswith("/"):
            return path
        return self._cwd.rstrip("/") + "/" + path

    def mount(self, readonly, mkfs):
        pass

    def umount(self):
        pass

    def open(self, path, mode):
        _sample()
        handle = _check(_harness.fs_open(self._abs(path), mode))
        return FlashFile(handle, "b" not in mode)

    def chdir(self, path):
        target = self._abs(path)
        if self.stat(target)[0] != _S_IFDIR:
            raise OSError(20)
        _sample()
        self._cwd = json.loads(_harness.fs_normalize(target))

    def getcwd(self):
        return self._cwd

    def ilistdir(self, path):
        _sample()
        entries = json.loads(_check(_harness.fs_ilistdir(self._abs(path))))
        for name, kind, size in entries:
            yield (name, kind, 0, size)

    def mkdir(self, path):
        _sample()
        _check(_harness.fs_mkdir(self._abs(path)))

    def rmdir(self, path):
        _sample()
        _check(_harness.fs_rmdir(self._abs(path)))

    def remove(self, path):
        _sample()
        _check(_harness.fs_remove(self._abs(path)))

    def rename(self, old_path, new_path):
        _sample()
        _check(_harness.fs_rename(self._abs(old_path), self._abs(new_path)))

    def stat(self, path):
        _sample()
        return tuple(json.loads(_check(_harness.fs_stat(self._abs(path)))))

    def statvfs(self, path):
        _sample()
        return tuple(json.loads(_harness.fs_statvfs()))
