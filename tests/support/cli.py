"""Runs the ``norce-sync`` command line as a user does, in a child process."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.broker import ROOT


def norce_sync(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "norce_sync", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
