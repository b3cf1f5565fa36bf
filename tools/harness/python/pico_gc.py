# gc module of the simulated Pico (installed as gc). Its figures are the
# firmware's: gc.mem_alloc() counts from the start of main.py, like the
# heapHighWater figure of the harness, and gc.mem_free() is what remains of the
# heap budget, where the build's own gc would report over 100 MB free.

import _harness
from pico_heap import sample as _sample

# The build's own gc module: imported before the harness puts this module in
# sys.modules under the name gc.
import gc as _builtin_gc

enable = _builtin_gc.enable
disable = _builtin_gc.disable
isenabled = _builtin_gc.isenabled
threshold = _builtin_gc.threshold


def collect():
    # A no-op until the boot ends in this build (see pico_heap); kept for the API.
    _sample()
    _builtin_gc.collect()
    return None


def mem_alloc():
    return max(0, _builtin_gc.mem_alloc() - _harness.harness_heap_bytes())


def mem_free():
    return max(0, _harness.heap_budget_bytes() - mem_alloc())
