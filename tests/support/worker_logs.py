"""A pytest plugin (loaded by tests/conftest.py): when a test fails, its report carries
the log tail of every worker process it started, so a CI failure can be diagnosed from
CI's output alone. It covers every helper that starts a :class:`WorkerProcess`
(``import_worker``, the export and orders helpers, tests that start workers themselves)."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

from tests.support import worker

TAIL_LINES = 60


def log_tails(lines: int = TAIL_LINES) -> list[tuple[str, str]]:
    """(section title, tail) per log file of the workers started in this test; workers
    that share a log file (a restart) show it once."""
    sections: list[tuple[str, str]] = []
    seen: set[Path] = set()
    for started in worker.STARTED:
        if started.log_path in seen:
            continue
        seen.add(started.log_path)
        title = f"worker log tail: {started.log_path} (last {lines} lines)"
        sections.append((title, started.tail(lines) or "(empty)"))
    return sections


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    worker.STARTED.clear()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed:
        for title, text in log_tails():
            report.sections.append((title, text))
