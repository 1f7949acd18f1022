"""The simulator's in-memory state: items per kind, per-item write history, jobs,
tokens, faults, subscriptions, webhook deliveries and call counters.

Tests reach it as ``sim.state``; the control API (``/_sim``) is a thin HTTP view of
the methods here.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from norce_simulator.clock import now_iso
from norce_simulator.config import SimulatorConfig
from norce_simulator.faults import FaultConfig
from norce_simulator.kinds import KINDS, key_of

if TYPE_CHECKING:
    from norce_simulator.events import EventRecord, Subscription
    from norce_simulator.jobs import Job

Row = dict[str, Any]


class SimState:
    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.rng = random.Random()
        self._reset_hooks: list[Callable[[], None]] = []
        self.subscriptions: dict[str, Subscription] = {}
        self._clear()

    def _clear(self) -> None:
        self.items: dict[str, dict[str, Row]] = {kind: {} for kind in KINDS}
        self.history_log: dict[str, dict[str, list[Row]]] = {kind: {} for kind in KINDS}
        # PartNo -> keys, per kind: Query's $expand of a SKU's prices/stock without a scan.
        self.by_part_no: dict[str, dict[str, list[str]]] = {kind: {} for kind in KINDS}
        self.jobs: dict[int, Job] = {}
        self.calls: Counter[str] = Counter()
        self.faults = FaultConfig()
        self.deliveries: list[EventRecord] = []
        self.tokens: dict[str, float] = {}  # access token -> expiry (loop clock)
        self._job_ids = itertools.count(1001)
        self._seq = itertools.count(1)
        self._customer_ids = itertools.count(1)
        self._company_ids = itertools.count(1)
        self.pricelist_ids: dict[str, int] = {}
        # Bumped when an item is inserted or removed, and by a reset: never repeats
        # (Query caches listings by it).
        self.generation = getattr(self, "generation", 0) + 1
        for code in self.config.price_lists:  # the tenant's set-up, not an import
            defaults = {"Id": self.pricelist_id(code), "PriceListCode": code, "IsActive": True}
            self.write("pricelist", code, {}, job_id=None, defaults=defaults, op="setup")

    # -- lifecycle -------------------------------------------------------------------
    def on_reset(self, hook: Callable[[], None]) -> None:
        self._reset_hooks.append(hook)

    def reset(self) -> None:
        """Forget everything (items, jobs, faults, subscriptions, deliveries, tokens)."""
        for hook in self._reset_hooks:
            hook()
        self.subscriptions = {}
        self._clear()

    def next_job_id(self) -> int:
        return next(self._job_ids)

    def next_customer_id(self) -> int:
        return next(self._customer_ids)

    def next_company_id(self) -> int:
        return next(self._company_ids)

    def pricelist_id(self, code: str) -> int:
        """Stable numeric id per price list code (PricelistId in webhook bodies)."""
        if code not in self.pricelist_ids:
            self.pricelist_ids[code] = len(self.pricelist_ids) + 1
        return self.pricelist_ids[code]

    # -- writes ----------------------------------------------------------------------
    def write(
        self,
        kind: str,
        key: str,
        values: Row,
        *,
        job_id: int | None,
        defaults: Row | None = None,
        op: str | None = None,
    ) -> tuple[bool, bool]:
        """Write ``values`` onto an item (creating it from ``defaults`` when new) and
        append the write to the item's history. Returns (inserted, changed)."""
        table = self.items[kind]
        row = table.get(key)
        inserted = row is None
        if row is None:
            row = table[key] = dict(defaults or {})
            self.generation += 1
            changed = True
            part_no = row.get("PartNo", values.get("PartNo"))
            if part_no is not None:  # key field: never changes after insert
                self.by_part_no[kind].setdefault(str(part_no), []).append(key)
        else:
            changed = any(row.get(k, _MISSING) != v for k, v in values.items())
        row.update(values)
        if self.config.record_history:
            entry = {
                "seq": next(self._seq),
                "job_id": job_id,
                "time": now_iso(),
                "op": op or ("insert" if inserted else "update"),
                # an insert records the full new row, an update the fields it wrote
                "values": dict(row) if inserted else dict(values),
            }
            self.history_log[kind].setdefault(key, []).append(entry)
        return inserted, changed

    def edit(self, kind: str, key: str, values: Row) -> Row | None:
        """Change an item's values outside any job, as an edit in Norce's admin would
        (tests make drift with it); None when the item does not exist."""
        row = self.items[kind].get(key)
        if row is None:
            return None
        self.write(kind, key, values, job_id=None, op="edit")
        return row

    def remove(self, kind: str, key: str) -> bool:
        """Delete an item outright (a row lost in Norce); False when it does not exist."""
        row = self.items[kind].pop(key, None)
        if row is None:
            return False
        self.generation += 1
        part_no = row.get("PartNo")
        if part_no is not None:
            keys = self.by_part_no[kind].get(str(part_no), [])
            if key in keys:
                keys.remove(key)
        return True

    def missing_reference(self, kind: str, row: Row) -> str | None:
        """Why Norce would ignore this row silently (None: it would not): a price whose
        SKU or price list does not exist, stock whose SKU does not exist (norce-api.md,
        "Rows Norce ignores"). An inactive SKU or list still exists."""
        if kind in ("price", "stock") and str(row.get("PartNo")) not in self.items["sku"]:
            return f"SKU {row.get('PartNo')} does not exist"
        if kind == "price" and str(row.get("PriceListCode")) not in self.items["pricelist"]:
            return f"price list {row.get('PriceListCode')} does not exist"
        return None

    # -- reads -----------------------------------------------------------------------
    def item(self, kind: str, key: str | Iterable[Any]) -> Row | None:
        return self.items[kind].get(_key(key))

    def list_items(self, kind: str) -> list[Row]:
        return list(self.items[kind].values())

    def history(self, kind: str, key: str | Iterable[Any]) -> list[Row]:
        """Every write of one item, oldest first: {seq, job_id, time, op, values}."""
        return list(self.history_log[kind].get(_key(key), []))

    def events(self) -> list[Row]:
        return [rec.to_dict() for rec in self.deliveries]

    def stats(self) -> Row:
        from norce_simulator.jobs import STATUS_NAMES

        by_status: Counter[str] = Counter(STATUS_NAMES[j.status] for j in self.jobs.values())
        hooks: Counter[str] = Counter(rec.state for rec in self.deliveries)
        return {
            "jobs": {"total": len(self.jobs), "by_status": dict(by_status)},
            "calls": dict(self.calls),
            "items": {kind: len(rows) for kind, rows in self.items.items()},
            "webhooks": {
                "events": len(self.deliveries),
                "ok": hooks["ok"],
                "dead": hooks["dead"],
                "pending": hooks["pending"],
                "failed_attempts": sum(r.failed_attempts for r in self.deliveries),
                "attempts": sum(len(r.attempts) for r in self.deliveries),
            },
        }

    # -- control ---------------------------------------------------------------------
    def seed(self, data: dict[str, list[Row]]) -> dict[str, int]:
        """Write items per kind as given (all given fields), without jobs or webhooks."""
        from norce_simulator.writer import seed_items

        return seed_items(self, data)

    def set_faults(self, faults: FaultConfig | Row) -> FaultConfig:
        self.faults = faults if isinstance(faults, FaultConfig) else FaultConfig(**faults)
        return self.faults

    def set_subscriptions(self, subs: dict[str, Subscription | Row]) -> dict[str, Subscription]:
        from norce_simulator.events import Subscription

        self.subscriptions = {
            name: s if isinstance(s, Subscription) else Subscription.model_validate(s)
            for name, s in subs.items()
        }
        return self.subscriptions

    def expire_tokens(self) -> int:
        """Make every issued token expired (tests of refresh-on-401)."""
        n = len(self.tokens)
        for token in self.tokens:
            self.tokens[token] = 0.0
        return n


_MISSING = object()


def _key(key: str | Iterable[Any]) -> str:
    return key if isinstance(key, str) else "|".join(str(k) for k in key)


__all__ = ["SimState", "key_of"]
