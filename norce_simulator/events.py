"""Norce Commerce Event: webhook subscriptions and deliveries.

One notification per changed item (and a JobCompletedEvent per finished job) is posted
to the event type's subscribed URL with its static headers plus ``x-norce-event-type``.
A non-2xx answer, a timeout or a connection error is retried on Norce's schedule
(scaled by ``webhook_time_factor``); after the last retry the event is dead. Deliveries
run on their own workers, so job workers never wait for a receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import aiohttp
import orjson
from pydantic import BaseModel, ConfigDict, Field

from norce_simulator.clock import now_iso

if TYPE_CHECKING:
    from norce_simulator.state import Row, SimState

log = logging.getLogger(__name__)

EVENT_TYPES = (
    "SkuChangedNotification",
    "SkuPriceChangedNotification",
    "SkuOnHandBreakPointNotification",
    "CustomerChangedNotification",
    "SupplierSkuChangedNotification",
    "JobCompletedEvent",
    # norce_simulator/orders.py raises these
    "OrderReceivedEvent",
    "OrderConfirmedEvent",
    "OrderCancelledEvent",
    "OrderDeliveredEvent",
    "OrderPartlyDeliveredEvent",
    "OrderReadyForPickupEvent",
    "OrderPaymentReceivedEvent",
)
# Which notification an item kind's change raises.
_EVENT_OF_KIND = {
    "price": "SkuPriceChangedNotification",
    "stock": "SkuOnHandBreakPointNotification",
    "sku": "SkuChangedNotification",
    "product": "SkuChangedNotification",
    "customer": "CustomerChangedNotification",
    "company": "CompanyChangedNotification",
    "supplier": "SupplierSkuChangedNotification",
}


class Subscription(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    enabled: bool = True


@dataclass
class EventRecord:
    id: int
    event_type: str
    url: str
    headers: dict[str, str]
    body: dict[str, Any]
    state: Literal["pending", "ok", "dead"] = "pending"
    attempts: list[dict[str, Any]] = field(default_factory=list)  # {time, at, status, error}
    created_at: float = field(default_factory=time.monotonic)

    @property
    def failed_attempts(self) -> int:
        return sum(1 for a in self.attempts if not a["ok"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event_type": self.event_type,
            "url": self.url,
            "body": self.body,
            "state": self.state,
            "attempts": list(self.attempts),
        }


class EventDispatcher:
    def __init__(self, state: SimState) -> None:
        self.state = state
        self._ids = itertools.count(1)
        self._queue: asyncio.Queue[EventRecord] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._timers: dict[int, asyncio.TimerHandle] = {}  # event id -> pending retry
        self._session: aiohttp.ClientSession | None = None
        self._generation = 0
        state.on_reset(self._reset)

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        cfg = self.state.config
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=cfg.webhook_timeout_s),
            connector=aiohttp.TCPConnector(limit=cfg.webhook_concurrency),
        )
        self._workers = [
            asyncio.create_task(self._work(), name=f"norce-sim-webhook-{i}")
            for i in range(cfg.webhook_concurrency)
        ]

    async def stop(self) -> None:
        self._cancel_timers()
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = []
        if self._session is not None:
            await self._session.close()

    def _cancel_timers(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def _reset(self) -> None:
        self._generation += 1  # in-flight deliveries of the old state are forgotten
        self._cancel_timers()
        while not self._queue.empty():
            self._queue.get_nowait()

    # -- publishing ------------------------------------------------------------------
    def publish(self, event_type: str, body: dict[str, Any]) -> EventRecord | None:
        sub = self.state.subscriptions.get(event_type)
        if sub is None or not sub.enabled:
            return None
        rec = EventRecord(next(self._ids), event_type, sub.url, dict(sub.headers), body)
        self.state.deliveries.append(rec)
        self._queue.put_nowait(rec)
        return rec

    def _base(self) -> dict[str, Any]:
        cfg = self.state.config
        return {"ClientId": cfg.event_client_id, "ApplicationId": cfg.event_application_id}

    def item_changed(self, kind: str, key: str, row: Row) -> None:
        """Writer callback: one notification per changed item."""
        event_type = _EVENT_OF_KIND.get(kind)
        sub = self.state.subscriptions.get(event_type or "")
        if event_type is None or sub is None or not sub.enabled:
            return  # nobody listens: build nothing
        body = self._base()
        if kind == "price":
            body |= {
                "PartNo": row["PartNo"],
                "PricelistId": self.state.pricelist_id(row["PriceListCode"]),
                "PricelistCode": row["PriceListCode"],
                "PriceSaleValue": row.get("PriceSale"),
                "QuantityBreak": row["QuantityBreak"],
                "EntityChanged": "tClientProductSkuPriceList",
            }
        elif kind == "stock":
            body |= {
                "PartNo": row["PartNo"],
                "WarehouseCode": row["WarehouseCode"],
                "LocationCode": row["LocationCode"],
                "EntityChanged": "tClientProductSkuOnHand",
            }
        elif kind == "sku":
            body |= {"PartNo": row["PartNo"], "EntityChanged": "tClientProductSku"}
        elif kind == "product":
            # A product-level change concerns every SKU of the product.
            for variant in row.get("Variants") or []:
                for part_no in variant.get("PartNos", []):
                    self.publish(
                        event_type,
                        self._base() | {"PartNo": part_no, "EntityChanged": "tClientProduct"},
                    )
            return
        elif kind == "customer":
            body |= {"CustomerId": row["Id"], "EntityChanged": "tClientCustomer"}
        elif kind == "company":
            body |= {"CompanyId": row["Id"], "EntityChanged": "tClientCompany"}
        elif kind == "supplier":
            body |= {
                "SupplierId": row["SupplierId"],
                "PartNo": row["PartNo"],
                "EntityChanged": "tClientSupplierProductSku",
            }
        self.publish(event_type, body)

    def job_completed(self, job_id: int, status_id: int) -> None:
        self.publish("JobCompletedEvent", self._base() | {"JobId": job_id, "StatusId": status_id})

    # -- delivery --------------------------------------------------------------------
    async def _work(self) -> None:
        while True:
            rec = await self._queue.get()
            generation = self._generation
            ok, status, error = await self._post(rec)
            if generation != self._generation:
                continue
            rec.attempts.append(
                {
                    "time": now_iso(),
                    "at": time.monotonic(),
                    "status": status,
                    "ok": ok,
                    "error": error,
                }
            )
            if ok:
                rec.state = "ok"
                continue
            schedule = self.state.config.webhook_retry_schedule
            retry = len(rec.attempts) - 1  # retries done so far
            if retry >= len(schedule):
                rec.state = "dead"
                log.info("webhook %s %s dead after %d retries", rec.event_type, rec.id, retry)
                continue
            delay = schedule[retry] * self.state.config.webhook_time_factor
            loop = asyncio.get_running_loop()
            self._timers[rec.id] = loop.call_later(delay, self._requeue, rec, generation)

    def _requeue(self, rec: EventRecord, generation: int) -> None:
        self._timers.pop(rec.id, None)
        if generation == self._generation:
            self._queue.put_nowait(rec)

    async def _post(self, rec: EventRecord) -> tuple[bool, int | None, str | None]:
        assert self._session is not None
        headers = {
            **rec.headers,
            "x-norce-event-type": rec.event_type,
            "Content-Type": "application/json",
        }
        try:
            async with self._session.post(
                rec.url, data=orjson.dumps(rec.body), headers=headers
            ) as resp:
                await resp.read()
                return 200 <= resp.status < 300, resp.status, None
        except (aiohttp.ClientError, TimeoutError) as exc:
            return False, None, f"{type(exc).__name__}: {exc}"
