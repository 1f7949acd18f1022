"""Norce's order receiver: ``POST /norce/orders``, answered only once Kafka has the order.

In order:

1. HTTP Basic authentication (``orders_user``/``orders_password``), compared in
   constant time: 401 and nothing read when missing or wrong;
2. the body size (``orders_max_body_bytes``): 413;
3. XML (``Content-Type`` ``*/xml``): 415. Norce's XML order contract is not published
   beside the JSON one, and guessing its element names could turn a real order into a
   wrong one; Norce Admin offers REST/JSON, which is the recommended endpoint type;
4. JSON and ``OrderRequest`` (unknown fields kept): 400 ``Failed`` with the reason, and
   the original bytes go to the dead-letter topic first (no order is lost to a bug here;
   if that produce fails, 503 so Norce retries);
5. the ledger (:mod:`agents.orders.ledger`): a ref already received with the same
   content answers OK and writes nothing; a different order under it answers 409
   ``Failed``, both versions are dead-lettered and an ``ORDER CONFLICT`` error is logged;
6. produce to the received-orders topic (acks=all, the receiver's own producer without
   linger), then OK. No ack within
   ``orders_ack_timeout_s`` or a failed produce: 503 ``Failed`` (Norce retries; a record
   that reached Kafka anyway is found in the ledger on the retry).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from collections import deque
from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError

from agents.orders.digest import DIGEST_HEADER, order_digest
from agents.orders.ledger import RefLedger
from agents.orders.order_producer import OrderProducer
from norce.orders import OrderRequest, OrderResponse
from streams import metrics
from streams.kafka import read_record, send_dead_letter
from streams.priority import urgent
from streams.records import DeadLetter
from streams.secrets_check import secret_matches
from streams.settings import Settings

log = logging.getLogger(__name__)

_CHUNK = 64 * 1024

orders_in = metrics.REGISTRY.counter(
    "norce_sync_orders_received_total",
    "Order calls by answer (ok, duplicate, conflict, malformed, unavailable, ...).",
    ["result"],
)
answer_seconds = metrics.REGISTRY.histogram(
    "norce_sync_orders_answer_seconds", "Time to answer an order call.", []
)


class BodyTooLarge(Exception):
    pass


def basic_auth_ok(authorization: str | None, user: str, password: str) -> bool:
    """``Authorization: Basic base64(user:password)`` against the configured pair, in
    constant time; an empty configured password opens nothing."""
    if not authorization or not password or not user:
        return False
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given_user, sep, given_password = (
            base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        return False
    user_ok = secret_matches(given_user, user)
    password_ok = secret_matches(given_password, password)
    return bool(sep) and user_ok and password_ok


async def read_limited(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    while chunk := await request.content.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class OrderReceiver:
    def __init__(
        self,
        app: Any,
        settings: Settings,
        ledger: RefLedger,
        topic: str,
        producer: OrderProducer,
    ) -> None:
        self.app, self.settings, self.ledger, self.topic = app, settings, ledger, topic
        self.producer = producer  # its own, no linger (agents/orders/order_producer.py)
        self.counts: dict[str, int] = {}
        self.latencies: deque[float] = deque(maxlen=2048)  # the last answers, seconds
        # where an accepted order's answer time goes: end offset, ledger tail, produce
        self.phases: dict[str, deque[float]] = {
            name: deque(maxlen=2048) for name in ("end_offset", "ledger", "produce")
        }

    async def handle(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        try:
            with urgent():  # bulk work (the import projection) steps back meanwhile
                status, result, response = await self._handle(request)
        finally:
            took = time.perf_counter() - started
            answer_seconds.observe(took)
            self.latencies.append(took)
        orders_in.inc(result=result)
        self.counts[result] = self.counts.get(result, 0) + 1
        answer = web.Response(
            status=status, body=response.model_dump_json(), content_type="application/json"
        )
        if status == 401:
            answer.headers["WWW-Authenticate"] = 'Basic realm="norce-orders"'
        elif status == 503:
            answer.headers["Retry-After"] = "5"
        return answer

    def latency_ms(self) -> dict[str, Any]:
        """p50/p99 of the last answers (all outcomes), in milliseconds."""
        result: dict[str, Any] = _quantiles_ms(self.latencies)
        result["phases"] = {name: _quantiles_ms(v) for name, v in self.phases.items()}
        return result

    async def _handle(self, request: web.Request) -> tuple[int, str, OrderResponse]:
        s = self.settings
        if not basic_auth_ok(
            request.headers.get("Authorization"),
            s.orders_user,
            s.orders_password.get_secret_value(),
        ):
            return 401, "unauthorized", OrderResponse.failed("missing or wrong credentials")
        try:
            raw = await read_limited(request, s.orders_max_body_bytes)
        except BodyTooLarge:
            return (
                413,
                "too_large",
                OrderResponse.failed(f"larger than {s.orders_max_body_bytes} bytes"),
            )
        if "xml" in (request.content_type or ""):
            return (
                415,
                "xml",
                OrderResponse.failed(
                    "XML orders are not accepted: set the endpoint type to REST (JSON) in "
                    "Norce Admin, ERP integration"
                ),
            )
        try:
            async with asyncio.timeout(s.orders_ack_timeout_s):
                return await self._receive(raw)
        except Exception as exc:  # TimeoutError, KafkaError, ledger not ready ...
            log.warning("order not stored: %r; answering 503", exc)
            return 503, "unavailable", OrderResponse.failed("order not stored, retry later")

    async def _receive(self, raw: bytes) -> tuple[int, str, OrderResponse]:
        try:
            document = orjson.loads(raw)
            order = OrderRequest.model_validate(document)
        except (orjson.JSONDecodeError, ValidationError) as exc:
            reason = _reason(exc)
            await self._dead_letter(None, raw, "order-receive", f"malformed order: {reason}")
            return 400, "malformed", OrderResponse.failed(f"malformed order: {reason}")
        ref = order.ClientOrderRef
        digest = order_digest(document)
        ledger = self.ledger
        async with ledger.lock(ref):
            t0 = time.perf_counter()
            partition = await ledger.partition_of(ref)
            end = await ledger.end_offset(partition)
            t1 = time.perf_counter()
            await ledger.settled(partition, end)
            t2 = time.perf_counter()
            self.phases["end_offset"].append(t1 - t0)
            self.phases["ledger"].append(t2 - t1)
            known = ledger.lookup(partition, ref)
            if known is not None:
                if known.digest == digest:
                    return 200, "duplicate", OrderResponse.ok("already received")
                await self._conflict(ref, raw, partition, known.offset)
                return (
                    409,
                    "conflict",
                    OrderResponse.failed(
                        f"a different order with ClientOrderRef {ref!r} was received before"
                    ),
                )
            meta = await self.producer.send_acked(
                ref.encode(), raw, [(DIGEST_HEADER, digest.encode())], partition
            )
            ledger.note(partition, ref, digest, meta.offset)
            self.phases["produce"].append(time.perf_counter() - t2)
        return 200, "ok", OrderResponse.ok("received")

    async def _conflict(self, ref: str, raw: bytes, partition: int, offset: int) -> None:
        first = await read_record(self.settings, self.topic, partition, offset)
        log.error(
            "ORDER CONFLICT: a different order under ClientOrderRef %r (first at %s/%d/%d); "
            "both dead-lettered, answered 409",
            ref,
            self.topic,
            partition,
            offset,
        )
        await self._dead_letter(
            ref, first, "order-conflict", "first version of a conflicting order", partition, offset
        )
        await self._dead_letter(ref, raw, "order-conflict", "conflicting version (answered 409)")

    async def _dead_letter(
        self,
        ref: str | None,
        raw: bytes,
        stage: str,
        reason: str,
        partition: int | None = None,
        offset: int | None = None,
    ) -> None:
        letter = DeadLetter(
            key=ref.encode() if ref else None,
            value=raw,
            topic=self.topic if offset is not None else None,
            partition=partition,
            offset=offset,
            stage=stage,
            reason=reason[:2000],
        )
        await send_dead_letter(self.app, letter)


def _quantiles_ms(values: deque[float]) -> dict[str, Any]:
    if not values:
        return {"p50": None, "p99": None, "count": 0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {"p50": at(0.5), "p99": at(0.99), "count": len(ordered)}


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors(include_url=False)[:5]:
            loc = ".".join(str(p) for p in err["loc"]) or "body"
            parts.append(f"{loc}: {err['msg']}")
        return "; ".join(parts)
    return f"not JSON: {exc}"
