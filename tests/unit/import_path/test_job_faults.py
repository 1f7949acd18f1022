"""One job's failure never stops the job tracker (issue 23, item 6): recorded once on
that job, the other jobs go on; Norce refusing us marks Norce down instead."""

from __future__ import annotations

from agents.imports.job_faults import JobFaults
from norce.errors import NorceAuthError
from streams.messages import JobEvent, JobLog
from streams.outage import Dependency


async def test_a_failing_job_is_recorded_once_and_the_others_go_on() -> None:
    recorded: list[JobEvent] = []

    async def record(event: JobEvent) -> None:
        recorded.append(event)

    faults = JobFaults(record, Dependency("Norce"))
    polled: list[str] = []

    async def renamed_source() -> None:
        raise KeyError("erp-old")  # clients.for_source of a source renamed meanwhile

    async def poll(batch_id: str) -> None:
        polled.append(batch_id)

    for _tick in range(3):
        assert not await faults.run("b-gone", renamed_source)
        assert await faults.run("b-ok", lambda: poll("b-ok"))
    assert polled == ["b-ok"] * 3
    assert len(recorded) == 1 and isinstance(recorded[0], JobLog)
    assert recorded[0].batch_id == "b-gone" and "KeyError" in recorded[0].errors[0]


async def test_a_ledger_that_cannot_be_written_is_tried_again_next_tick() -> None:
    attempts = 0

    async def record(event: JobEvent) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("broker away")

    async def invalid() -> None:
        raise ValueError("1 validation error for Job")

    faults = JobFaults(record, Dependency("Norce"))
    await faults.run("b1", invalid)
    await faults.run("b1", invalid)
    await faults.run("b1", invalid)
    assert attempts == 2  # failed once, recorded once, then remembered


async def test_norce_refusing_us_is_no_jobs_fault() -> None:
    recorded: list[JobEvent] = []

    async def record(event: JobEvent) -> None:
        recorded.append(event)

    norce = Dependency("Norce")

    async def refused() -> None:
        raise NorceAuthError("Norce answered 401")

    faults = JobFaults(record, norce)
    assert not await faults.run("b1", refused)
    assert recorded == [] and norce.is_down
    faults.forget_all_but([])
    assert faults.noted == set()
