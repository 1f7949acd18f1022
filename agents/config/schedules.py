"""Schedules of the sync config (cron expressions and intervals) and the runtime's
record of when each pair's schedule is due next (:class:`DueTimes`)."""

from __future__ import annotations

import calendar
import math
import re
from datetime import UTC, datetime
from typing import Any

from croniter import CroniterBadCronError, CroniterBadDateError, croniter
from pydantic import (
    GetCoreSchemaHandler,
)
from pydantic_core import core_schema

# --- schedules ---------------------------------------------------------------------------

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}
_WEEKDAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
# (name, low, high, names)
_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _WEEKDAYS),
)


# croniter computes the ticks; these checks only exist to name the bad field and value in a
# config error (croniter says "out of range" for the whole line), and to refuse what
# croniter accepts but a 5-field config must not: seconds/year columns, backwards ranges.
def _check_value(text: str, field: str, low: int, high: int, names: dict[str, int]) -> int:
    value = names.get(text.lower()) if names else None
    if value is None:
        if not text.isdigit():
            raise ValueError(f"bad {field} value {text!r}")
        value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{field} value {value} is outside {low}-{high}")
    return value


def _check_field(text: str, field: str, low: int, high: int, names: dict[str, int]) -> None:
    for part in text.split(","):
        body, slash, step = part.partition("/")
        if slash and (not step.isdigit() or int(step) == 0):
            raise ValueError(f"bad step in {field} {part!r}")
        if body == "*":
            continue
        a, dash, b = body.partition("-")
        start = _check_value(a, field, low, high, names)
        if dash and start > _check_value(b, field, low, high, names):
            raise ValueError(f"{field} range {body!r} runs backwards")


class Cron:
    """A 5-field cron expression (minute hour day-of-month month day-of-week), in UTC.

    Numbers, ``*``, lists, ranges, steps, month and weekday names; 0 and 7 are Sunday. As in
    Vixie cron, when both day fields are restricted a day matches if either matches.
    """

    __slots__ = ("expression", "text")

    def __init__(self, text: str) -> None:
        self.text = text.strip()
        self.expression = _MACROS.get(self.text.lower(), self.text)
        parts = self.expression.split()
        if len(parts) != 5:
            raise ValueError(f"cron {text!r} needs 5 fields, has {len(parts)}")
        for part, spec in zip(parts, _FIELDS, strict=True):
            _check_field(part, *spec)
        try:
            croniter(self.expression)
        except CroniterBadCronError as error:  # whatever the field checks above let through
            raise ValueError(f"cron {text!r}: {error}") from None
        self.next_after(0.0)  # fails for dates that never come, like "0 0 30 2 *"

    def next_after(self, ts: float) -> float:
        """The first matching minute strictly after ``ts`` (epoch seconds)."""
        start = datetime.fromtimestamp(ts, UTC)
        try:
            # day_or: Vixie cron's "either day field" rule when both are restricted.
            return float(croniter(self.expression, start, day_or=True).get_next(float))
        except CroniterBadDateError:
            raise ValueError(f"cron {self.text!r} never fires") from None

    def __repr__(self) -> str:
        return f"Cron({self.text!r})"


_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


class Schedule:
    """An interval or a cron; ``next_after(ts)`` gives the next tick strictly after ``ts``.

    In a config model it validates from a string (or a number of seconds) and serializes
    back to its text.
    """

    __slots__ = ("cron", "interval", "text")

    def __init__(self, text: str | float) -> None:
        self.text = str(text).strip()
        self.interval: float | None = None
        self.cron: Cron | None = None
        if isinstance(text, int | float) and not isinstance(text, bool):
            self.interval = float(text)
        elif self.text.startswith("@") or len(self.text.split()) > 1:
            self.cron = Cron(self.text)
        else:
            match = _INTERVAL.match(self.text)
            if not match:
                raise ValueError(
                    f"schedule {self.text!r} is neither an interval like '30s'/'5m'/'1h' "
                    "nor a 5-field cron like '0 */6 * * *'"
                )
            self.interval = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        if self.interval is not None and not (self.interval > 0 and math.isfinite(self.interval)):
            raise ValueError(f"schedule interval must be positive, got {self.text!r}")

    def next_after(self, ts: float) -> float:
        if self.interval is not None:
            return (math.floor(ts / self.interval) + 1) * self.interval
        assert self.cron is not None
        return self.cron.next_after(ts)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Schedule({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schedule) and self.text == other.text

    def __hash__(self) -> int:
        return hash(self.text)

    @classmethod
    def _validate(cls, value: Any) -> Schedule:
        if isinstance(value, Schedule):
            return value
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(f"schedule must be a string, got {type(value).__name__}")
        return cls(value)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._validate,
            serialization=core_schema.plain_serializer_function_ser_schema(str),
        )


class DueTimes:
    """When each (source, kind)'s schedule fires next, counted from this process's first
    look: the one bookkeeping of the delta and full-import timers."""

    def __init__(self) -> None:
        self._next: dict[tuple[str, str], float] = {}

    def take(
        self, pair: tuple[str, str], schedule: Schedule, now: float, *, busy: bool = False
    ) -> bool:
        """True when the pair is due (and not ``busy``): its next tick is then counted from
        ``now``. A busy pair stays due, so it runs as soon as it is free."""
        due = self._next.setdefault(pair, schedule.next_after(now))
        if now < due or busy:
            return False
        self._next[pair] = schedule.next_after(now)
        return True


# --- sources -----------------------------------------------------------------------------
