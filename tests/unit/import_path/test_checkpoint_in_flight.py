"""While a checkpoint is in flight (its changelog records sent, the store not yet written)
the projector folds the next batch against the values of that checkpoint, never against
the older ones the store and the cache still hold: no older value wins, and the pending
time the next store write starts from is the one the in-flight checkpoint stores."""

from __future__ import annotations

from pathlib import Path

from aiokafka import ConsumerRecord, TopicPartition

from agents.config.sync_config import load_config
from agents.imports import projection
from agents.imports.owned_partition import OwnedPartition
from agents.imports.projector import Projector
from agents.imports.store import Change, Checkpoint, PartitionStore
from streams.settings import Settings
from tests.support.debezium import PRICE_KEY, envelope, key_bytes, price_row
from tests.support.stack import write_config

KEY = b"erp|price|SKU-1|STD|1"


def record(tp: TopicPartition, offset: int, lsn: int, price: float) -> ConsumerRecord:
    row = price_row("SKU-1", price)
    value = projection.encode(envelope("prices", "u", row, lsn=lsn, ts_ms=1_000))
    return ConsumerRecord(
        tp.topic, tp.partition, offset, 0, 0, key_bytes(row, PRICE_KEY), value, None, 0, 0, []
    )


def stored(lsn: int, price: float, since: float | None) -> projection.Value:
    return {"v": [1_000, lsn], "row": {"PriceSale": price}, "d": False, "p": since, "h": None}


async def test_the_next_fold_reads_the_checkpoint_in_flight_first(tmp_path: Path) -> None:
    path, topics = write_config(tmp_path, "inflight")
    config = load_config(str(path))
    projector = Projector(Settings(config_file=path, data_dir=tmp_path), config)  # type: ignore[call-arg]
    tp = TopicPartition(topics["price"], 0)
    store = PartitionStore(tmp_path / "store")
    old = stored(5, 5.0, None)  # stored and cached: not pending
    store.write({KEY: Change(projection.encode(old), None, None)}, Checkpoint(1, 0))
    owned = OwnedPartition(
        binding=config.binding_for_topic(tp.topic),
        input=tp,
        commands=TopicPartition("commands", 0),
        state_topic="state",
        store=store,
        next_input=1,
        next_commands=0,
    )
    owned.cache[KEY] = old
    # A checkpoint in flight holds lsn 7, pending since 70.0 (the store still has lsn 5).
    owned.put(KEY, stored(7, 7.0, 70.0), None)
    owned.hand_over()
    assert owned.dirty == {} and KEY in owned.inflight

    # lsn 6 is newer than the stored value but older than the one in flight: dropped.
    await projector._fold_changes(owned, [record(tp, 1, 6, 6.0)], now=80.0)
    assert owned.dirty == {}
    assert owned.current(KEY)[0]["v"] == [1_000, 7]

    # lsn 8 folds onto the value in flight: still pending since 70.0, and the store
    # write of this batch starts from that pending time (what the store will hold).
    await projector._fold_changes(owned, [record(tp, 2, 8, 8.0)], now=90.0)
    value, stored_since = owned.dirty[KEY]
    assert value["v"] == [1_000, 8] and value["p"] == 70.0
    assert stored_since == 70.0

    # The checkpoint lands: its values are cached, the batch in progress stays.
    owned.settle()
    assert owned.inflight == {} and owned.cache[KEY]["v"] == [1_000, 7]
    assert owned.current(KEY)[0]["v"] == [1_000, 8]
    store.close()
