"""``norce-sync orders [--ref REF] [--json]``: the order flow as Kafka holds it, read
directly without a consumer group (no worker needed): orders received and on the orders
topic, refs received more than once, conflicts and other order dead letters, and the last
status sent to Norce per order. With ``--ref``: that order's records and status."""

from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar

import click
import orjson

from agents.ops.commands import OpsCommand, _json_option, _table
from streams.kafka import consumer, partition_records, partitions_of
from streams.records import DeadLetter
from streams.settings import Settings
from streams.topics import order_status_sent_topic, orders_received_topic, orders_topic


async def read_topic(s: Settings, topic: str) -> list[Any]:
    reader = consumer(s)
    await reader.start()
    records: list[Any] = []
    try:
        for tp in await partitions_of(reader, topic):
            end = (await reader.end_offsets([tp]))[tp]
            records += [r async for r in partition_records(reader, tp, end)]
    finally:
        await reader.stop()
    return records


async def orders_summary(s: Settings, ref: str | None = None) -> dict[str, Any]:
    received = Counter(
        r.key.decode() for r in await read_topic(s, orders_received_topic(s)) if r.key
    )
    stored = Counter(r.key.decode() for r in await read_topic(s, orders_topic(s)) if r.key)
    statuses: dict[str, Any] = {}
    for r in await read_topic(s, order_status_sent_topic(s)):
        if r.key and r.value:
            statuses[r.key.decode()] = orjson.loads(r.value)
    letters = []
    for r in await read_topic(s, s.dlq_topic):
        try:
            letter = DeadLetter.model_validate_json(r.value)
        except ValueError:
            continue
        if letter.stage.startswith("order"):
            letters.append(
                {
                    "ref": (letter.key or b"").decode(errors="replace"),
                    "stage": letter.stage,
                    "reason": letter.reason,
                    "dlq_offset": r.offset,
                }
            )
    if ref is not None:
        return {
            "ref": ref,
            "received_calls": received.get(ref, 0),
            "on_orders_topic": stored.get(ref, 0),
            "last_status_sent": statuses.get(ref),
            "dead_letters": [d for d in letters if d["ref"] == ref],
        }
    return {
        "received": len(received),
        "received_more_than_once": sorted(r for r, c in received.items() if c > 1)[:50],
        "on_orders_topic": len(stored),
        "not_yet_forwarded": len(set(received) - set(stored)),
        "conflicts": sum(1 for d in letters if d["stage"] == "order-conflict"),
        "statuses_sent": Counter(v.get("status") for v in statuses.values()),
        "dead_letters": letters[-20:],
    }


class orders(OpsCommand):
    """Orders received, forwarded and conflicting, and statuses sent (read from Kafka)."""

    command_name: ClassVar[str | None] = "orders"
    options = [
        click.option("--ref", default=None, help="One order by ClientOrderRef."),
        _json_option,
    ]

    async def run(self, ref: str | None, as_json: bool) -> None:
        summary = await orders_summary(self.settings, ref)
        if as_json or self.json or ref is not None:
            self.emit(summary)
            return
        self.say(
            f"received {summary['received']}, on the orders topic "
            f"{summary['on_orders_topic']}, not yet forwarded {summary['not_yet_forwarded']}, "
            f"conflicts {summary['conflicts']}"
        )
        self.say(
            "statuses sent (last per order): " + orjson.dumps(summary["statuses_sent"]).decode()
        )
        rows = [
            [d["ref"], d["stage"], d["reason"][:80], d["dlq_offset"]]
            for d in summary["dead_letters"]
        ]
        if rows:
            self.say(_table(rows, ["ref", "stage", "reason", "dlq offset"]))
