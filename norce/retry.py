"""Retry with exponential backoff and full jitter, honouring ``Retry-After`` (tenacity).

Norce throttles (429) and has bad moments (5xx, timeouts). Full jitter spreads the retries
of many workers so they do not come back in lock-step; a server's ``Retry-After`` wins
over our own guess because the server knows when it will have room.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from norce.errors import RETRYABLE, NorceError, NorceRateLimited, NorceRetriesExhausted

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[object]]


class Uniform(Protocol):
    def uniform(self, a: float, b: float) -> float: ...


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try.

    ``max_attempts`` counts the first call too (1 = no retries). ``max_retry_after`` caps
    how long we will wait on a server's ``Retry-After``; a longer demand ends the retries
    so the caller (e.g. the next scheduler tick) can decide instead of blocking.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("delays must be >= 0")


NO_RETRY = RetryPolicy(max_attempts=1)


def backoff_delay(attempt: int, base: float, cap: float, rng: Uniform) -> float:
    """Full jitter: uniform in ``[0, min(cap, base * 2**attempt)]``.

    ``attempt`` is 0 for the wait after the first failure.
    """
    if attempt < 0:
        raise ValueError("attempt must be >= 0")
    # Bound the exponent so huge attempt numbers cannot overflow the float.
    ceiling = min(cap, base * (2 ** min(attempt, 62)))
    return rng.uniform(0.0, ceiling)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None  # NaN is unusable
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT by definition
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def _server_delay(error: BaseException) -> float | None:
    return error.retry_after if isinstance(error, NorceRateLimited) else None


def next_delay(error: NorceError, attempt: int, policy: RetryPolicy, rng: Uniform) -> float | None:
    """Seconds to wait before the next attempt, or None when we should not retry.

    The same decision ``call_with_retries`` makes through tenacity, as one function.
    """
    if not isinstance(error, RETRYABLE) or _give_up(error, attempt + 1, policy):
        return None
    return _delay(error, attempt, policy, rng)


def _give_up(error: BaseException, attempts_made: int, policy: RetryPolicy) -> bool:
    server = _server_delay(error)
    return attempts_made >= policy.max_attempts or (
        server is not None and server > policy.max_retry_after
    )


def _delay(error: BaseException, attempt: int, policy: RetryPolicy, rng: Uniform) -> float:
    # The server's Retry-After wins: it knows when it will have room.
    server = _server_delay(error)
    if server is not None:
        return server
    return backoff_delay(attempt, policy.base_delay, policy.max_delay, rng)


async def call_with_retries(
    operation: Callable[[int], Awaitable[T]],
    policy: RetryPolicy,
    *,
    rng: Uniform | None = None,
    sleep: Sleep | None = None,
    what: str = "Norce call",
) -> T:
    """Run ``operation(attempt)`` until it succeeds or a non-retryable error occurs.

    Non-retryable errors propagate unchanged; when retryable ones use up the policy, the
    last is wrapped in ``NorceRetriesExhausted`` (a single-attempt policy re-raises as is).
    """
    rng = rng or random.Random()

    def error_of(state: RetryCallState) -> BaseException:
        assert state.outcome is not None
        error = state.outcome.exception()
        assert error is not None
        return error

    def stop(state: RetryCallState) -> bool:
        return _give_up(error_of(state), state.attempt_number, policy)

    def wait(state: RetryCallState) -> float:
        return _delay(error_of(state), state.attempt_number - 1, policy, rng)

    def give_up(state: RetryCallState) -> T:
        error = error_of(state)
        if state.attempt_number == 1:  # nothing was retried: the caller sees the error itself
            raise error
        raise NorceRetriesExhausted(
            f"{what} failed after {state.attempt_number} attempts: {error}",
            attempts=state.attempt_number,
            last_error=error,  # type: ignore[arg-type]  # RETRYABLE are NorceErrors
        ) from error

    def log_retry(state: RetryCallState) -> None:
        assert state.next_action is not None
        log.warning(
            "%s failed (attempt %d/%d, %s); retrying in %.2fs",
            what,
            state.attempt_number,
            policy.max_attempts,
            type(error_of(state)).__name__,
            state.next_action.sleep,
        )

    retrying = AsyncRetrying(
        retry=retry_if_exception_type(RETRYABLE),
        stop=stop,
        wait=wait,
        sleep=sleep or asyncio.sleep,
        before_sleep=log_retry,
        retry_error_callback=give_up,
    )
    async for attempt in retrying:
        with attempt:
            result = await operation(attempt.retry_state.attempt_number - 1)
        if attempt.retry_state.outcome is not None and not attempt.retry_state.outcome.failed:
            return result
    raise AssertionError("tenacity ended without an outcome")  # not reached
