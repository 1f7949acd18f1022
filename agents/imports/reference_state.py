"""The worker's reference checks: one cache and one record of waiting rows, shared by the
delta submitter, the full import and the re-check (``agents.imports.reference_watch``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from agents.config.runtime import NorceClients
from agents.config.sync_config import InputBinding
from agents.imports.owned_partition import PendingItem
from agents.imports.references import (
    Lookups,
    PairWaiting,
    ReferenceCache,
    Waiting,
    one_ahead,
    references_of,
    refers,
)
from streams import metrics
from streams.settings import Settings


class ReferenceChecks:
    def __init__(self, settings: Settings, clients: NorceClients) -> None:
        self.settings = settings
        self.clients = clients
        self.cache = ReferenceCache(
            settings.reference_found_ttl_s, settings.reference_missing_ttl_s
        )
        self.waiting = Waiting()

    def lookups(self, source: str, *, fresh: bool = False) -> Lookups:
        """A session for one delta or full import of ``source`` (its Norce account asks)."""
        return Lookups(
            self.clients.for_source(source).query,
            self.cache,
            group_size=self.settings.reference_group_size,
            max_url=self.settings.reference_max_url,
            concurrency=self.settings.reference_concurrency,
            fresh=fresh,
        )

    async def split_pending(
        self,
        binding: InputBinding,
        items: Sequence[PendingItem],
        session: Lookups,
        report: PairWaiting,
    ) -> list[PendingItem]:
        """The items whose references all exist; the others are noted in ``report`` and
        stay pending (they are simply not sent)."""
        if not refers(binding.kind) or not items:
            return list(items)
        calls = session.query_calls
        reasons = await session.missing(binding.kind, [item.row for item in items])
        metrics.norce_calls.inc(session.query_calls - calls, api="query", outcome="ok")
        ready = []
        for item, why in zip(items, reasons, strict=True):
            if why is None:
                ready.append(item)
            else:
                refs = [
                    r for r in references_of(binding.kind, item.row) if not session.known.get(r)
                ]
                self.waiting.add(report, item.key.decode(), why, refs, item.partition)
        return ready

    def checked_chunks(
        self,
        binding: InputBinding,
        chunks: AsyncIterator[list[PendingItem]],
        session: Lookups,
        report: PairWaiting,
    ) -> AsyncIterator[list[PendingItem]]:
        """Each chunk's items whose references exist, in order, the next chunk's lookups
        running while the caller POSTs (``references.one_ahead``; close it when leaving)."""
        return one_ahead(chunks, lambda chunk: self.split_pending(binding, chunk, session, report))
