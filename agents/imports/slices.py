"""The projection's CPU work in slices, with the event loop running between them (see
:mod:`streams.pacing`): the fold and the checkpoint tick a :class:`Pacer`."""

from __future__ import annotations

import time

from streams.pacing import short_slices, step_back

# The projection's CPU work is cut into slices of about this long, with a yield to the
# event loop in between, so webhook intake and the views answer while ingest runs flat
# out. Checked every YIELD_CHECK records (a clock read per record would cost more).
# 4 ms: under 5 ms of loop per slice, so an order answer (bench_orders_receiver.py)
# waits at most about one slice for each of its steps.
SLICE_S = 0.004
# While an order or a webhook is in flight and the step-back does not wait out its I/O
# (projection_step_back "ready"): the I/O's completion waits about this long for the loop.
URGENT_SLICE_S = 0.001
YIELD_CHECK = 32


class Pacer:
    def __init__(self) -> None:
        self.since = time.perf_counter()

    async def tick(self) -> None:
        now = time.perf_counter()
        if now - self.since > (URGENT_SLICE_S if short_slices() else SLICE_S):
            # While an order or a webhook is in flight, until it is answered (at most
            # streams.pacing.URGENT_MAX_WAIT_S): intake must answer fast.
            await step_back()
            self.since = time.perf_counter()
