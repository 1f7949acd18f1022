"""Reference lookups (the import path's check before a delta) against the simulator over
HTTP: several groups in flight, never more than the bound, and Norce's rate limit waited
out (429 + Retry-After) without a reference wrongly reported missing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from agents.imports.references import Lookups, ReferenceCache
from norce.odata import ODataQuery
from norce.query import ODataPage, QueryClient


class InFlight:
    """The Query client, counting the lookups in flight at once."""

    def __init__(self, query: QueryClient) -> None:
        self.query = query
        self.base_url = query.base_url
        self.now = self.peak = 0
        self.events: list[tuple[str, str]] = []  # (entity set, "start" | "end")

    async def pages(self, entity_set: str, query: ODataQuery) -> AsyncIterator[ODataPage]:
        self.now += 1
        self.peak = max(self.peak, self.now)
        self.events.append((entity_set, "start"))
        try:
            async for page in self.query.pages(entity_set, query):
                yield page
        finally:
            self.now -= 1
            self.events.append((entity_set, "end"))


def price(part_no: str, price_list: str = "STD") -> dict[str, Any]:
    return {"PartNo": part_no, "PriceListCode": price_list, "QuantityBreak": 1}


async def test_lookups_run_side_by_side_within_the_bound_and_wait_out_rate_limits(
    start_sim, make_client
) -> None:
    sim = await start_sim(query_rate_limit_per_s=20)
    sim.state.seed({"sku": [{"PartNo": f"S-{n:03d}"} for n in range(400)]})
    norce = make_client(sim)
    query = InFlight(norce.query)
    lookups = Lookups(query, ReferenceCache(3600, 30), group_size=10, concurrency=4)  # type: ignore[arg-type]
    rows = [price(f"S-{n:03d}") for n in range(400)] + [price("S-999"), price("S-001", "B2B")]

    reasons = await lookups.missing("price", rows)

    assert reasons[:400] == [None] * 400  # a 429 never turns into "not in Norce"
    assert reasons[400:] == ["SKU S-999 not in Norce", "price list B2B not in Norce"]
    # 401 SKUs in groups of 10 and both price lists in one: 42 answered lookups, up to
    # 4 at once (the SKUs' and the price lists' groups share the bound).
    assert lookups.query_calls == 42
    assert query.peak == 4
    # The price lists' lookup does not wait for every SKU group to finish first.
    list_start = query.events.index(("Application/ClientPriceLists", "start"))
    last_sku_end = max(i for i, e in enumerate(query.events) if e[1] == "end" and "Sku" in e[0])
    assert list_start < last_sku_end
    # Norce's limit (20/s) refused some of them first: each was asked again after the
    # Retry-After it was given, not dropped.
    asked = sim.state.calls["query:Products/ProductSkus"]
    asked += sim.state.calls["query:Application/ClientPriceLists"]
    assert asked > 42
