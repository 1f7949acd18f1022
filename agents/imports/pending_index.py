"""What the rest of the worker asks the projector: the pending keys of a pair in chunks,
marking keys sent, one key's value, and the backlog per partition. Part of
:class:`agents.imports.projector.Projector`."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

from agents.config.sync_config import InputBinding
from agents.imports import projection
from agents.imports.owned_partition import PendingItem


class PendingIndex:
    """Reads over the projector's owned partitions (under its lock)."""

    def mark_sent(self, items: list[PendingItem]) -> None:
        """Keys Norce accepted at these versions (the JobId is recorded); applied at the
        next checkpoint, ahead of any backlog of input."""
        by_partition: dict[tuple[str, int], list[tuple[bytes, list[int]]]] = {}
        for item in items:
            by_partition.setdefault((item.topic, item.partition), []).append(
                (item.key, item.version)
            )
        for (topic, partition), keys in by_partition.items():
            self._marks.append((topic, partition, keys))

    async def pending_chunks(
        self, binding: InputBinding, size: int
    ) -> AsyncIterator[list[PendingItem]]:
        """This worker's pending keys of the binding with their current rows, at most
        ``size`` at a time (memory holds one chunk, whatever the backlog). Everything
        folded before the call is in it: the projector checkpoints on a budget
        (``checkpoint_budget.py``), so what it folded since is stored first."""
        await self.store_folded()
        prefix = f"{binding.source}|{binding.kind}|".encode()
        for tp in sorted(self.owned):
            after: bytes | None = None
            while True:
                async with self._lock:
                    owned = self.owned.get(tp)
                    if owned is None or owned.binding.pair != binding.pair:
                        break
                    keys = list(itertools.islice(owned.store.pending_keys(prefix, after), size))
                    values = owned.store.get_many(keys)
                if not keys:
                    break
                after = keys[-1]
                yield [
                    PendingItem(key, list(value["v"]), value["row"], tp.partition, tp.topic)
                    for key, value in zip(keys, values, strict=True)
                    if value is not None and projection.is_pending(value)
                ]

    async def lookup(
        self, binding: InputBinding, key: bytes
    ) -> tuple[int, projection.Value] | None:
        """The key's value and input partition, when a partition of the binding that this
        worker owns holds it (the batch in progress included)."""
        async with self._lock:
            for owned in self.owned.values():
                if owned.binding.pair == binding.pair:
                    value, _ = owned.current(key)
                    if value is not None:
                        return owned.input.partition, value
        return None

    def pending_count(self, binding: InputBinding) -> int:
        return sum(o.store.pending for o in self.owned.values() if o.binding.pair == binding.pair)

    def backlog(self) -> dict[int, dict[str, dict[str, float]]]:
        """Pending keys per owned partition number and ``source|kind``, with the oldest
        pending time (for the ops views)."""
        reports: dict[int, dict[str, dict[str, float]]] = {}
        for owned in self.owned.values():
            report = reports.setdefault(owned.input.partition, {})
            pair = f"{owned.binding.source}|{owned.binding.kind}"
            oldest = owned.store.oldest_pending_since()
            truncated = self.truncated.get(pair)
            if owned.store.pending and oldest is not None:
                report[pair] = {"keys": owned.store.pending, "oldest": oldest}
            elif truncated is not None:
                report[pair] = {"keys": 0, "oldest": float("inf")}
            if truncated is not None:
                report[pair]["truncated_at"] = truncated
        return reports
