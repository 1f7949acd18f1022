"""The worker's reference checks: one cache and one record of waiting rows, shared by the
delta submitter, the full import and the re-check (``agents.imports.reference_watch``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TypeVar

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
from agents.imports.submit import clients
from streams import metrics
from streams.main import settings

cache = ReferenceCache(settings.reference_found_ttl_s, settings.reference_missing_ttl_s)
waiting = Waiting()

T = TypeVar("T")


def lookups(source: str, *, fresh: bool = False) -> Lookups:
    """A session for one delta or full import of ``source`` (its Norce account asks)."""
    return Lookups(
        clients.for_source(source).query,
        cache,
        group_size=settings.reference_group_size,
        max_url=settings.reference_max_url,
        concurrency=settings.reference_concurrency,
        fresh=fresh,
    )


async def split_pending(
    binding: InputBinding, items: Sequence[PendingItem], session: Lookups, report: PairWaiting
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
            refs = [r for r in references_of(binding.kind, item.row) if not session.known.get(r)]
            waiting.add(report, item.key.decode(), why, refs, item.partition)
    return ready


def checked_chunks(
    binding: InputBinding,
    chunks: AsyncIterator[list[PendingItem]],
    session: Lookups,
    report: PairWaiting,
) -> AsyncIterator[list[PendingItem]]:
    """Each chunk's items whose references exist, in order, the next chunk's lookups
    running while the caller POSTs (``references.one_ahead``; close it when leaving)."""
    return one_ahead(chunks, lambda chunk: split_pending(binding, chunk, session, report))
