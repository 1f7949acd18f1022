"""ERP order statuses back to Norce: ``Order/SendOrderStatus``, one call per change.

- Consumer group ``<app id>-order-status`` on the topic of the input of kind
  ``order_status``. An
  order's changes share a partition (the ERP row's key), and a batch's changes of one
  order are sent one after another in source order; different orders go concurrently,
  at most ``orders_status_concurrency`` calls in flight per worker.
- Never backwards: the last version sent per order is kept in the compacted topic
  ``<app id>-order-status-sent`` (read whole at start); a change not newer is skipped
  and counted (a replay, or a change that arrived after a newer one).
- Norce answers 400/404 (an order it does not know, a status it refuses): dead-lettered
  with Norce's answer, and the version is recorded (not retried). 429, 5xx, timeouts:
  retried with backoff, honouring ``Retry-After``, until Norce answers; one warning line
  per order while it waits. Offsets are committed once every change of the batch is
  sent or dead-lettered: a crash sends at most the last batch's calls again (skipped
  when their version was recorded).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import OrderedDict
from typing import Any

import orjson
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata
from mode import Service

from agents.config.orders_config import OrderStatusInput
from agents.orders.status_input import StatusChangeError, decode_status_change, newer
from norce.client import NorceClient
from norce.errors import NorceBadRequest, NorceError, NorceNotFound
from norce.orders import OrderStatusUpdate
from streams import metrics
from streams.kafka import (
    OwnerRebalance,
    fetch_or_wait,
    owned_group_consumer,
    send_acked,
    send_dead_letter,
)
from streams.kafka_reads import read_to_end
from streams.records import DeadLetter
from streams.settings import Settings

log = logging.getLogger(__name__)

statuses_total = metrics.REGISTRY.counter(
    "norce_sync_order_statuses_total",
    "Order status changes by outcome (sent, failed, stale, invalid).",
    ["outcome"],
)
statuses_waiting = metrics.REGISTRY.gauge(
    "norce_sync_order_statuses_waiting", "Status calls waiting for Norce to answer.", []
)


class StatusSender(Service):
    def __init__(
        self,
        app: Any,
        settings: Settings,
        config: OrderStatusInput,
        client: Any,  # () -> NorceClient (built on first use)
        account_id: int | None,
        sent_topic: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.app, self.settings, self.config = app, settings, config
        self._client_factory = client
        self.account_id = account_id
        self.sent_topic = sent_topic
        self.mapper = config.mapper()
        self.group_id = f"{settings.app_id}-order-status"
        self.sent: dict[str, list[Any]] = {}
        self.concurrency = asyncio.Semaphore(settings.orders_status_concurrency)
        self.counts: dict[str, int] = {"sent": 0, "failed": 0, "stale": 0, "invalid": 0}
        self.waiting = 0
        self.recent: OrderedDict[str, dict[str, Any]] = OrderedDict()  # for /orders/
        self._consumer: Any = None

    @property
    def client(self) -> NorceClient:
        return self._client_factory()  # type: ignore[no-any-return]

    async def on_start(self) -> None:
        await self._load_sent()
        self._consumer = owned_group_consumer(self.settings, self.group_id)
        await self._consumer.start()
        self._consumer.subscribe([self.config.topic], listener=OwnerRebalance(self))

    async def take(self, assigned: list[TopicPartition]) -> None:
        # Another worker may have sent statuses of these partitions since we read.
        await self._load_sent()

    async def release(self, revoked: list[TopicPartition]) -> None:
        return None  # each batch is finished and committed before the next fetch

    async def on_stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def _load_sent(self) -> None:
        async for record in read_to_end(self.settings, self.sent_topic):
            if record.key is not None and record.value is not None:
                self.sent[record.key.decode()] = orjson.loads(record.value)["version"]

    @Service.task
    async def _run(self) -> None:
        while not self.should_stop:
            batch = await fetch_or_wait(self._consumer, "order status", max_records=1000)
            if not batch:
                continue
            per_order: dict[str, list[tuple[ConsumerRecord, OrderStatusUpdate, list[Any]]]] = {}
            for records in batch.values():
                for record in records:
                    parsed = await self._parse(record)
                    if parsed is not None:
                        update, version = parsed
                        per_order.setdefault(update.order_key(), []).append(
                            (record, update, version)
                        )
            await asyncio.gather(*(self._send_order(k, c) for k, c in per_order.items()))
            commits = {
                tp: OffsetAndMetadata(records[-1].offset + 1, "") for tp, records in batch.items()
            }
            try:
                await self._consumer.commit(commits)
            except (KafkaError, AssertionError) as error:
                log.info("order status commit skipped (read again, not resent): %s", error)

    async def _parse(self, record: ConsumerRecord) -> tuple[OrderStatusUpdate, list[Any]] | None:
        try:
            change = decode_status_change(record.value, self.config.format)
            if change is None:
                return None
            body = self.mapper(change.row)
            if self.account_id is not None:
                body.setdefault("AccountId", self.account_id)
            update = OrderStatusUpdate.model_validate(body)
            if not update.ClientOrderRef and not update.ErpOrderNo:
                raise StatusChangeError("no ClientOrderRef or ErpOrderNo")
        except Exception as exc:  # decode, mapping, validation
            self._count("invalid")
            await self._letter(record, "order-status-map", str(exc))
            return None
        return update, change.version

    async def _send_order(
        self, key: str, changes: list[tuple[ConsumerRecord, OrderStatusUpdate, list[Any]]]
    ) -> None:
        for record, update, version in changes:
            if not newer(version, self.sent.get(key)):
                self._count("stale")
                continue
            async with self.concurrency:
                answer = await self._call(key, update)
            if answer is not None:  # Norce refused it: kept with its answer
                self._count("failed")
                await self._letter(record, "order-status", f"Norce answered: {answer}")
            else:
                self._count("sent")
            self.sent[key] = version
            self._remember(key, update, "failed" if answer else "sent")
            await send_acked(
                self.app,
                self.sent_topic,
                key.encode(),
                orjson.dumps({"version": version, "status": update.OrderStatus}),
            )

    async def _call(self, key: str, update: OrderStatusUpdate) -> str | None:
        """None once Norce took it; Norce's answer when it refused it."""
        body = update.model_dump_json(exclude_none=True).encode()
        url = self.client.endpoints.connect_url + "Order/SendOrderStatus"
        attempt, waiting = 0, False
        try:
            while True:
                try:
                    await self.client.http.request(
                        "POST", url, body=body, headers={"Content-Type": "application/json"}
                    )
                    return None
                except (NorceBadRequest, NorceNotFound) as exc:
                    return f"{exc.status_code} {exc.description or exc}"
                except NorceError as exc:
                    if self.should_stop:
                        raise
                    attempt += 1
                    if not waiting:
                        waiting = True
                        self.waiting += 1
                        statuses_waiting.set(self.waiting)
                        log.warning("order status of %s waits for Norce: %s", key, exc)
                    retry_after = getattr(getattr(exc, "last_error", exc), "retry_after", None)
                    delay = min(30.0, 0.5 * 2**attempt) * random.uniform(0.5, 1.0)
                    await asyncio.sleep(max(delay, retry_after or 0.0))
        finally:
            if waiting:
                self.waiting -= 1
                statuses_waiting.set(self.waiting)

    def _count(self, outcome: str) -> None:
        self.counts[outcome] += 1
        statuses_total.inc(outcome=outcome)

    def _remember(self, key: str, update: OrderStatusUpdate, outcome: str) -> None:
        self.recent.pop(key, None)
        self.recent[key] = {"status": update.OrderStatus, "outcome": outcome}
        if len(self.recent) > 100:
            self.recent.popitem(last=False)

    async def _letter(self, record: ConsumerRecord, stage: str, reason: str) -> None:
        letter = DeadLetter.of(record, stage, reason)
        await send_dead_letter(self.app, letter, until_acked=True)

    def stats(self) -> dict[str, Any]:
        return {
            "group": self.group_id,
            "topic": self.config.topic,
            **self.counts,
            "waiting": self.waiting,
            "recent": dict(self.recent),
        }
