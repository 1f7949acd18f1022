"""``python -m tests.support.faulty_worker worker``: the service's command line with the
faults the environment asks for injected at :mod:`streams.fault_points` (the worker
itself never imports this module):

- ``TEST_CRASH_IN_CHECKPOINT`` = ``after_produce`` | ``after_store``, with
  ``TEST_CRASH_AT_CHECKPOINT`` = N (default 1): SIGKILL inside the N-th projection
  checkpoint that carried changes, at that step;
- ``TEST_CRASH_AFTER_POST`` = ``true``: SIGKILL right after a delta's or full import's
  POST was answered, before its JobId is recorded."""

from __future__ import annotations

import logging
import os
import signal

from norce_sync.cli import main
from streams import fault_points

log = logging.getLogger(__name__)


def _sigkill(why: str) -> None:
    log.warning("fault injected (%s): SIGKILL now", why)
    os.kill(os.getpid(), signal.SIGKILL)


def install_from_environment() -> None:
    point = os.environ.get("TEST_CRASH_IN_CHECKPOINT", "none")
    if point != "none":
        at = int(os.environ.get("TEST_CRASH_AT_CHECKPOINT", "1"))
        done = [0]  # checkpoints with changes completed so far

        def at_step() -> None:
            if done[0] + 1 >= at:
                _sigkill(f"checkpoint {done[0] + 1}, {point}")

        def after_store() -> None:
            if point == "after_store":
                at_step()
            done[0] += 1

        if point == "after_produce":
            fault_points.inject("checkpoint.after_produce", at_step)
        elif point != "after_store":
            raise SystemExit(f"TEST_CRASH_IN_CHECKPOINT={point!r}: after_produce|after_store")
        fault_points.inject("checkpoint.after_store", after_store)
    if os.environ.get("TEST_CRASH_AFTER_POST", "").lower() == "true":
        fault_points.inject("import.after_post", lambda: _sigkill("after a POST"))


if __name__ == "__main__":
    install_from_environment()
    main()
