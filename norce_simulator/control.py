"""The test-only control API under /_sim (no auth): reset, seed, faults,
subscriptions, stats, items (read, edit, delete: drift made outside any job), history,
events, token expiry."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError

from norce_simulator.events import EVENT_TYPES
from norce_simulator.kinds import KINDS, ItemError
from norce_simulator.state import SimState


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def _bad(message: str) -> web.Response:
    return _json({"error": message}, 400)


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    return orjson.loads(raw) if raw.strip() else {}


class ControlHandlers:
    def __init__(self, state: SimState) -> None:
        self.state = state

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/_sim/reset", self.reset),
            web.post("/_sim/seed", self.seed),
            web.get("/_sim/faults", self.get_faults),
            web.put("/_sim/faults", self.put_faults),
            web.post("/_sim/faults", self.put_faults),
            web.get("/_sim/subscriptions", self.get_subscriptions),
            web.put("/_sim/subscriptions", self.put_subscriptions),
            web.post("/_sim/subscriptions", self.put_subscriptions),
            web.get("/_sim/stats", self.stats),
            web.get("/_sim/items/{kind}", self.items),
            web.patch("/_sim/items/{kind}", self.edit_item),
            web.delete("/_sim/items/{kind}", self.delete_item),
            web.get("/_sim/history/{kind}", self.history),
            web.get("/_sim/events", self.events),
            web.get("/_sim/jobs", self.jobs),
            web.post("/_sim/tokens/expire", self.expire_tokens),
        ]

    async def reset(self, request: web.Request) -> web.Response:
        self.state.reset()
        return _json({"ok": True})

    async def seed(self, request: web.Request) -> web.Response:
        try:
            data = await _body(request)
            if not isinstance(data, dict):
                return _bad("body must be an object of kind -> list of items")
            return _json({"seeded": self.state.seed(data)})
        except (orjson.JSONDecodeError, ItemError, ValueError) as exc:
            return _bad(str(exc))

    async def get_faults(self, request: web.Request) -> web.Response:
        return _json(self.state.faults.model_dump())

    async def put_faults(self, request: web.Request) -> web.Response:
        try:
            faults = self.state.set_faults(await _body(request))
        except (orjson.JSONDecodeError, ValidationError, TypeError) as exc:
            return _bad(str(exc))
        return _json(faults.model_dump())

    async def get_subscriptions(self, request: web.Request) -> web.Response:
        return _json({k: v.model_dump() for k, v in self.state.subscriptions.items()})

    async def put_subscriptions(self, request: web.Request) -> web.Response:
        try:
            data = await _body(request)
            unknown = [k for k in data if k not in EVENT_TYPES]
            if unknown:
                return _bad(f"unknown event type {unknown[0]}; known: {', '.join(EVENT_TYPES)}")
            subs = self.state.set_subscriptions(data)
        except (orjson.JSONDecodeError, ValidationError, AttributeError) as exc:
            return _bad(str(exc))
        return _json({k: v.model_dump() for k, v in subs.items()})

    async def stats(self, request: web.Request) -> web.Response:
        return _json(self.state.stats())

    def _kind(self, request: web.Request) -> str | None:
        kind = request.match_info["kind"]
        return kind if kind in KINDS else None

    async def items(self, request: web.Request) -> web.Response:
        kind = self._kind(request)
        if kind is None:
            return _json({"error": f"unknown kind; kinds: {', '.join(KINDS)}"}, 404)
        if "key" in request.query:
            item = self.state.item(kind, request.query["key"])
            if item is None:
                return _json({"error": "no such item"}, 404)
            return _json(item)
        rows = self.state.list_items(kind)
        return _json({"kind": kind, "count": len(rows), "items": rows})

    async def edit_item(self, request: web.Request) -> web.Response:
        """``PATCH /_sim/items/price?key=1001|STD|1`` with ``{"PriceSale": 5}``: the values
        are written onto the item outside any job (no webhook)."""
        kind = self._kind(request)
        if kind is None or "key" not in request.query:
            return _bad("give a known kind and ?key=")
        try:
            values = await _body(request)
        except orjson.JSONDecodeError as exc:
            return _bad(str(exc))
        if not isinstance(values, dict):
            return _bad("body must be an object of field -> value")
        keys = set(KINDS[kind].key_fields) & values.keys()
        if keys:
            return _bad(f"key fields cannot change: {', '.join(sorted(keys))}")
        row = self.state.edit(kind, request.query["key"], values)
        if row is None:
            return _json({"error": "no such item"}, 404)
        return _json(row)

    async def delete_item(self, request: web.Request) -> web.Response:
        """``DELETE /_sim/items/price?key=1001|STD|1``: the item is gone from Norce."""
        kind = self._kind(request)
        if kind is None or "key" not in request.query:
            return _bad("give a known kind and ?key=")
        if not self.state.remove(kind, request.query["key"]):
            return _json({"error": "no such item"}, 404)
        return _json({"deleted": request.query["key"]})

    async def history(self, request: web.Request) -> web.Response:
        kind = self._kind(request)
        if kind is None:
            return _json({"error": f"unknown kind; kinds: {', '.join(KINDS)}"}, 404)
        if "key" in request.query:
            key = request.query["key"]
            return _json({"kind": kind, "key": key, "history": self.state.history(kind, key)})
        return _json({"kind": kind, "history": self.state.history_log[kind]})

    async def events(self, request: web.Request) -> web.Response:
        return _json(self.state.events())

    async def jobs(self, request: web.Request) -> web.Response:
        return _json(
            [
                {
                    **job.to_api(),
                    "Kind": job.kind,
                    "Endpoint": job.endpoint,
                    "AccountId": job.header.AccountId,
                    "FullFile": job.header.FullFile,
                    "Hung": job.hung,
                }
                for job in self.state.jobs.values()
            ]
        )

    async def expire_tokens(self, request: web.Request) -> web.Response:
        return _json({"expired": self.state.expire_tokens()})
