"""Which keys a failed delta's re-queue covers (issue 23, item 10).

Normally the batch's own record on the batches topic (``BatchIntent``, the ledger's
``batch_ref``) lists them. That topic has delete retention, so the record can be gone
(or the broker slow to give it back): then every key of the batch's (source, kind) is
re-queued from the projection's state instead. That re-sends more than the batch (each
key's current state, once), never less: a failed job's keys are never left behind.
"""

from __future__ import annotations

import logging

from agents.imports.full_file import latest_offsets
from agents.imports.jobs import JobRecord
from streams import topics
from streams.kafka import RecordUnavailable, consumer, partitions_of, read_record
from streams.messages import BatchIntent
from streams.settings import Settings

log = logging.getLogger(__name__)

Keys = list[tuple[str, int]]  # (state key, input partition)


async def batch_keys(settings: Settings, record: JobRecord, batches_topic: str) -> Keys | None:
    """The batch's keys (minus rows Norce rejected) from its batch record; None when that
    record cannot be read or is not this batch's."""
    if record.batch_ref is None:
        return None
    partition, offset = record.batch_ref
    try:
        stored = BatchIntent.from_bytes(
            await read_record(settings, batches_topic, partition, offset)
        )
    except (RecordUnavailable, ValueError) as error:
        log.warning("job %s: its batch record is not readable: %s", record.batch_id, error)
        return None
    if stored.batch_id != record.batch_id:
        log.warning(
            "job %s: %s[%d]@%d holds batch %s", record.batch_id, batches_topic, partition,
            offset, stored.batch_id,
        )  # fmt: skip
        return None
    rejected = set(record.rejected_rows)
    return [
        (key, stored.partitions[index])
        for index, key in enumerate(stored.keys)
        if index not in rejected
    ]


async def state_keys(settings: Settings, input_topic: str, source: str, kind: str) -> Keys:
    """Every key of (source, kind) in the projection's state, with its partition."""
    reader = consumer(settings)
    await reader.start()
    try:
        state = topics.state_topic(settings, input_topic)
        prefix = f"{source}|{kind}|".encode()
        tps = await partitions_of(reader, state)
        ends = await reader.end_offsets(tps) if tps else {}
        keys: Keys = []
        for tp, end in sorted(ends.items()):
            last = await latest_offsets(reader, tp, end, prefix)
            keys.extend((key.decode(), tp.partition) for key in last)
        return keys
    finally:
        await reader.stop()
