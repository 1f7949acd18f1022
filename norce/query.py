"""Norce Commerce Query: read-only OData v4 over the imported data.

Entities come back as plain dicts because ``$select``/``$expand`` decide their shape;
the page envelope is typed. Lists page by ``@odata.nextLink``, which ``iterate`` follows.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, urlencode, urljoin, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from norce.errors import NorceError, NorceNotFound
from norce.http import NorceHttp
from norce.odata import (
    Expr,
    ODataQuery,
    Value,
    and_,
    entity_key,
    eq,
    ge,
    gt,
    le,
    literal,
    lt,
    ne,
    not_,
    or_,
)

# The filter helpers are re-exported so callers can build queries from one import.
__all__ = [
    "ODataPage",
    "ODataQuery",
    "QueryClient",
    "and_",
    "eq",
    "ge",
    "gt",
    "key_filter",
    "key_url_length",
    "le",
    "lt",
    "ne",
    "not_",
    "or_",
    "plan_key_groups",
]


class ODataPage(BaseModel):
    """One page of an OData collection."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    context: str | None = Field(default=None, alias="@odata.context")
    value: list[dict[str, Any]]
    next_link: str | None = Field(default=None, alias="@odata.nextLink")
    count: int | None = Field(default=None, alias="@odata.count")


class QueryClient:
    def __init__(self, http: NorceHttp, query_url: str) -> None:
        self._http = http
        self._base = query_url if query_url.endswith("/") else query_url + "/"

    @property
    def base_url(self) -> str:
        return self._base

    def _url(self, entity_set: str) -> str:
        return self._base + entity_set.strip("/")

    async def get_entity(
        self,
        entity_set: str,
        key: str | int,
        query: ODataQuery | None = None,
        *,
        missing_ok: bool = True,
    ) -> dict[str, Any] | None:
        """One entity by key, e.g. ``("Products/ProductSkus", "100011")``.

        A missing key answers None (the export path turns "gone" into a deletion record;
        an exception would make the common case look exceptional). With
        ``missing_ok=False`` it raises ``NorceNotFound`` instead.
        """
        url = self._url(entity_set) + entity_key(key)
        params = query.to_params() if query else None
        try:
            response = await self._http.request("GET", url, params=params)
        except NorceNotFound:
            if missing_ok:
                return None
            raise
        data = response.json()
        if not isinstance(data, dict):
            raise NorceError(f"{entity_set}{entity_key(key)} did not answer an object", url=url)
        return data

    async def page(self, entity_set: str, query: ODataQuery | None = None) -> ODataPage:
        """The first page of a collection."""
        response = await self._http.request("GET", self.url_of(entity_set, query))
        return ODataPage.model_validate_json(response.content)

    def url_of(self, entity_set: str, query: ODataQuery | None = None) -> str:
        """The request URL, encoded here as key_url_length counts it: httpx parses a
        finished URL once, while ``params=`` costs it a second parse of a long or-chain."""
        url = self._url(entity_set)
        if query is not None and (params := query.to_params()):
            url += "?" + "&".join(f"{_quote_plus(k)}={_quote_plus(v)}" for k, v in params.items())
        return url

    async def next_page(self, next_link: str) -> ODataPage:
        """The page behind an ``@odata.nextLink`` (absolute or relative to the base)."""
        url = urljoin(self._base, next_link)
        # Never send our bearer token to another host because a payload said so.
        if urlsplit(url)[:2] != urlsplit(self._base)[:2]:
            raise NorceError(f"refusing @odata.nextLink to another origin: {url.split('?')[0]}")
        response = await self._http.request("GET", url)
        return ODataPage.model_validate_json(response.content)

    async def pages(
        self, entity_set: str, query: ODataQuery | None = None, *, max_pages: int | None = None
    ) -> AsyncIterator[ODataPage]:
        page = await self.page(entity_set, query)
        count = 1
        yield page
        while page.next_link and (max_pages is None or count < max_pages):
            page = await self.next_page(page.next_link)
            count += 1
            yield page

    async def iterate(
        self, entity_set: str, query: ODataQuery | None = None, *, max_pages: int | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Every entity of the collection, following ``@odata.nextLink`` lazily."""
        async for page in self.pages(entity_set, query, max_pages=max_pages):
            for entity in page.value:
                yield entity


# -- batch lookups by key: one ``Key eq a or Key eq b ...`` request per group ----------


# Characters quote_plus leaves as they are.
_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*")
_NOT_PLAIN_SPACE_OR_QUOTE = re.compile(r"[^A-Za-z0-9_.~ '-]")


def _quote_plus(text: str) -> str:
    """``quote_plus(text)``; a key filter (plain keys, spaces, quotes) without its
    per-character Python loop, which cost a fifth of a reference check's CPU."""
    if _NOT_PLAIN_SPACE_OR_QUOTE.search(text) is None:
        return text.replace("'", "%27").replace(" ", "+")
    return quote_plus(text)


@dataclass(frozen=True)
class _AnyOf(Expr):
    """``prop eq v1 or prop eq v2 ...`` as ``or_(*(eq(prop, v) ...))`` renders it, in
    one pass (a reference check renders 10,000 such terms; one object per term cost
    a tenth of its CPU)."""

    name: str
    values: tuple[Value, ...]

    def to_odata(self) -> str:
        head = f"{self.name} eq "
        return " or ".join([head + literal(value) for value in self.values])

    def _operand(self) -> str:
        return f"({self.to_odata()})" if len(self.values) > 1 else self.to_odata()


def key_filter(query: ODataQuery, prop: str, values: Sequence[Value]) -> ODataQuery:
    """``query`` with ``prop eq v1 or prop eq v2 ...`` ANDed into its filter (Norce's
    Query is documented for ``or`` chains; the OData 4.01 ``in`` operator is not)."""
    if not values:
        return query.filter(or_())  # refused as or_ refuses it
    eq(prop, values[0]).to_odata()  # a bad property path or value is refused here
    return query.filter(_AnyOf(prop, tuple(values)))


def key_url_length(
    base_url: str, entity_set: str, query: ODataQuery, prop: str, values: Sequence[Value]
) -> int:
    """Length of the request URL as httpx sends it (``quote_plus`` encoding)."""
    params = key_filter(query, prop, values).to_params()
    return len(base_url) + len(entity_set) + 1 + len(urlencode(params, quote_via=quote_plus))


def plan_key_groups(
    base_url: str,
    entity_set: str,
    query: ODataQuery,
    prop: str,
    values: Iterable[Value],
    *,
    group_size: int,
    max_url: int,
) -> list[list[Value]]:
    """Distinct values cut into groups of at most ``group_size`` whose request URL stays
    within ``max_url`` characters (a value too long even alone gets a group of its own;
    Query will refuse it as it would refuse the single lookup)."""
    if group_size < 1:
        raise ValueError("group_size must be >= 1")
    ids = list(dict.fromkeys(values))
    if not ids:
        return []

    plain_prop = _PLAIN.fullmatch(prop) is not None

    def term_length(value: Value) -> int:
        # ``prop eq 'value'``: plain text encodes to itself, the quotes to %27 and the
        # spaces to +; anything else is encoded to count it.
        if plain_prop and isinstance(value, str) and _PLAIN.fullmatch(value):
            return len(prop) + len(value) + 10  # "+eq+%27" and "%27"
        return len(quote_plus(eq(prop, value).to_odata()))

    # Fixed part (base, set, $expand...) once; each term adds its encoded length and
    # "+or+". The 6 covers parentheses round the or-chain when the query has a filter.
    fixed = key_url_length(base_url, entity_set, query, prop, ids[:1]) - term_length(ids[0]) + 6
    groups: list[list[Value]] = []
    current: list[Value] = []
    length = fixed
    for value in ids:
        term = term_length(value) + (len("+or+") if current else 0)
        if current and (len(current) >= group_size or length + term > max_url):
            groups.append(current)
            current, length = [], fixed
            term -= len("+or+")
        current.append(value)
        length += term
    groups.append(current)
    return groups
