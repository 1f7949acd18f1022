"""Garbage-collector settings for a worker that ingests flat out.

CPython's cyclic collector runs a young collection every 700 net allocations of
container objects and, every so often, a full one that walks every tracked object. A
worker holds ~100,000 long-lived objects from start-up (Faust, aiohttp, pydantic
models, its own modules) that never become garbage, and the projection allocates a few
containers per change event: measured in ``bench/bench_ingest.py`` (py-spy, native
frames), the collector took ~20% of the worker's main thread, and each full collection
was a stop-the-world pause of tens of milliseconds that webhook intake waited out.

So, once the worker has started: collect, then freeze what is alive (``gc.freeze``: the
start-up heap moves to a generation the collector never walks), and run young
collections every ``gc_young_threshold`` net allocations instead of 700. Reference
counting still frees almost everything at once; only garbage cycles wait longer, and a
young generation of that size is a few MiB at most.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)


def tune(young_threshold: int) -> None:
    """Freeze the start-up heap and set the young generation's threshold; 0 keeps
    Python's defaults."""
    if young_threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)
    log.info(
        "gc: %d start-up objects frozen, young threshold %d", gc.get_freeze_count(), young_threshold
    )
