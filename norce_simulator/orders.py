"""The order side of Norce: placing orders on the integration's order receiver, and
taking order statuses back.

- ``POST /_sim/orders/receiver`` ``{url, username, password}``: what Norce Admin's "ERP
  integration" holds.
- ``POST /_sim/orders`` ``{orders: [OrderRequest, ...]}`` or ``{count, prefix}``:
  Norce places each order like a checkout does: a POST with Basic auth, waiting for
  the answer. A non-2xx answer, a timeout or a connection error is retried on
  ``order_retry_schedule`` (Norce's length is not published; scaled by
  ``webhook_time_factor``); after the last retry the order is ``dead`` (support alerted).
  An answer 2xx whose body is not ``StatusCode: OK`` counts as failed too.
- ``GET /_sim/orders`` (and ``/_sim/orders/{ref}``): each placement's state and attempts.
- ``POST /commerce/connect/4.0/Order/SendOrderStatus`` (OAuth): appends to the order's
  status history and raises the matching order event; an order Norce does not know
  (never placed) answers 400 with a reason, as does a body without a reference.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from norce_simulator.identity import check_auth
from norce_simulator.state import SimState

# Status -> the order event Norce raises for it.
EVENT_OF_STATUS = {
    "Confirmed": "OrderConfirmedEvent",
    "ErpConfirmed": "OrderConfirmedEvent",
    "Cancelled": "OrderCancelledEvent",
    "Delivered": "OrderDeliveredEvent",
    "PartlyDelivered": "OrderPartlyDeliveredEvent",
    "ReadyForPickup": "OrderReadyForPickupEvent",
}
ORDER_RETRY_SCHEDULE: tuple[float, ...] = (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)


@dataclass
class Placement:
    ref: str
    order: dict[str, Any]
    state: str = "pending"  # pending, ok, dead
    attempts: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "state": self.state, "attempts": list(self.attempts)}


def sample_order(ref: str, lines: int = 2) -> dict[str, Any]:
    return {
        "Header": {"ApplicationKey": "00000000-0000-0000-0000-000000000001"},
        "ClientOrderRef": ref,
        "ErpOrderNo": "",
        "OrderType": 1,
        "CurrencyCode": "SEK",
        "SubmitDate": time.strftime("%Y-%m-%d %H:%M:%S"),
        "SellTo": {"Person": {"FirstName": "Ada", "LastName": "L", "Email": f"{ref}@ex.com"}},
        "Items": [
            {
                "LineNo": n,
                "PartNo": f"P{n}",
                "Quantity": n,
                "UnitPrice": 10.0 * n,
                "TypeGroup": "Physical",
            }
            for n in range(1, lines + 1)
        ],
        "Payments": [{"PaymentCode": 1, "Amount": 30.0, "CurrencyCode": "SEK"}],
    }


class OrderDesk:
    def __init__(self, state: SimState, events: Any) -> None:
        self.state = state
        self.events = events
        self.receiver: dict[str, str] = {}
        self.placements: dict[str, Placement] = {}
        self.statuses: dict[str, list[dict[str, Any]]] = {}
        self.order_ids: dict[str, int] = {}
        self._ids = itertools.count(100_000)
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self.concurrency = asyncio.Semaphore(32)
        self.retry_schedule = ORDER_RETRY_SCHEDULE
        self.timeout_s = 10.0
        state.on_reset(self._reset)

    def _reset(self) -> None:
        for task in self._tasks:
            task.cancel()
        self.placements.clear()
        self.statuses.clear()
        self.order_ids.clear()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/_sim/orders/receiver", self.set_receiver),
            web.post("/_sim/orders", self.place_orders),
            web.get("/_sim/orders", self.list_orders),
            web.get("/_sim/orders/{ref}", self.one_order),
            web.post("/_sim/orders/{ref}/payment", self.payment_received),
            web.post("/commerce/connect/4.0/Order/SendOrderStatus", self.send_order_status),
        ]

    # -- placing orders ---------------------------------------------------------------

    async def set_receiver(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        self.receiver = {k: str(body[k]) for k in ("url", "username", "password")}
        if "concurrency" in body:  # calls in flight at once (checkouts at the same moment)
            self.concurrency = asyncio.Semaphore(int(body["concurrency"]))
        return web.json_response({"url": self.receiver["url"]})

    async def place_orders(self, request: web.Request) -> web.Response:
        if not self.receiver:
            return web.json_response({"error": "no receiver configured"}, status=409)
        body = orjson.loads(await request.read())
        orders = body.get("orders")
        if orders is None:
            prefix = body.get("prefix", "W")
            orders = [sample_order(f"{prefix}{n}") for n in range(int(body["count"]))]
        refs = [self.place(order) for order in orders]
        return web.json_response({"placed": len(refs)})

    def place(self, order: dict[str, Any]) -> str:
        ref = str(order["ClientOrderRef"])
        placement = Placement(ref, order)
        self.placements[ref] = placement
        self.order_ids.setdefault(ref, next(self._ids))
        self._order_received(placement)
        task = asyncio.get_running_loop().create_task(self._deliver(placement))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return ref

    async def _deliver(self, placement: Placement) -> None:
        body = orjson.dumps(placement.order)
        factor = self.state.config.webhook_time_factor
        for delay in (0.0, *self.retry_schedule):
            if delay:
                await asyncio.sleep(delay * factor)
            async with self.concurrency:
                ok, status, answer = await self._post(body)
            placement.attempts.append(
                {"at": time.time(), "ok": ok, "status": status, "answer": answer}
            )
            if ok:
                placement.state = "ok"
                return
        placement.state = "dead"

    async def _post(self, body: bytes) -> tuple[bool, int | None, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        credentials = f"{self.receiver['username']}:{self.receiver['password']}"
        headers = {
            "Authorization": "Basic " + base64.b64encode(credentials.encode()).decode(),
            "Content-Type": "application/json",
        }
        try:
            async with self._session.post(
                self.receiver["url"],
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            ) as response:
                raw = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            return False, None, type(exc).__name__
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError:
            answer = raw.decode(errors="replace")[:200]
        ok = 200 <= response.status < 300 and isinstance(answer, dict)
        ok = ok and answer.get("StatusCode") == "OK"
        return ok, response.status, answer

    async def list_orders(self, request: web.Request) -> web.Response:
        states: dict[str, int] = {}
        for p in self.placements.values():
            states[p.state] = states.get(p.state, 0) + 1
        full = request.query.get("full") == "1"
        body: dict[str, Any] = {"states": states}
        if full:
            body["orders"] = [p.to_dict() for p in self.placements.values()]
        return web.json_response(body)

    async def one_order(self, request: web.Request) -> web.Response:
        ref = request.match_info["ref"]
        placement = self.placements.get(ref)
        if placement is None:
            return web.json_response({"error": "unknown order"}, status=404)
        return web.json_response({**placement.to_dict(), "statuses": self.statuses.get(ref, [])})

    # -- statuses back ----------------------------------------------------------------

    async def send_order_status(self, request: web.Request) -> web.Response:
        if denied := check_auth(self.state, request, _error):
            return denied
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _error(400, "The request body is not valid JSON.")
        if not isinstance(body, dict) or not body.get("OrderStatus"):
            return _error(400, "OrderStatus is required.")
        ref = body.get("ClientOrderRef")
        if not ref and body.get("ErpOrderNo"):
            ref = next(
                (
                    r
                    for r, p in self.placements.items()
                    if p.order.get("ErpOrderNo") == body["ErpOrderNo"]
                ),
                None,
            )
        if not ref:
            return _error(400, "ClientOrderRef or ErpOrderNo is required.")
        if ref not in self.placements:
            return _error(400, f"Order with ClientOrderRef '{ref}' was not found.")
        entry = {
            "OrderStatus": body["OrderStatus"],
            "Infos": body.get("Infos") or [],
            "at": time.time(),
        }
        self.statuses.setdefault(ref, []).append(entry)
        self._raise_event(ref, body["OrderStatus"])
        return web.json_response({"StatusCode": "OK", "Description": ""})

    def _order_received(self, placement: Placement) -> None:
        person = (placement.order.get("SellTo") or {}).get("Person") or {}
        self.events.publish(
            "OrderReceivedEvent",
            {
                "ClientId": self.state.config.event_client_id,
                "ApplicationId": self.state.config.event_application_id,
                "ClientOrderRef": placement.ref,
                "Email": person.get("Email"),
                "CellPhone": person.get("CellPhone"),
                "FirstName": person.get("FirstName"),
                "LastName": person.get("LastName"),
                "Source": "norce-sim",
            },
        )

    async def payment_received(self, request: web.Request) -> web.Response:
        """A payment provider confirmed a payment of the order (raises the event)."""
        ref = request.match_info["ref"]
        placement = self.placements.get(ref)
        if placement is None:
            return web.json_response({"error": "unknown order"}, status=404)
        payment = (placement.order.get("Payments") or [{}])[0]
        self.events.publish(
            "OrderPaymentReceivedEvent",
            {
                "ClientId": self.state.config.event_client_id,
                "ApplicationId": self.state.config.event_application_id,
                "ClientOrderRef": ref,
                "ErpOrderNo": placement.order.get("ErpOrderNo") or None,
                "PaymentCode": payment.get("PaymentCode"),
                "PaymentMethodCode": payment.get("PaymentMethodCode"),
                "PaymentRef": payment.get("PaymentRef"),
                "Amount": payment.get("Amount"),
                "CurrencyCode": payment.get("CurrencyCode"),
            },
        )
        return web.json_response({"ok": True})

    def _raise_event(self, ref: str, status: str) -> None:
        event_type = EVENT_OF_STATUS.get(status)
        if event_type is None:
            return
        order = self.placements[ref].order
        person = (order.get("SellTo") or {}).get("Person") or {}
        body = {
            "ClientId": self.state.config.event_client_id,
            "ApplicationId": self.state.config.event_application_id,
            "OrderId": self.order_ids[ref],
            "OrderNo": str(self.order_ids[ref]),
            "ClientOrderRef": ref,
            "CellPhone": person.get("CellPhone"),
            "FirstName": person.get("FirstName"),
            "LastName": person.get("LastName"),
            "Source": "norce-sim",
        }
        if event_type == "OrderReadyForPickupEvent":
            body["DropPointCode"] = "STORE-1"
        self.events.publish(event_type, body)


def _error(status: int, message: str) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps({"StatusCode": "Failed", "Description": message}),
        content_type="application/json",
    )
