"""Keep Python's cyclic garbage collector off the service's long-lived heap.

The service holds a large, stable heap (plant configuration, detection models of every sensor,
the open compliance days) and allocates many short-lived containers per reading, so survivors
keep triggering full collections that traverse all of it: measured in the benchmark's latency
run (1 000 sensors), collections of 60–155 ms, several in the first seconds at 25 % load,
which set the p99 publish → scored latency. ``gc.freeze()`` moves what is alive into a
permanent generation that later collections skip. It is done where the long-lived state has
just been built (the service has started; the first batch has loaded the open days), after a
full collection, so only live objects are frozen; frozen objects are still freed when their
last reference goes (reference counting), only cycles among them would stay.
"""

from __future__ import annotations

import gc
import time

import structlog

log = structlog.get_logger(__name__)


def freeze_heap(moment: str) -> int:
    """Collect, then freeze what survived; returns the number of frozen objects."""
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info(
        "heap frozen",
        moment=moment,
        objects=frozen,
        seconds=round(time.perf_counter() - started, 3),
    )
    return frozen
