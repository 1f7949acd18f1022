"""Retry with exponential backoff and full jitter, honouring ``Retry-After``.

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


def next_delay(error: NorceError, attempt: int, policy: RetryPolicy, rng: Uniform) -> float | None:
    """Seconds to wait before the next attempt, or None when we should not retry."""
    if not isinstance(error, RETRYABLE):
        return None
    if attempt + 1 >= policy.max_attempts:
        return None
    if isinstance(error, NorceRateLimited) and error.retry_after is not None:
        if error.retry_after > policy.max_retry_after:
            return None
        return error.retry_after
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
    sleep = sleep or asyncio.sleep
    attempt = 0
    while True:
        try:
            return await operation(attempt)
        except NorceError as error:
            delay = next_delay(error, attempt, policy, rng)
            if delay is None:
                if isinstance(error, RETRYABLE) and attempt > 0:
                    raise NorceRetriesExhausted(
                        f"{what} failed after {attempt + 1} attempts: {error}",
                        attempts=attempt + 1,
                        last_error=error,
                    ) from error
                raise
            log.warning(
                "%s failed (attempt %d/%d, %s); retrying in %.2fs",
                what,
                attempt + 1,
                policy.max_attempts,
                type(error).__name__,
                delay,
            )
            await sleep(delay)
            attempt += 1
