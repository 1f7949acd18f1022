"""A delta's Connect POST, never doubled by a retry (issue 23, item 12).

A POST that fails with a timeout, a dropped connection or a 5xx may still have reached
Norce: the job exists, and a blind retry posts a second one. The ledger would know only
the second, so the gate (one open job per pair) could not wait for the first, and a later
delta could finish before it and be overwritten by its older values. So after a POST
whose outcome is unknown, ``Job/List`` is asked first (as the full import does after a
crash): a job the ledger does not know, posted since the intent, with this batch's row
count, is adopted as the batch's job; only when there is none is the POST sent again.

A 429 or a 401/403/400 never created a job: 429 is retried after its wait, the others
are the caller's (the keys stay pending).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass

from norce.connect import ConnectClient
from norce.errors import (
    NorceError,
    NorceRateLimited,
    NorceRetriesExhausted,
    NorceServerError,
    NorceTransportError,
)
from norce.jobs import JobResponse

log = logging.getLogger(__name__)

SINCE_SLACK_S = 60.0  # clock skew between us and Norce's job start times


def outcome_unknown(error: NorceError) -> bool:
    """True when the POST may have created a job although it failed."""
    if isinstance(error, NorceRetriesExhausted):
        error = error.last_error
    return isinstance(error, NorceServerError | NorceTransportError)


@dataclass(frozen=True)
class Adopted:
    """No answer, but ``Job/List`` shows the job this POST created."""

    job_id: int


async def find_job(
    connect: ConnectClient, *, since: float, known: Collection[int], item_count: int
) -> int | None:
    """The first job ``Job/List`` has that the ledger does not know, posted since
    ``since`` (epoch seconds, our intent) with ``item_count`` rows; None when there is
    none."""
    listed = await connect.list_jobs(top=50)
    candidates = [
        j
        for j in listed
        if j.job_id not in known
        and (j.start is None or j.start.timestamp() >= since - SINCE_SLACK_S)
        and (not j.totals or j.totals == item_count)
    ]
    return min((j.job_id for j in candidates), default=None)


async def post_once(
    post: Callable[[], Awaitable[JobResponse]],
    find: Callable[[], Awaitable[int | None]],
    *,
    attempts: int = 5,
    base_delay: float = 0.5,
    max_delay: float = 30.0,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> JobResponse | Adopted:
    """``post()`` (one HTTP attempt each) until it answers; after an unknown outcome,
    ``find()`` first. Raises the last error when every attempt failed."""
    delay = base_delay
    for attempt in range(1, attempts + 1):
        try:
            return await post()
        except NorceRateLimited as error:  # refused before any job was made
            if attempt == attempts:
                raise
            wait = error.retry_after if error.retry_after is not None else delay
        except NorceError as error:
            if not outcome_unknown(error):
                raise
            job_id = await find()
            if job_id is not None:
                log.warning("POST failed (%s) but Norce has its job %s: adopted", error, job_id)
                return Adopted(job_id)
            if attempt == attempts:
                raise
            wait = random.uniform(0, delay)  # full jitter, as norce.retry
        await sleep(wait)
        delay = min(delay * 2, max_delay)
    raise AssertionError("not reached")
