# Heap sampling for the shims: every call into the harness reports gc.mem_alloc().
# No collection runs first because none can: in this WebAssembly build
# (MicroPython 1.27, split heap) gc.collect() only marks a collection as pending,
# and the port runs it when control returns to JavaScript, which happens only
# when the boot ends. So the figure counts every byte the firmware allocated since
# main.py started and has not freed, garbage included.
# NOTE: this is an upper bound of the live heap; a firmware that allocates in its
# loops passes the budget here long before it would run out of heap on a Pico.

import gc
import _harness


def sample():
    _harness.heap(gc.mem_alloc())
