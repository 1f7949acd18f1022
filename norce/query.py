"""Norce Commerce Query: read-only OData v4 over the imported data.

Entities come back as plain dicts because ``$select``/``$expand`` decide their shape;
the page envelope is typed. Lists page by ``@odata.nextLink``, which ``iterate`` follows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urljoin, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from norce.errors import NorceError, NorceNotFound
from norce.http import NorceHttp
from norce.odata import ODataQuery, and_, entity_key, eq, ge, gt, le, lt, ne, not_, or_

# The filter helpers are re-exported so callers can build queries from one import.
__all__ = [
    "ODataPage",
    "ODataQuery",
    "QueryClient",
    "and_",
    "eq",
    "ge",
    "gt",
    "le",
    "lt",
    "ne",
    "not_",
    "or_",
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
        params = query.to_params() if query else None
        response = await self._http.request("GET", self._url(entity_set), params=params)
        return ODataPage.model_validate_json(response.content)

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
