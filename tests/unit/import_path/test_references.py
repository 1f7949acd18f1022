"""The reference checks' pure parts: what each kind refers to, the two-TTL cache, and one
delta's lookups (grouped, never the same reference twice)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agents.imports.references import (
    PRICE_LIST,
    SKU,
    Lookups,
    PairWaiting,
    ReferenceCache,
    Waiting,
    one_ahead,
    references_of,
)
from norce.odata import ODataQuery
from norce.query import ODataPage


class FakeQuery:
    """Answers ``or``-filtered key lookups from sets; records each request."""

    base_url = "https://demo.api-se.norce.tech/commerce/query/2.0/"

    def __init__(self, skus: set[str], lists: set[str]) -> None:
        self.have = {SKU.entity_set: skus, PRICE_LIST.entity_set: lists}
        self.requests: list[tuple[str, dict[str, str]]] = []

    async def pages(self, entity_set: str, query: ODataQuery) -> AsyncIterator[ODataPage]:
        params = query.to_params()
        self.requests.append((entity_set, params))
        asked = [t.split(" eq ")[1].strip("'") for t in params["$filter"].split(" or ")]
        prop = SKU.key_prop if entity_set == SKU.entity_set else PRICE_LIST.key_prop
        found = [{prop: v} for v in asked if v in self.have[entity_set]]
        yield ODataPage.model_validate({"value": found})


def price(part: str, lst: str = "STD") -> dict[str, Any]:
    return {"PartNo": part, "PriceListCode": lst, "QuantityBreak": 1, "PriceSale": 1.0}


def test_what_each_kind_refers_to() -> None:
    assert references_of("price", price("A", "EUR")) == [(SKU, "A"), (PRICE_LIST, "EUR")]
    assert references_of("stock", {"PartNo": "A", "WarehouseCode": "W"}) == [(SKU, "A")]
    assert references_of("product", {"Code": "P"}) == []
    assert references_of("customer", {"Code": "C"}) == []


def test_cache_trusts_found_long_and_missing_briefly() -> None:
    now = [0.0]
    cache = ReferenceCache(3600, 30, clock=lambda: now[0])
    cache.put((SKU, "A"), True)
    cache.put((SKU, "B"), False)
    now[0] = 29
    assert (cache.get((SKU, "A")), cache.get((SKU, "B"))) == (True, False)
    assert cache.get((SKU, "B"), trust_missing=False) is None  # the re-check asks again
    now[0] = 31
    assert (cache.get((SKU, "A")), cache.get((SKU, "B"))) == (True, None)
    cache.put((SKU, "C"), False)
    assert cache.forget_missing(PRICE_LIST) == 0
    assert cache.forget_missing(SKU) == 1 and cache.get((SKU, "C")) is None
    small = ReferenceCache(10, 10, max_entries=2)
    for name in "XYZ":
        small.put((SKU, name), True)
    assert small.get((SKU, "X")) is None and small.get((SKU, "Z")) is True


async def test_one_delta_asks_each_reference_once_in_groups() -> None:
    query = FakeQuery({f"S{n}" for n in range(250)}, {"STD"})
    lookups = Lookups(query, ReferenceCache(3600, 30), group_size=100)  # type: ignore[arg-type]
    rows = [price(f"S{n}") for n in range(300)] + [price("S1", "EUR")]
    reasons = await lookups.missing("price", rows)
    assert reasons[:250] == [None] * 250
    assert reasons[250:300] == [f"SKU S{n} not in Norce" for n in range(250, 300)]
    assert reasons[300] == "price list EUR not in Norce"
    # 300 distinct SKUs in groups of 100, 2 price lists in one: 4 requests, key only.
    assert lookups.query_calls == len(query.requests) == 4
    assert all(params["$select"] in ("PartNo", "Agreement") for _, params in query.requests)
    # The same rows again in this delta: no request at all.
    assert await lookups.missing("price", rows) == reasons
    assert lookups.query_calls == 4
    # The next delta: found SKUs come from the cache; missing ones are asked again only
    # once their brief TTL is over (here: a fresh session that distrusts them).
    fresh = Lookups(query, lookups.cache, group_size=100, fresh=True)  # type: ignore[arg-type]
    query.have[SKU.entity_set].add("S260")
    again = await fresh.missing("price", rows)
    assert again[260] is None and fresh.query_calls == 2  # 50 SKUs + 1 price list


def test_waiting_keeps_counts_examples_and_missing_references() -> None:
    waiting = Waiting()
    report: PairWaiting = waiting.begin()
    for n in range(15):
        Waiting.add(report, f"erp|price|S{n}|STD|1", f"SKU S{n} not in Norce", [(SKU, f"S{n}")])
    waiting.finish(("erp", "price"), report)
    view = waiting.view()["erp|price"]
    assert view["count"] == 15 and len(view["examples"]) == 10
    assert waiting.waiting_on(SKU) == [("erp", "price")] and waiting.waiting_on(PRICE_LIST) == []
    waiting.finish(("erp", "price"), waiting.begin())  # a delta that found none waiting
    assert waiting.view() == {} and waiting.count(("erp", "price")) == 0


async def chunks_of(log: list[str], n: int) -> AsyncIterator[int]:
    for i in range(1, n + 1):
        log.append(f"read {i}")
        yield i


async def test_the_next_chunk_is_checked_while_the_caller_handles_the_last() -> None:
    log: list[str] = []
    started = {i: asyncio.Event() for i in range(1, 4)}
    running = []

    async def check(chunk: int) -> int:
        running.append(chunk)
        assert len(running) == 1, "one check at a time (the session's memo)"
        log.append(f"check {chunk}")
        started[chunk].set()
        await asyncio.sleep(0)
        running.remove(chunk)
        return chunk * 10

    results = []
    async for result in one_ahead(chunks_of(log, 3), check):
        chunk = result // 10
        if chunk < 3:  # the caller POSTs; meanwhile the next chunk's check starts
            await asyncio.wait_for(started[chunk + 1].wait(), 5)
        log.append(f"post {chunk}")
        results.append(result)
    assert results == [10, 20, 30]
    assert log.index("check 2") < log.index("post 1") and log.index("check 3") < log.index("post 2")


async def test_a_failed_check_surfaces_in_order_and_leaving_early_cancels_the_next() -> None:
    async def check(chunk: int) -> int:
        if chunk == 2:
            raise RuntimeError("Query unreachable")
        return chunk

    got = []
    with pytest.raises(RuntimeError, match="unreachable"):
        async for result in one_ahead(chunks_of([], 3), check):
            got.append(result)
    assert got == [1]  # chunk 1 was handed out; nothing after the failed check

    cancelled, waiting = asyncio.Event(), asyncio.Event()

    async def slow(chunk: int) -> int:
        if chunk == 2:
            waiting.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise
        return chunk

    async with contextlib.aclosing(one_ahead(chunks_of([], 3), slow)) as ahead:
        async for result in ahead:
            assert result == 1
            await asyncio.wait_for(waiting.wait(), 5)  # the caller POSTs; chunk 2 is looked up
            break  # the POST failed: the delta stops
    await asyncio.wait_for(cancelled.wait(), 5)
