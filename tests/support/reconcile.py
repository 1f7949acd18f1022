"""``norce-sync reconcile --json`` against a running test worker, and its outcome classes,
for the reconcile tests on the real broker and the simulator."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import orjson

from tests.support.broker import ROOT

# The classes a reconcile result counts its keys in.
CLASSES = ("matching", "different", "missing", "absent", "unwritable", "pending")


async def reconcile_cli(worker: Any, *args: str) -> Any:
    """(the parsed JSON output, stderr) of ``norce-sync reconcile --json *args`` run with
    ``worker``'s environment; fails the test on a non-zero exit."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "norce_sync", "reconcile", "--json", *args),
        cwd=ROOT,
        env=worker.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, stderr.decode()[-2000:]
    return orjson.loads(stdout), stderr.decode()


def classes(result: dict[str, Any]) -> dict[str, int]:
    """A reconcile result's count per class."""
    return {name: result[name] for name in CLASSES}
