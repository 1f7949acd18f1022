"""Opening an assigned partition: its local store when that is at or past the committed
offset, else rebuilt from the state changelog (a lost or stale store, a corrupt or
locked one). Part of :class:`agents.imports.projector.Projector`."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from aiokafka import TopicPartition

from agents.config.sync_config import InputBinding
from agents.imports.owned_partition import OwnedPartition, unusable_store
from agents.imports.store import Checkpoint, PartitionStore
from streams import metrics
from streams.kafka import (
    group_consumer,
)

log = logging.getLogger(__name__)


class RecoverySteps:
    """The projector's partition opening and rebuild (uses its settings, consumer and
    owned partitions)."""

    def _store_path(self, tp: TopicPartition) -> Path:
        return (
            Path(self.settings.data_dir)
            / self.settings.app_id
            / "projection"
            / f"{tp.topic}-{tp.partition}"
        )

    async def _open(self, binding: InputBinding, tp: TopicPartition) -> OwnedPartition:
        assert self._consumer is not None
        commands_tp = TopicPartition(self.commands_topic(tp.topic), tp.partition)
        committed_input = await self._consumer.committed(tp) or 0
        committed_commands = await self._consumer.committed(commands_tp) or 0
        path = self._store_path(tp)
        try:
            store: PartitionStore | None = None
            store = PartitionStore(path)
            checkpoint = store.checkpoint()
        except Exception as error:  # RocksDB: locked by another process, or corrupt
            if store is not None:
                store.close()
            # The store is a cache of the changelog: rebuild it (elsewhere when locked:
            # the other process may still use it).
            path = unusable_store(path, error)
            store = PartitionStore.fresh(path)
            checkpoint = None
        if (
            checkpoint is None
            or checkpoint.input < committed_input
            or checkpoint.commands < committed_commands
        ):
            # Another worker advanced this partition since (or there is no store): the
            # changelog is the truth.
            store.close()
            started = time.monotonic()
            store = PartitionStore.fresh(path)
            checkpoint = Checkpoint(committed_input, committed_commands)
            count = await self._rebuild(store, tp.partition, self.state_topic(tp.topic), checkpoint)
            if count == 0 and committed_input > 0:
                self._state_missing(tp, committed_input)
            log.info(
                "projection %s[%d]: rebuilt %d changelog records in %.1fs (from offset %d)",
                tp.topic,
                tp.partition,
                count,
                time.monotonic() - started,
                committed_input,
            )
        return OwnedPartition(
            binding=binding,
            input=tp,
            commands=commands_tp,
            state_topic=self.state_topic(tp.topic),
            store=store,
            next_input=checkpoint.input,
            next_commands=checkpoint.commands,
        )

    def _state_missing(self, tp: TopicPartition, committed: int) -> None:
        """Input was consumed (committed offsets) but its changelog holds nothing: the
        state topic was deleted or emptied, or every record so far was bad input. Said
        loudly, not refused: the full-import guard keeps a partial state from
        deactivating Norce's rows (``agents.imports.full_guard``)."""
        metrics.state_changelog_empty.inc(topic=tp.topic, partition=str(tp.partition))
        log.error(
            "projection %s[%d]: input offsets up to %d were committed but the state "
            "changelog %s is empty: was it deleted? The state holds only changes from "
            "now on; full imports are refused while they would deactivate more than "
            "NORCE_SYNC_FULL_IMPORT_MAX_DROP_SHARE of the last one. To rebuild, reset the "
            "group %s-projection to the input's earliest offsets (if the input still "
            "holds every key) or replay a snapshot",
            tp.topic,
            tp.partition,
            committed,
            self.state_topic(tp.topic),
            self.settings.app_id,
        )

    async def _rebuild(
        self, store: PartitionStore, partition: int, topic: str, checkpoint: Checkpoint
    ) -> int:
        reader = group_consumer(
            self.settings,
            enable_auto_commit=False,
            # Not the default "latest": the reset that assign() schedules can land after
            # seek_to_beginning, and the rebuild then reads nothing (an empty store).
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=8 * 1024 * 1024,
        )
        await reader.start()
        try:
            tp = TopicPartition(topic, partition)
            reader.assign([tp])
            end = (await reader.end_offsets([tp]))[tp]
            await reader.seek_to_beginning(tp)
            count = 0
            # Streamed into the store a fetch at a time: memory holds one fetch, never
            # the partition (a rebuild of 250,000 keys would otherwise hold them all).
            while await reader.position(tp) < end:
                fetched = await reader.getmany(tp, timeout_ms=1000, max_records=10_000)
                records = [
                    (record.key, record.value)
                    for record in fetched.get(tp, [])
                    if record.offset < end and record.key is not None
                ]
                count += store.load_values(records)
            store.finish_load(checkpoint)
            return count
        finally:
            await reader.stop()

    # --- the batch -----------------------------------------------------------------
