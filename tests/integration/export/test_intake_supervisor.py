"""The intake supervisor with stand-in children (small Python scripts, real processes and
pipes, no broker): a child that keeps exiting is restarted with a backoff and one warning
for the whole run of failures; counters reach the registry and lines that are not reports
are ignored without harm; a child that stops reporting is replaced; stop ends a
well-behaved child with SIGTERM and kills one that ignores it, within one deadline for
all; a stop during the backoff returns at once."""

from __future__ import annotations

import asyncio
import logging
import sys
import time

import pytest

from norce_sync.intake_supervisor import IntakeSupervisor
from streams.metrics import Registry
from streams.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="function")]

LOGGER = "norce_sync.intake_supervisor"

# A child that reports as an intake process does; what it does besides is the argument.
CHILD = r"""
import json, signal, sys, time
mode = sys.argv[1]
if mode == "crash":
    sys.exit(1)
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
stopped = False
def on_term(*_):
    global stopped
    stopped = True
if mode != "stubborn":
    signal.signal(signal.SIGTERM, on_term)
def say(message):
    sys.stdout.write(json.dumps(message) + "\n"); sys.stdout.flush()
say({"listening": 1})
if mode == "garbage":
    print("not json", flush=True)
    print("[1, 2]", flush=True)
    say({"counters": "not a mapping"})
n = 0
while not stopped:
    if mode != "silent":
        n += 1
        say({"counters": {"hooks_total": [["A", "200", n]]}})
    time.sleep(0.1)
"""


def supervisor(mode: str, registry: Registry | None = None, **options: float) -> IntakeSupervisor:
    settings = Settings(intake_processes=1, intake_port=1, webhook_ack_timeout_s=0.2)
    return IntakeSupervisor(
        settings,
        registry=registry or Registry(),
        command=(sys.executable, "-c", CHILD, mode),
        **options,  # type: ignore[arg-type]
    )


async def until(check: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def warnings(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(
        1
        for r in caplog.records
        if r.name == LOGGER and r.levelno >= logging.WARNING and text in r.getMessage()
    )


async def test_a_child_that_keeps_exiting_is_restarted_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    keeper = supervisor("crash")
    await keeper.start()
    try:
        await until(lambda: keeper.restarts >= 3)
    finally:
        started = time.monotonic()
        await keeper.stop()  # in its backoff sleep: returns at once
    assert time.monotonic() - started < 3
    assert keeper.listening == 0
    assert warnings(caplog, "exited with code 1") == 1  # the rest are debug lines
    gaps = [r.created for r in caplog.records if "exited with code 1" in r.getMessage()]
    assert gaps[2] - gaps[1] > gaps[1] - gaps[0]  # the backoff grows


async def test_counters_reach_the_registry_and_lines_that_are_not_reports_do_no_harm(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = Registry()
    hooks = registry.counter("hooks_total", "Webhooks.", ["event_type", "code"])
    keeper = supervisor("garbage", registry)
    await keeper.start()
    try:
        await until(lambda: hooks.get(event_type="A", code="200") >= 5)
        assert keeper.listening == 1 and keeper.restarts == 0
    finally:
        await keeper.stop()
    assert warnings(caplog, "not a report") == 2
    assert warnings(caplog, "do not add up") == 1


async def test_a_child_that_stops_reporting_is_replaced(caplog: pytest.LogCaptureFixture) -> None:
    keeper = supervisor("silent", silent_after_s=0.5)
    await keeper.start()
    try:
        await until(lambda: keeper.restarts >= 1)
    finally:
        await keeper.stop()
    assert warnings(caplog, "reported nothing for") >= 1


@pytest.mark.parametrize(("mode", "killed"), [("ok", False), ("stubborn", True)])
async def test_stop_terminates_a_child_and_kills_one_that_ignores_it(
    mode: str, killed: bool, caplog: pytest.LogCaptureFixture
) -> None:
    keeper = supervisor(mode, stop_grace_s=1.0)
    await keeper.start()
    await until(lambda: keeper.listening == 1)
    (proc,) = keeper._procs.values()
    started = time.monotonic()
    await keeper.stop()
    took = time.monotonic() - started
    assert proc.returncode == (-9 if killed else 0)
    assert warnings(caplog, "did not stop") == (1 if killed else 0)
    assert took < 1.2 + 2  # the ack timeout plus the grace, and some slack
    assert keeper.restarts == 0  # a stop is not a failure
