"""Query: read-only OData v4 over what imports (and seeds) wrote.

Entity sets: Products/ProductSkus (key PartNo; navigation PriceLists, OnHands),
Products/ProductSkuPriceLists, Products/Products (key Code; navigation Skus),
Products/SupplierProductSkus, Customers/Customers (key Id, or Code as a string),
Application/ClientPriceLists (key Id, or the code as a string; Query names it Agreement).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from norce_simulator.identity import check_auth
from norce_simulator.kinds import KINDS
from norce_simulator.odata import (
    Expand,
    ODataError,
    key_disjunction,
    key_terms,
    parse_expand,
    parse_filter,
    parse_int,
    parse_select,
    project,
)
from norce_simulator.ratelimit import TokenBucket
from norce_simulator.state import Row, SimState

BASE = "/commerce/query/2.0/"
_PATH = re.compile(r"^(?P<set>[A-Za-z]+/[A-Za-z]+)(?:\((?:[A-Za-z]+=)?(?P<key>[^)]*)\))?$")


@dataclass(frozen=True)
class EntitySet:
    kind: str
    int_key: str | None  # key property when the key literal is a number
    str_key: str | None  # key property when the key literal is a string
    navs: dict[str, tuple[str, str, str]]  # nav name -> (kind, their field, our field)
    # Query's names for state fields where they differ from Connect's (state name ->
    # Query name): applied to this set's rows, $select and $filter.
    renames: dict[str, str] | None = None


ENTITY_SETS = {
    "Products/ProductSkus": EntitySet(
        "sku", None, "PartNo",
        {"PriceLists": ("price", "PartNo", "PartNo"), "OnHands": ("stock", "PartNo", "PartNo")},
    ),
    # Query's price rows say QtyBreak where Connect says QuantityBreak (norce-api.md).
    "Products/ProductSkuPriceLists": EntitySet(
        "price", None, None, {}, {"QuantityBreak": "QtyBreak"}
    ),
    "Products/Products": EntitySet(
        "product", None, "Code", {"Skus": ("sku", "ProductCode", "Code")}
    ),
    "Products/SupplierProductSkus": EntitySet("supplier", None, None, {}),
    "Customers/Customers": EntitySet("customer", "Id", "Code", {}),
    # Query names a company's code CompanyCode (norce-api.md, "Companies").
    "Customers/CustomerCompanies": EntitySet("company", "Id", "Code", {}, {"Code": "CompanyCode"}),
    # In Query a price list's code is its Agreement (norce-api.md, "Rows Norce ignores").
    "Application/ClientPriceLists": EntitySet(
        "pricelist", "Id", "PriceListCode", {}, {"PriceListCode": "Agreement"}
    ),
}  # fmt: skip


def odata_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    code = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound"}.get(
        status, str(status)
    )
    return web.Response(
        status=status,
        body=orjson.dumps({"error": {"code": code, "message": message}}),
        content_type="application/json",
        headers=headers,
    )


def _json(body: Any) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def _parse_key(text: str) -> str | int:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    try:
        return int(text)
    except ValueError:
        raise ODataError(f"bad key literal {text!r}") from None


def _eq_any(value: Any, values: list[Any]) -> bool:
    # as $filter's eq: a bool never equals a number
    return any(value == v and isinstance(value, bool) == isinstance(v, bool) for v in values)


def _to_state_names(es: EntitySet, text: str | None) -> str | None:
    """``$select``/``$filter`` with Query's names turned into the state's; string
    literals stay as they are (a price list coded 'Agreement-1' is looked up as such)."""
    if text is None or not es.renames:
        return text
    for state_name, query_name in es.renames.items():
        text = re.sub(
            rf"'(?:[^']|'')*'|\b{query_name}\b",
            lambda m, new=state_name: m[0] if m[0].startswith("'") else new,
            text,
        )
    return text


def _renamed(es: EntitySet, row: Row) -> Row:
    if not es.renames:
        return row
    return {es.renames.get(k, k): v for k, v in row.items()}


def _hashable(value: Any) -> Any:
    return value if isinstance(value, str | int | float) and not isinstance(value, bool) else None


class QueryHandlers:
    def __init__(self, state: SimState) -> None:
        self.state = state
        rate = state.config.query_rate_limit_per_s
        self._bucket = TokenBucket(rate, max(1.0, rate)) if rate else None
        # kind -> (state generation, its rows): paging a large set without a filter
        # slices one list instead of copying every row reference for each page.
        self._listing: dict[str, tuple[int, list[Row]]] = {}

    def routes(self) -> list[web.RouteDef]:
        return [web.get(BASE + "{tail:.+}", self.handle)]

    async def handle(self, request: web.Request) -> web.Response:
        if denied := check_auth(self.state, request, odata_error):
            return denied
        if self._bucket is not None and (wait := self._bucket.take()):
            return odata_error(429, "Too many requests.", {"Retry-After": str(math.ceil(wait))})
        m = _PATH.match(request.match_info["tail"])
        if m is None or m["set"] not in ENTITY_SETS:
            return odata_error(404, f"Resource not found: {request.match_info['tail']}")
        name, es = m["set"], ENTITY_SETS[m["set"]]
        q = request.query
        filter_text = _to_state_names(es, q.get("$filter"))
        try:
            # A batch lookup by key in its usual form is answered from the index without
            # building a predicate; any other filter is parsed (and refused) as before.
            keyed = self._key_lookup(es, filter_text, fast=True)
            flt = None if keyed is not None else parse_filter(filter_text)
            select = parse_select(_to_state_names(es, q.get("$select")))
            expands = parse_expand(q.get("$expand"))
            for exp in expands:
                if exp.name not in es.navs:
                    raise ODataError(f"$expand: {name} has no navigation property {exp.name}")
            if m["key"] is not None:
                return self._single(es, name, _parse_key(m["key"]), select, expands)
            skip = parse_int("$skip", q.get("$skip"), 0) or 0
            top = parse_int("$top", q.get("$top"))
        except ODataError as exc:
            return odata_error(400, str(exc))

        # Filter and page the live rows; only the page is copied (by project()).
        if keyed is None and flt is not None:
            keyed = self._key_lookup(es, filter_text, fast=False)
        if keyed is not None:
            rows = self._by_keys(es, *keyed)
        else:
            if flt is not None:
                rows = [r for r in self.state.items[es.kind].values() if flt(r)]
            else:
                rows = self._all(es.kind)
        total = len(rows)
        limit = (
            self.state.config.page_size if top is None else min(top, self.state.config.page_size)
        )
        page = rows[skip : skip + limit]
        expander = self._expander(expands, es)
        origin = f"{request.scheme}://{request.host}"
        body: dict[str, Any] = {"@odata.context": f"{origin}{BASE}$metadata#{name}"}
        if q.get("$count", "").lower() == "true":
            body["@odata.count"] = total
        body["value"] = [_renamed(es, expander(project(r, select), r)) for r in page]
        remaining_top = None if top is None else top - len(page)
        if len(page) == limit and skip + len(page) < total and remaining_top != 0:
            params = dict(q)
            params["$skip"] = str(skip + len(page))
            if remaining_top is not None:
                params["$top"] = str(remaining_top)
            body["@odata.nextLink"] = str(request.url.with_query(params))
        return _json(body)

    def _all(self, kind: str) -> list[Row]:
        generation = self.state.generation
        held = self._listing.get(kind)
        if held is None or held[0] != generation:
            held = self._listing[kind] = (generation, list(self.state.items[kind].values()))
        return held[1]

    @staticmethod
    def _key_lookup(es: EntitySet, text: str | None, *, fast: bool) -> tuple[str, list[Any]] | None:
        """(key property, literals) when the filter is only ``Key eq 'a' or Key eq 'b'
        ...`` (a batch lookup); None for any other filter. ``fast``: only the usual form,
        matched in one pass (the filter has not been parsed yet)."""
        for prop in (es.str_key, es.int_key):
            if prop is None:
                continue
            values = key_terms(text, prop) if fast else key_disjunction(text, prop)
            if values is not None:
                return prop, values
        return None

    def _by_keys(self, es: EntitySet, prop: str, values: list[Any]) -> list[Row]:
        """Rows of a batch lookup by key, in the order asked, without scanning the whole
        set when the key is the state's own (an index, as a database has)."""
        table = self.state.items[es.kind]
        if KINDS[es.kind].key_fields == (prop,):  # the state's own keys
            out: list[Row] = []
            seen: set[int] = set()
            for v in values:  # each literal checked against its own row: linear
                row = table.get(str(v))
                if row is not None and id(row) not in seen and _eq_any(row.get(prop), [v]):
                    seen.add(id(row))
                    out.append(row)
            return out
        wanted = {v for v in values if not isinstance(v, bool)}
        return [r for r in table.values() if _hashable(r.get(prop)) in wanted]

    def _single(
        self,
        es: EntitySet,
        name: str,
        key: str | int,
        select: list[str] | None,
        expands: list[Expand],
    ) -> web.Response:
        if isinstance(key, int) and es.int_key is None:
            key = str(key)  # ProductSkus(100011) means the PartNo '100011'
        if es.str_key is None:
            raise ODataError(f"{name} cannot be read by key")
        table = self.state.items[es.kind]
        if isinstance(key, str):  # string keys are the state's own keys
            row = table.get(key)
        else:
            row = next((r for r in table.values() if r.get(es.int_key) == key), None)
        if row is None:
            return odata_error(404, f"{name}({key!r}) not found.")
        return _json(_renamed(es, self._expander(expands, es)(project(row, select), row)))

    def _related(self, kind: str, theirs: str, value: Any) -> list[Row]:
        if theirs == "PartNo":  # indexed: a SKU's prices and stock
            table = self.state.items[kind]
            keys = self.state.by_part_no[kind].get(str(value), [])
            rows = [table[k] for k in keys]
        else:
            rows = [r for r in self.state.items[kind].values() if r.get(theirs) == value]
        return rows

    def _expander(self, expands: list[Expand], es: EntitySet) -> Callable[[Row, Row], Row]:
        """Adds the expanded navigation properties to a projected row."""

        def expand(out: Row, row: Row) -> Row:
            for exp in expands:
                kind, theirs, ours = es.navs[exp.name]
                related = self._related(kind, theirs, row.get(ours))
                if exp.filter is not None:
                    related = [r for r in related if exp.filter(r)]
                end = None if exp.top is None else exp.skip + exp.top
                out[exp.name] = [project(r, exp.select) for r in related[exp.skip : end]]
            return out

        return expand
