from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from norce.errors import (
    NorceBadRequest,
    NorceRateLimited,
    NorceRetriesExhausted,
    NorceServerError,
    NorceTimeout,
)
from norce.retry import RetryPolicy, backoff_delay, call_with_retries, next_delay, parse_retry_after


class Fixed:
    """An rng whose uniform() returns a fixed fraction of the interval."""

    def __init__(self, fraction: float) -> None:
        self.fraction = fraction
        self.calls: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.calls.append((a, b))
        return a + (b - a) * self.fraction


def test_backoff_ceiling_doubles_then_caps() -> None:
    rng = Fixed(1.0)
    delays = [backoff_delay(n, 0.5, 5.0, rng) for n in range(6)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert rng.calls[0] == (0.0, 0.5)


def test_backoff_is_full_jitter() -> None:
    assert backoff_delay(3, 1.0, 100.0, Fixed(0.0)) == 0.0
    assert backoff_delay(3, 1.0, 100.0, Fixed(0.25)) == 2.0
    rng = random.Random(7)
    samples = [backoff_delay(2, 1.0, 100.0, rng) for _ in range(500)]
    assert min(samples) >= 0.0
    assert max(samples) <= 4.0
    assert max(samples) > 3.5 and min(samples) < 0.5  # the whole interval is used


def test_backoff_huge_attempt_does_not_overflow() -> None:
    assert backoff_delay(10_000, 0.5, 30.0, Fixed(1.0)) == 30.0
    with pytest.raises(ValueError):
        backoff_delay(-1, 0.5, 30.0, Fixed(1.0))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3", 3.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        ("-4", 0.0),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # in the past: go now
        ("", None),
        (None, None),
        ("soon", None),
        ("nan", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert parse_retry_after(value, now=now) == expected


def test_next_delay_prefers_retry_after_and_respects_limits() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=1.0, max_delay=10.0, max_retry_after=60.0)
    rng = Fixed(1.0)
    assert next_delay(NorceRateLimited("x", retry_after=7.0), 0, policy, rng) == 7.0
    assert next_delay(NorceRateLimited("x"), 1, policy, rng) == 2.0
    assert next_delay(NorceServerError("x"), 0, policy, rng) == 1.0
    assert next_delay(NorceTimeout("x"), 1, policy, rng) == 2.0
    assert next_delay(NorceServerError("x"), 2, policy, rng) is None  # 3 attempts used
    assert next_delay(NorceRateLimited("x", retry_after=61.0), 0, policy, rng) is None
    assert next_delay(NorceBadRequest("x"), 0, policy, rng) is None


def test_policy_validation() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(base_delay=-1)


async def test_call_with_retries_sleeps_then_succeeds() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    outcomes: list[Exception | str] = [
        NorceServerError("503"),
        NorceRateLimited("429", retry_after=2.5),
        "ok",
    ]
    attempts: list[int] = []

    async def op(attempt: int) -> str:
        attempts.append(attempt)
        outcome = outcomes[attempt]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    policy = RetryPolicy(max_attempts=5, base_delay=0.5, max_delay=8.0)
    assert await call_with_retries(op, policy, rng=Fixed(1.0), sleep=sleep) == "ok"
    assert attempts == [0, 1, 2]
    assert slept == [0.5, 2.5]


async def test_call_with_retries_exhausts_and_wraps_last_error() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def op(attempt: int) -> str:
        raise NorceServerError(f"boom {attempt}", status_code=500)

    with pytest.raises(NorceRetriesExhausted) as info:
        await call_with_retries(op, RetryPolicy(max_attempts=3), rng=Fixed(0.5), sleep=sleep)
    assert info.value.attempts == 3
    assert str(info.value.last_error) == "boom 2"
    assert info.value.status_code == 500
    assert slept == [0.25, 0.5]


async def test_non_retryable_errors_propagate_at_once() -> None:
    calls = 0

    async def op(attempt: int) -> str:
        nonlocal calls
        calls += 1
        raise NorceBadRequest("bad", description="Missing AccountId")

    with pytest.raises(NorceBadRequest, match="bad"):
        await call_with_retries(op, RetryPolicy(max_attempts=5), sleep=_no_sleep)
    assert calls == 1


async def test_single_attempt_policy_reraises_the_original() -> None:
    async def op(attempt: int) -> str:
        raise NorceServerError("down")

    with pytest.raises(NorceServerError, match="down"):
        await call_with_retries(op, RetryPolicy(max_attempts=1), sleep=_no_sleep)


async def _no_sleep(seconds: float) -> None:
    raise AssertionError("must not sleep")
