"""A failing test that ran a worker shows the worker's log tail in pytest's output (the
tests/support/worker_logs.py plugin), so a CI failure is diagnosable from CI's output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.broker import ROOT

INNER = """
from tests.support.worker import STARTED, WorkerProcess


def test_fails_after_starting_a_worker(tmp_path):
    log = tmp_path / "worker.log"
    log.write_text("".join(f"early line {n}\\n" for n in range(100)) + "THE LAST WORDS\\n")
    STARTED.append(WorkerProcess("norce_sync", {}, log))  # as WorkerProcess.start() does
    assert False, "the scenario failed"


def test_passes_after_starting_a_worker(tmp_path):
    log = tmp_path / "quiet.log"
    log.write_text("A PASSING WORKER\\n")
    STARTED.append(WorkerProcess("norce_sync", {}, log))
"""


def test_a_failed_test_prints_the_tail_of_its_workers_logs(tmp_path: Path) -> None:
    (tmp_path / "test_inner.py").write_text(INNER)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.support.worker_logs",
         "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path / "test_inner.py")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 1, run.stdout + run.stderr  # one failed, one passed
    out = run.stdout
    assert "1 failed, 1 passed" in out, out
    assert "worker log tail:" in out and "THE LAST WORDS" in out, out
    assert "early line 99" in out and "early line 10\n" not in out  # the tail, not all of it
    assert "A PASSING WORKER" not in out  # only the failed test's workers
