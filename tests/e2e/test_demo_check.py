"""The README's `make demo`, unattended: `tools/demo.sh --check` starts a broker of its own
with an empty data directory (as on a fresh machine), the simulator and a worker, writes the
demo's change data, and exits 0 only when every delta job and the full import are tracked
to `succeeded` (CLI and dashboard views) and both example targets got records
(tools/demo_check.py). Here so `make test` and CI run it and its report shows it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.broker import ROOT

# Each of the check's waits has its own deadline (DEMO_CHECK_TIMEOUT, 180 s); this bounds
# the whole run only when something hangs outside them.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]


def test_demo_check_passes_on_a_fresh_broker(tmp_path: Path) -> None:
    log = tmp_path / "demo-check.log"
    env = {**os.environ, "DEMO_PYTHON": sys.executable, "TMPDIR": str(tmp_path)}
    with log.open("wb") as out:
        # Its own session: on a timeout or Ctrl-C the whole demo gets SIGTERM, and the
        # script's trap stops the worker, the simulator and the broker.
        proc = subprocess.Popen(
            [str(ROOT / "tools" / "demo.sh"), "--check"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            status = proc.wait(timeout=1500)
        except BaseException:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=120)
            raise
    output = log.read_text(errors="replace")
    print(output)  # pytest shows it with a failure
    failed = [line for line in output.splitlines() if "[demo-check] FAILED" in line]
    assert status == 0, failed[0] if failed else f"tools/demo.sh --check exited {status}"
    assert "[demo-check] PASSED" in output
