"""A flood of one warning becomes: the first line, a summary per window, one "cleared"."""

from __future__ import annotations

import logging

import pytest

from streams.logging import RepeatFilter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def setup() -> tuple[logging.Logger, list[str], RepeatFilter, Clock]:
    clock = Clock()
    repeats = RepeatFilter(window_s=10.0, clock=clock)
    repeats._sweeper = object()  # type: ignore[assignment]  # the test sweeps itself
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(f"{record.name} {record.levelname} {record.getMessage()}")

    handler = Collect()
    handler.addFilter(repeats)
    root = logging.getLogger("test_log_repeats")
    root.handlers, root.propagate, root.level = [handler], False, logging.INFO
    cleared = logging.getLogger(RepeatFilter.SELF)
    cleared.addHandler(handler)
    yield root, lines, repeats, clock
    cleared.removeHandler(handler)


def test_an_outage_of_30s_is_a_handful_of_lines(setup) -> None:  # type: ignore[no-untyped-def]
    log, lines, repeats, clock = setup
    for tick in range(300):  # ten errors a second for 30 s
        clock.now = 1000.0 + tick / 10
        log.error("Unable to connect to node with id %s: %s", 1, "refused")
        log.info("heartbeat %d", tick)  # below WARNING: untouched
    assert [line for line in lines if "heartbeat" not in line] == [
        "test_log_repeats ERROR Unable to connect to node with id 1: refused",
        "test_log_repeats ERROR [repeated 100 times in the last 10s, for 10s so far] "
        "Unable to connect to node with id 1: refused",
        "test_log_repeats ERROR [repeated 100 times in the last 10s, for 20s so far] "
        "Unable to connect to node with id 1: refused",
    ]
    assert sum("heartbeat" in line for line in lines) == 300
    clock.now += 5
    repeats.sweep()
    assert not any("cleared" in line for line in lines)  # not quiet for a window yet
    clock.now += 5
    repeats.sweep()
    assert lines[-1] == (
        "norce_sync.log_repeats WARNING cleared after 30s (299 repeats): "
        "[test_log_repeats] ERROR Unable to connect to node with id 1: refused"
    )
    log.error("Unable to connect to node with id %s: %s", 1, "refused")
    assert lines[-1] == "test_log_repeats ERROR Unable to connect to node with id 1: refused"


def test_a_warning_that_never_repeats_says_nothing_more(setup) -> None:  # type: ignore[no-untyped-def]
    log, lines, repeats, clock = setup
    log.warning("once %s", "only")
    log.warning("another %s", "template")
    clock.now += 60
    repeats.sweep()
    assert lines == [
        "test_log_repeats WARNING once only",
        "test_log_repeats WARNING another template",
    ]
