"""Worker processes for integration and end-to-end tests.

A :class:`WorkerProcess` runs ``python -m <module> worker`` with its own environment and
web port, waits for ``/ready``, and stops it with SIGTERM (clean) or SIGKILL (crash).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.broker import ROOT, free_port

# The group session timeout of workers a test kills: a restarted worker (or the survivor)
# gets the dead member's partitions once its session expires, so the shorter the sooner.
# 6 s is the broker's smallest (group.min.session.timeout.ms); heartbeats go every 3 s.
SESSION_TIMEOUT_S = "6"

# Every worker started during the current test (tests/support/worker_logs.py clears it
# before each test and prints each one's log tail when the test fails).
STARTED: list[WorkerProcess] = []


class WorkerProcess:
    def __init__(self, module: str, env: dict[str, str], log_path: Path) -> None:
        self.module = module
        self.port = free_port()
        self.env = {
            **os.environ,
            **env,
            "NORCE_SYNC_WEB_PORT": str(self.port),
            "PYTHONUNBUFFERED": "1",
        }
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, ready_timeout: float = 90.0) -> WorkerProcess:
        if self not in STARTED:
            STARTED.append(self)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, "worker", "-l", "info"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.wait_ready(ready_timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}: {self.tail()}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"worker not ready in {timeout}s: {self.tail()}")

    def stop(self, *, timeout: float = 60.0) -> int:
        """SIGTERM and wait: Faust commits offsets and flushes on the way out."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed or committed."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def children(self) -> set[int]:
        """The worker's child processes (its intake processes)."""
        assert self.proc is not None
        return child_pids(self.proc.pid)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def child_pids(pid: int) -> set[int]:
    """The children of process ``pid`` (none once it is gone)."""
    found: set[int] = set()
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found |= {int(c) for c in (task / "children").read_text().split()}
    return found
