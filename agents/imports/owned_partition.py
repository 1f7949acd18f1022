"""An input partition the projector owns: its store, its positions, the values of the
batch in progress and a cache of hot values; and a pending key as the delta submitter
takes it."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from agents.config.sync_config import InputBinding
from agents.imports import projection
from agents.imports.store import PartitionStore
from streams import metrics

log = logging.getLogger(__name__)
# Cached values per owned partition (about 1 KiB each): the hot keys of a partition.
CACHE_MAX = 10_000


@dataclass(slots=True)
class OwnedPartition:
    """An input partition this worker projects, with its store and positions."""

    binding: InputBinding
    input: TopicPartition
    commands: TopicPartition
    state_topic: str
    store: PartitionStore
    next_input: int
    next_commands: int
    # Changed values of the batch in progress: key -> (value, pending since as stored).
    dirty: dict[bytes, tuple[projection.Value, float | None]] = field(default_factory=dict)
    # The values of the checkpoint in flight (the previous batch's ``dirty``): handed to
    # the changelog, not yet in the store. Read before the cache, which may be cleared
    # (bounded), and the store, which holds older values until that checkpoint lands.
    inflight: dict[bytes, tuple[projection.Value, float | None]] = field(default_factory=dict)

    # Values as the store holds them, for keys read or written lately: a hot key's value
    # is not read and decoded from RocksDB again. Values are never mutated in place
    # (every transition builds a new dict), so an entry is the store's value or absent.
    cache: dict[bytes, projection.Value] = field(default_factory=dict)
    # Changes folded into ``dirty`` / ``inflight`` (stale ones included): counted as
    # applied once stored (:meth:`settle`), so "applied" never runs ahead of the store
    # that deltas and the pending count read.
    folded: int = 0
    folded_inflight: int = 0

    def current(self, key: bytes) -> tuple[projection.Value | None, float | None]:
        """The key's value (the batch's newest, else the store's), and its pending time
        as the store holds it."""
        held = self.dirty.get(key)
        if held is not None:
            return held
        held = self.inflight.get(key)
        if held is not None:
            return held[0], held[0].get("p")  # as the store will hold it, first
        value = self.cache.get(key)
        if value is None:
            value = self.store.get(key)
            if value is not None:
                self.remember(key, value)
        return value, None if value is None else value.get("p")

    def remember(self, key: bytes, value: projection.Value) -> None:
        if len(self.cache) >= CACHE_MAX:
            self.cache.clear()  # bounded memory; the hot keys come back quickly
        self.cache[key] = value

    def hand_over(self) -> None:
        """The batch's values go to a checkpoint: in flight until :meth:`settle`."""
        self.inflight = self.dirty
        self.dirty = {}
        self.folded_inflight += self.folded
        self.folded = 0

    def settle(self) -> None:
        """The values in flight are in the store now: cache them, count them applied."""
        if self.folded_inflight:
            binding = self.binding
            metrics.applied_changes.inc(
                self.folded_inflight, source=binding.source, kind=binding.kind
            )
            self.folded_inflight = 0
        cache = self.cache
        inflight = self.inflight
        for key, (value, _) in inflight.items():
            cache[key] = value
        if len(cache) > CACHE_MAX:
            # Bounded memory; the hot keys come back quickly. The batch's own values stay.
            cache.clear()
            cache.update((key, value) for key, (value, _) in inflight.items())
        self.inflight = {}

    def put(
        self,
        key: bytes,
        value: projection.Value,
        stored_since: float | None,
    ) -> None:
        held = self.dirty.get(key)
        self.dirty[key] = (value, held[1] if held is not None else stored_since)


@dataclass(frozen=True, slots=True)
class PendingItem:
    """A pending key as the delta submitter sends it: its current row and version."""

    key: bytes
    version: list[int]
    row: dict[str, Any]
    partition: int
    topic: str


def unusable_store(path: Path, error: Exception) -> Path:
    """Where to rebuild a store that would not open: the same place when it is corrupt
    (removed first), a place of this process's own when another process holds its lock
    (two workers on one data dir: the other may still use it)."""
    # RocksDB: "IO error: While lock file: <path>/LOCK: Resource temporarily unavailable".
    if "lock file" in str(error).lower():
        fallback = path.with_name(f"{path.name}.pid{os.getpid()}")
        log.warning(
            "projection store %s is locked by another process (%s); rebuilding it from "
            "the changelog at %s",
            path,
            error,
            fallback,
        )
        return fallback
    log.warning("projection store %s unusable (%s): rebuilt from its changelog", path, error)
    return path
