"""Bulk work that shares the event loop with answers someone waits for (the order
receiver, webhook intake) takes its input in slices, with a yield to the loop between.

``getmany_sliced`` is ``consumer.getmany(max_records=N)`` without its one long
synchronous step: aiokafka decodes every record it returns in one go (5,000 records, a
projection batch, held the loop 10-30 ms, and several times that on a busy host, so every
order answer in flight waited). Here the records come ``slice_records`` at a time, the
first call waiting up to ``timeout_ms`` as before, the rest taking only what is already
fetched; between slices the loop runs (:func:`step_back`). The batch is the same: per
partition in offset order, at most ``max_records`` records.

:func:`step_back` is the pause between slices of bulk CPU work (the projection's fold,
its checkpoint): a plain yield, or while an urgent request is in flight (an order, a
webhook; ``streams.priority``), a wait until its ready steps have run (``ready``, the
default) or until it is answered (``answered``), at most ``URGENT_MAX_WAIT_S``: each step
of the request then runs at once, not behind the next slice, and a stream of requests
that never stops still leaves the bulk work a slice every ``URGENT_MAX_WAIT_S``.
"""

from __future__ import annotations

from typing import Any

from aiokafka import ConsumerRecord, TopicPartition

from streams import priority

SLICE_RECORDS = 500
URGENT_SLICE_RECORDS = 100
# The longest a slice of bulk work waits for urgent requests to be answered.
URGENT_MAX_WAIT_S = 0.010


_STEP_BACKS = {"answered": priority.step_back, "ready": priority.step_back_ready}
_step_back = priority.step_back_ready  # the projection_step_back setting (use())


def use(mode: str) -> None:
    """How the bulk work steps back while a request is in flight (the worker's
    ``projection_step_back``; one worker, one setting)."""
    global _step_back
    _step_back = _STEP_BACKS[mode]


def short_slices() -> bool:
    """Whether bulk work slices shorter now: a request is in flight and the step-back
    does not wait out its I/O (``ready``), so the I/O's completion waits for a slice."""
    return _step_back is priority.step_back_ready and priority.urgent_in_flight()


async def step_back() -> None:
    await _step_back(URGENT_MAX_WAIT_S)


async def before_long_step() -> None:
    """Before a step that holds the loop for milliseconds and cannot be sliced (a store's
    write): with ``ready``, wait until no request is in flight (at most
    ``URGENT_MAX_WAIT_S``), as ``answered`` does between every slice (and did just
    before this step)."""
    if _step_back is priority.step_back_ready:
        await priority.step_back(URGENT_MAX_WAIT_S)


async def getmany_sliced(
    consumer: Any, *, timeout_ms: int, max_records: int, slice_records: int = SLICE_RECORDS
) -> dict[TopicPartition, list[ConsumerRecord]]:
    batch: dict[TopicPartition, list[ConsumerRecord]] = await consumer.getmany(
        timeout_ms=timeout_ms, max_records=min(slice_records, max_records)
    )
    taken = sum(len(records) for records in batch.values())
    if batch:  # the caller's work on the batch starts with a fresh slice
        await step_back()
    while batch and taken < max_records:
        # Smaller while a request waits for I/O (``ready``): its answer lands behind one.
        size = URGENT_SLICE_RECORDS if short_slices() else slice_records
        wanted = min(size, max_records - taken)
        more = await consumer.getmany(timeout_ms=0, max_records=wanted)
        if not more:
            break
        for tp, records in more.items():
            batch.setdefault(tp, []).extend(records)
            taken += len(records)
        await step_back()
    return batch
