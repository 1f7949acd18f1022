"""post_once: a POST with an unknown outcome asks Job/List before posting again."""

from __future__ import annotations

import pytest

from agents.imports.post_once import Adopted, find_job, newest_job_id, post_once
from norce.errors import NorceBadRequest, NorceRateLimited, NorceServerError, NorceTimeout
from norce.jobs import Job, JobResponse

OK = JobResponse.model_validate({"JobId": "7"})


async def no_sleep(_: float) -> None:
    return None


def poster(*errors: Exception):  # type: ignore[no-untyped-def]
    calls: list[int] = []

    async def post() -> JobResponse:
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return OK

    return post, calls


async def test_a_lost_answer_adopts_the_job_norce_has() -> None:
    post, calls = poster(NorceTimeout("timed out"))

    async def find() -> int | None:
        return 41

    assert await post_once(post, find, sleep=no_sleep) == Adopted(41)
    assert len(calls) == 1  # never posted again


async def test_no_job_found_posts_again_and_429_never_asks() -> None:
    asked: list[int] = []

    async def find() -> int | None:
        asked.append(1)
        return None

    post, calls = poster(NorceServerError("502"), NorceRateLimited("429", retry_after=0.0))
    assert await post_once(post, find, sleep=no_sleep) is OK
    assert len(calls) == 3 and len(asked) == 1


async def test_a_refused_post_is_the_callers() -> None:
    post, calls = poster(NorceBadRequest("400"))

    async def find() -> int | None:
        raise AssertionError("a 400 made no job: nothing to look for")

    with pytest.raises(NorceBadRequest):
        await post_once(post, find, sleep=no_sleep)
    assert len(calls) == 1


class Listing:
    def __init__(self, *jobs: tuple[int, int]) -> None:  # (JobId, Totals), newest first
        self.jobs = [Job.model_validate({"JobId": i, "StatusId": 6, "Totals": t}) for i, t in jobs]

    async def list_jobs(self, *, top: int | None = None) -> list[Job]:
        return self.jobs[:top]


async def test_only_one_new_job_of_the_batchs_size_is_adopted() -> None:
    # 5: an orphan of a crashed worker (older than our POST), 7: another size, 8: ours
    connect = Listing((8, 400), (7, 12), (5, 400))
    kw = {"since": 0.0, "known": set(), "item_count": 400}
    assert await find_job(connect, above=6, **kw) == 8  # type: ignore[arg-type]
    assert await find_job(connect, above=4, **kw) is None  # type: ignore[arg-type]  # 5 and 8
    assert await find_job(connect, above=None, **kw) is None  # type: ignore[arg-type]
    assert await find_job(connect, above=6, **{**kw, "known": {8}}) is None  # type: ignore[arg-type]
    assert await newest_job_id(connect) == 8  # type: ignore[arg-type]
