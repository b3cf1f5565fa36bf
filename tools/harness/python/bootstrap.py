# Boot sequence of the simulated Pico, run once per boot in a fresh interpreter:
# install the shim modules (outside the board's filesystem, ahead of the built-ins
# in sys.modules), mount the flash filesystem at /, then run boot.py and main.py
# the way the rp2 port does, including the REPL-style traceback on an exception.

import gc
import io
import os
import sys
import _harness

gc.collect()
_heap_before_shims = gc.mem_alloc()

# The shims are imported from the interpreter's own (Emscripten) filesystem, which
# is then unmounted: they stay reachable only through sys.modules, where import
# looks first, so they shadow the built-in time module and never appear on flash.
sys.path.insert(0, _harness.SHIM_DIR)
import pico_heap  # noqa: E402
import pico_time  # noqa: E402
import pico_gc  # noqa: E402
import machine  # noqa: E402
import flash_vfs  # noqa: E402

sys.path.remove(_harness.SHIM_DIR)
sys.modules["time"] = pico_time
sys.modules["utime"] = pico_time
sys.modules["umachine"] = machine
sys.modules["gc"] = pico_gc
for _name in ("pico_heap", "pico_time", "pico_gc", "flash_vfs"):
    del sys.modules[_name]
_flash = flash_vfs.FlashVfs()
del pico_heap, pico_time, pico_gc, machine, flash_vfs, _name

os.umount("/")
os.mount(_flash, "/")
os.chdir("/")


def _print_traceback(exc):
    # Drop the frames of this boot sequence and of the shims, which a Pico does not
    # have (its machine and time modules are C code).
    text = io.StringIO()
    sys.print_exception(exc, text)
    for line in text.getvalue().split("\n"):
        if line and '"<stdin>"' not in line and '"' + _harness.SHIM_DIR not in line:
            print(line)


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _run_boot():
    for name in ("boot.py", "main.py"):
        if _exists(name):
            execfile(name, {"__name__": "__main__"})


# The firmware's heap is counted from here: on a Pico the free heap when main.py
# starts is the budget, and everything allocated so far is the harness's own.
gc.collect()
# In step mode the boot ends here. The worker reports the start once this returns and
# the collection requested above has run; SimulatedPico.exec() then runs code at this
# top level.
if not _harness.STEPS:
    _harness.started(gc.mem_alloc() - _heap_before_shims, gc.mem_alloc())
    try:
        _run_boot()
        _ending = "returned"
    except SystemExit:
        _ending = "soft-reboot"
    except BaseException as _exc:  # noqa: B902 -- a Pico's REPL reports every exception
        _print_traceback(_exc)
        _ending = "exception"
        del _exc
    if _ending != "soft-reboot":
        print("MicroPython v1.27.0 on 2025-12-10; Raspberry Pi Pico with RP2040 (simulated)")
        print('Type "help()" for more information.')
    _harness.ended(_ending)
