"""The shared outage rule (streams.outage): wait out a service that does not answer or
refuses us, one line at each end; the record's own fault propagates at once."""

from __future__ import annotations

import logging

import pytest

from norce.errors import (
    NorceAuthError,
    NorceBadRequest,
    NorceNotFound,
    NorceRetriesExhausted,
    NorceServerError,
    NorceTimeout,
    is_outage,
)
from streams.outage import Dependency, Stopping, wait_out


def test_norce_errors_are_an_outage_only_when_norce_is_not_answering_us() -> None:
    assert is_outage(NorceAuthError("401"))
    assert is_outage(NorceServerError("503"))
    assert is_outage(NorceTimeout("timed out"))
    exhausted = NorceRetriesExhausted("x", attempts=3, last_error=NorceServerError("502"))
    assert is_outage(exhausted)
    assert not is_outage(NorceNotFound("404"))
    assert not is_outage(NorceBadRequest("400"))
    assert not is_outage(KeyError("x"))


async def test_an_outage_is_waited_out_with_one_line_at_each_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dependency = Dependency("Norce")
    failures = 4

    async def call() -> str:
        nonlocal failures
        if failures:
            failures -= 1
            raise NorceAuthError("Norce answered 401: Unknown client or wrong secret.")
        return "ok"

    with caplog.at_level(logging.INFO, logger="streams.outage"):
        answer = await wait_out(
            call, dependency, is_outage=is_outage, stopping=lambda: False, min_delay=0.001
        )
    assert answer == "ok" and not dependency.is_down and dependency.outages == 1
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert "Norce unavailable" in lines[0] and "401" in lines[0]
    assert "Norce answers again" in lines[1]


async def test_the_records_own_fault_propagates_and_stopping_ends_the_wait() -> None:
    dependency = Dependency("Norce")

    async def not_found() -> None:
        raise NorceNotFound("404")

    with pytest.raises(NorceNotFound):
        await wait_out(not_found, dependency, is_outage=is_outage, stopping=lambda: False)
    assert not dependency.is_down

    async def down() -> None:
        raise NorceServerError("503")

    with pytest.raises(Stopping):
        await wait_out(down, dependency, is_outage=is_outage, stopping=lambda: True)
    assert dependency.is_down and "503" in dependency.view()["reason"]
