"""The real worker with two test hooks, for the jobs ledger's kill test
(tests/e2e/test_ledger_kill.py, issue 23 item 9). Both are off unless set:

``LEDGER_CHANGELOG_DELAY_S``
    every record to the jobs changelog waits this long before it is handed to aiokafka:
    longer than Faust's ``ProducerBuffer.flush_atmost`` (0.1 s), as a busy loop or a slow
    broker makes it (tests/apps/commit_order_app.py explains why that matters).
``LEDGER_KILL_AFTER_COMMIT``
    SIGKILL the worker as soon as a commit of the job events topic at or past this
    offset succeeded.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

DELAY_S = float(os.environ.get("LEDGER_CHANGELOG_DELAY_S") or 0)
KILL_AT = int(os.environ.get("LEDGER_KILL_AFTER_COMMIT") or 0)
JOB_EVENTS = f"{os.environ['NORCE_SYNC_APP_ID']}-job-events"

_send = faust_aiokafka.Producer.send
_commit = faust_aiokafka.Consumer._commit


async def send(self: Any, topic: str, *args: Any, **kwargs: Any) -> Any:
    if DELAY_S and topic.endswith("-jobs-changelog"):
        await asyncio.sleep(DELAY_S)
    return await _send(self, topic, *args, **kwargs)


async def commit(self: Any, offsets: Any) -> bool:
    done = await _commit(self, offsets)
    mine = [offset for tp, offset in offsets.items() if tp.topic == JOB_EVENTS]
    if done and KILL_AT and mine and max(mine) >= KILL_AT:
        print(f"LEDGER-KILL committed {max(mine)}", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    return bool(done)


faust_aiokafka.Producer.send = send  # type: ignore[method-assign]
faust_aiokafka.Consumer._commit = commit  # type: ignore[method-assign]

if __name__ == "__main__":
    from norce_sync.cli import main

    main()
