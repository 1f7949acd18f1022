"""Norce Commerce Connect: asynchronous imports and the jobs they create.

Import bodies are streamed from (async) iterators. Retrying a POST needs the body again,
and a one-shot iterator can only be read once, so:

* pass a **list/tuple**, or a **factory** (a zero-argument callable returning a fresh
  iterable or async iterable), and failed attempts (429, 5xx, timeouts) are re-streamed;
* pass an iterator or async generator directly, and the import is sent exactly once,
  with no retry: a failure raises and the caller decides (e.g. keep the keys pending).

Retrying an import may create a second job with the same rows if the first attempt
reached Norce before failing; imports set values, so a repeat is harmless.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any

import orjson
from pydantic import TypeAdapter

from norce.connect_header import ConnectHeader
from norce.errors import NorceError
from norce.http import BodyFactory, NorceHttp
from norce.jobs import Job, JobLogEntry, JobResponse, JobStatus
from norce.jsonstream import DEFAULT_CHUNK_SIZE, Item, Items, json_array_chunks
from norce.retry import RetryPolicy

ItemsFactory = Callable[[], Items]
ItemsSource = Items | ItemsFactory

_JOBS = TypeAdapter(list[Job])
_LOG = TypeAdapter(list[JobLogEntry])


class ImportKind(StrEnum):
    """Connect import endpoints, relative to the Connect base URL."""

    PRODUCTS = "Product/ImportProducts"
    SKU_PRICE_LISTS = "Product/ImportSkuPriceLists"
    ONHANDS = "Product/ImportOnhands"
    PRICE_LISTS = "Product/ImportPriceLists"
    CUSTOMERS = "Customer/ImportCustomers"
    COMPANIES = "Customer/ImportCompanies"
    SUPPLIER_PRODUCTS = "Supplier/ImportProducts"


class JobTimeout(NorceError):
    """``wait_for_job`` gave up before the job reached a final status."""

    def __init__(self, message: str, *, job: Job | None) -> None:
        super().__init__(message)
        self.job = job


class ConnectClient:
    def __init__(
        self,
        http: NorceHttp,
        connect_url: str,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        job_path_prefix: str = "",
    ) -> None:
        self._http = http
        self._job = job_path_prefix
        self._base = connect_url if connect_url.endswith("/") else connect_url + "/"
        self._chunk_size = chunk_size

    def _url(self, path: str) -> str:
        return self._base + path.lstrip("/")

    # -- imports -------------------------------------------------------------------

    async def import_items(
        self,
        kind: ImportKind | str,
        header: ConnectHeader,
        items: ItemsSource,
        *,
        retry: RetryPolicy | None = None,
    ) -> JobResponse:
        """POST ``items`` as a streamed JSON array to an import endpoint.

        ``kind`` is an ``ImportKind`` or a path such as ``"Product/ImportOnhands"``.
        Returns the JobResponse (``job_id`` plus the validation summary); see the module
        docstring for which ``items`` can be retried. ``retry`` overrides the client's
        policy (``NO_RETRY``: the caller decides, e.g. after asking ``Job/List``).
        """
        body = self._body(items)
        response = await self._http.request(
            "POST",
            self._url(str(kind)),
            headers={**header.as_headers(), "Content-Type": "application/json"},
            body=body,
            retry=retry,
        )
        return JobResponse.model_validate_json(response.content)

    def _body(self, items: ItemsSource) -> BodyFactory | AsyncIterator[bytes]:
        if isinstance(items, str | bytes | Mapping):
            raise TypeError("items must be an iterable of items, not a single item or text")
        chunk = self._chunk_size
        if isinstance(items, Sequence):
            return lambda: json_array_chunks(items, chunk_size=chunk)
        if callable(items) and not isinstance(items, Iterable | AsyncIterable):
            factory: ItemsFactory = items
            return lambda: json_array_chunks(factory(), chunk_size=chunk)
        return json_array_chunks(items, chunk_size=chunk)  # one-shot: no retries

    async def import_products(self, header: ConnectHeader, items: ItemsSource) -> JobResponse:
        return await self.import_items(ImportKind.PRODUCTS, header, items)

    async def import_sku_price_lists(
        self, header: ConnectHeader, items: ItemsSource
    ) -> JobResponse:
        return await self.import_items(ImportKind.SKU_PRICE_LISTS, header, items)

    async def import_onhands(self, header: ConnectHeader, items: ItemsSource) -> JobResponse:
        return await self.import_items(ImportKind.ONHANDS, header, items)

    async def import_price_lists(self, header: ConnectHeader, items: ItemsSource) -> JobResponse:
        return await self.import_items(ImportKind.PRICE_LISTS, header, items)

    async def import_customers(self, header: ConnectHeader, items: ItemsSource) -> JobResponse:
        return await self.import_items(ImportKind.CUSTOMERS, header, items)

    async def import_supplier_products(
        self, header: ConnectHeader, items: ItemsSource
    ) -> JobResponse:
        return await self.import_items(ImportKind.SUPPLIER_PRODUCTS, header, items)

    # -- jobs ----------------------------------------------------------------------

    async def get_job(self, job_id: int | str) -> Job:
        response = await self._http.request(
            "GET", self._url(self._job + "Job/Get"), params={"id": str(job_id)}
        )
        return Job.model_validate_json(response.content)

    async def get_job_log(self, job_id: int | str) -> list[JobLogEntry]:
        response = await self._http.request(
            "GET", self._url(self._job + "Job/GetLog"), params={"id": str(job_id)}
        )
        return _LOG.validate_json(response.content)

    async def list_jobs(
        self,
        *,
        status: JobStatus | None = None,
        is_finished: bool | None = None,
        top: int | None = None,
        **params: str | int,
    ) -> list[Job]:
        """``Job/List``, newest first. The filter names are inferred (the contract only
        names the endpoint); ``params`` go to the query string unchanged."""
        query = {k: str(v) for k, v in params.items()}
        if status is not None:
            query["statusId"] = str(int(status))
        if is_finished is not None:
            query["isFinished"] = "true" if is_finished else "false"
        if top is not None:
            query["top"] = str(top)
        response = await self._http.request("GET", self._url(self._job + "Job/List"), params=query)
        data: Any = orjson.loads(response.content)
        if isinstance(data, dict):  # tolerate an envelope such as {"Items": [...]}
            data = next((v for v in data.values() if isinstance(v, list)), [])
        return _JOBS.validate_python(data)

    async def ping(self) -> bool:
        """``Job/Ping``: True when Connect answers 2xx with our token."""
        await self._http.request("GET", self._url(self._job + "Job/Ping"), ok=(200, 204))
        return True

    async def wait_for_job(
        self,
        job_id: int | str,
        *,
        poll_interval: float = 0.5,
        max_interval: float = 10.0,
        max_wait: float | None = None,
    ) -> Job:
        """Poll ``Job/Get`` (interval doubling up to ``max_interval``) until a final status."""
        deadline = None if max_wait is None else time.monotonic() + max_wait
        interval = poll_interval
        job: Job | None = None
        while True:
            job = await self.get_job(job_id)
            if job.is_final:
                return job
            delay = interval
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise JobTimeout(
                        f"job {job_id} still {job.status.name} after {max_wait}s", job=job
                    )
                delay = min(delay, remaining)
            await asyncio.sleep(delay)
            interval = min(max_interval, interval * 2)


__all__ = ["ConnectClient", "ImportKind", "Item", "ItemsSource", "JobTimeout"]
