"""One job's failure never stops the job tracker (issue 23, item 6).

The tracker works through every open job on each tick. Whatever one job's step raises
(a ``KeyError`` from a source renamed while its job was open, a Kafka error, a
validation error, a Norce answer it cannot use) is caught here, recorded on that job
(a ``log`` event: the ledger and ``/jobs/<id>`` show it) and the tracker goes on with
the next job; the step is tried again on the next tick. The same failure of the same job
is recorded once, not on every tick. Norce not answering us (``norce.errors.is_outage``)
is no job's fault: it marks the Norce dependency down (one warning per outage) and
nothing is recorded on the job.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from norce.errors import is_outage
from streams.messages import JobEvent, JobLog
from streams.outage import NORCE, Dependency

log = logging.getLogger(__name__)

MAX_NOTED = 10_000  # (job, failure) pairs remembered as recorded; bounded


class JobFaults:
    def __init__(
        self,
        record_event: Callable[[JobEvent], Awaitable[None]],
        norce: Dependency = NORCE,
    ) -> None:
        self._record_event = record_event
        self._norce = norce
        self.noted: set[tuple[str, str]] = set()  # (batch id, failure) recorded already
        self.failures = 0

    async def run(self, batch_id: str, step: Callable[[], Awaitable[object]]) -> bool:
        """Run one job's step; False when it failed (recorded, or an outage)."""
        try:
            await step()
            return True
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self.failures += 1
            if is_outage(error):
                self._norce.failed(f"{type(error).__name__}: {error}")
                return False
            await self._note(batch_id, error)
            return False

    async def _note(self, batch_id: str, error: Exception) -> None:
        what = f"tracker: {type(error).__name__}: {error}"[:1000]
        key = (batch_id, what)
        if key in self.noted:
            return
        log.warning("job %s: %s (recorded on the job; the tracker goes on)", batch_id, what)
        try:
            await self._record_event(JobLog(batch_id=batch_id, errors=[what]))
        except Exception as failed:  # the ledger itself may be away: tried again next tick
            log.warning("job %s: failure not recorded (%s)", batch_id, failed)
            return
        if len(self.noted) >= MAX_NOTED:
            self.noted.clear()
        self.noted.add(key)

    def forget_all_but(self, batch_ids: Iterable[str]) -> None:
        """Keep only the notes of jobs still in the ledger (bounded by the ledger)."""
        live = set(batch_ids)
        self.noted = {n for n in self.noted if n[0] in live}
