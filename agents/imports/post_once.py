"""A delta's Connect POST, never doubled by a retry (issue 23, item 12).

A POST that fails with a timeout, a dropped connection or a 5xx may still have reached
Norce: the job exists, and a blind retry posts a second one. The ledger would know only
the second, so the gate (one open job per pair) could not wait for the first, and a later
delta could finish before it and be overwritten by its older values. So after a POST
whose outcome is unknown, ``Job/List`` is asked first (as the full import does after a
crash): a job the ledger does not know, newer than the newest job before the POST (so
never an orphan of an earlier crash), with this batch's row count, is adopted as the
batch's job when it is the only one; otherwise the POST is sent again.

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


async def newest_job_id(connect: ConnectClient) -> int | None:
    """The newest job Norce lists now (asked before a POST: a job the POST creates has a
    higher id); None when Norce cannot say, and then no job is ever adopted."""
    try:
        listed = await connect.list_jobs(top=1)
    except NorceError as error:
        log.info("Job/List not read before the POST (%s): a lost answer means a re-POST", error)
        return None
    return max((j.job_id for j in listed), default=0)


async def find_job(
    connect: ConnectClient,
    *,
    above: int | None,
    since: float,
    known: Collection[int],
    item_count: int,
) -> int | None:
    """The one job ``Job/List`` has that is newer than ``above`` (the newest before our
    POST: never an orphan of a worker that crashed earlier), that the ledger does not
    know, started since ``since`` (our POST) and with ``item_count`` rows. None when
    there is no such job, or more than one (another worker's POST of the same size in
    the same moment): then posting again is the safer mistake."""
    if above is None:
        return None
    listed = await connect.list_jobs(top=50)
    candidates = [
        j.job_id
        for j in listed
        if j.job_id > above
        and j.job_id not in known
        and (j.start is None or j.start.timestamp() >= since - SINCE_SLACK_S)
        and j.totals == item_count
    ]
    return candidates[0] if len(candidates) == 1 else None


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
