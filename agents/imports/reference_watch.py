"""Releasing rows that wait for a reference: the delta of their pair runs as soon as a
reference they wait for exists, found in one of two ways:

- a job that creates references succeeded (``product`` creates SKUs, ``pricelist``
  price lists; any source's job, seen in this worker's mirror of the jobs ledger): the
  negative answers of that reference kind are dropped and the waiting references looked
  up again;
- every ``reference_recheck_s``, the missing references of every pair with waiting rows
  are looked up again (an entity created outside this service, e.g. in Norce's admin).

Only when a lookup finds one of them does the pair's delta run off-schedule; otherwise
the rows keep waiting for the pair's next scheduled delta, which checks them as well.
"""

from __future__ import annotations

import logging

from agents.config.sync_config import SyncConfig
from agents.imports.delta import DeltaSubmitter
from agents.imports.ledger import JobLedger
from agents.imports.reference_state import ReferenceChecks
from agents.imports.references import CREATED_BY, Reference
from norce.errors import NorceError
from streams import metrics

log = logging.getLogger(__name__)


class ReferenceWatch:
    """The two timers' bodies (``delta_tick_s`` and ``reference_recheck_s``)."""

    def __init__(
        self,
        config: SyncConfig,
        jobs: JobLedger,
        references: ReferenceChecks,
        delta: DeltaSubmitter,
    ) -> None:
        self.config = config
        self.jobs = jobs
        self.references = references
        self.delta = delta
        self._seen: set[str] | None = None  # batch ids of creating jobs seen succeeded

    async def release_on_created(self) -> None:
        """A product or price list job succeeded: release what waits for its kind."""
        done = {
            r.batch_id: CREATED_BY[r.kind]
            for r in self.jobs.records()
            if r.kind in CREATED_BY and r.status == "succeeded"
        }
        if self._seen is None:  # jobs finished before start-up: the first delta checks anyway
            self._seen = set(done)
            return
        created = {ref for batch_id, ref in done.items() if batch_id not in self._seen}
        self._seen = set(done)
        for ref in created:
            self.references.cache.forget_missing(ref)
            for pair in self.references.waiting.waiting_on(ref):
                await self._release(pair, only=ref, why="a job that creates them succeeded")

    async def recheck_waiting(self) -> None:
        for pair in list(self.references.waiting.pairs):
            await self._release(pair, only=None, why="re-check")

    async def _release(self, pair: tuple[str, str], *, only: Reference | None, why: str) -> None:
        report = self.references.waiting.pairs.get(pair)
        if report is None:
            return
        refs = [r for r in report.missing if only is None or r[0] == only]
        session = self.references.lookups(pair[0], fresh=True)
        try:
            await session.resolve(refs)
        except NorceError as error:
            metrics.norce_calls.inc(api="query", outcome="error")
            log.warning("references of %s|%s not re-checked: %s", *pair, error)
            return
        metrics.norce_calls.inc(session.query_calls, api="query", outcome="ok")
        found = sum(1 for r in refs if session.known.get(r))
        if found:
            log.info(
                "%s|%s: %d reference(s) now in Norce (%s): running its delta", *pair, found, why
            )
            self.delta.run_now(self.config.binding_for(*pair))
