"""One object that wires the Norce clients together for a tenant.

    async with NorceClient(credentials, NorceEndpoints(base_url=sim.url)) as norce:
        job = await norce.connect.import_onhands(header, rows)
        sku = await norce.query.get_entity("Products/ProductSkus", "1001")

The token provider, connection pool and retry policy are shared by Connect and Query.
"""

from __future__ import annotations

from types import TracebackType

import httpx

from norce.config import NorceCredentials, NorceEndpoints
from norce.connect import ConnectClient
from norce.http import NorceHttp
from norce.identity import TokenProvider
from norce.query import QueryClient
from norce.retry import RetryPolicy

# Imports can take long to upload; reads are short. Pool limits keep a burst of
# enrichment lookups from opening hundreds of sockets.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
DEFAULT_LIMITS = httpx.Limits(max_connections=50, max_keepalive_connections=20)


class NorceClient:
    def __init__(
        self,
        credentials: NorceCredentials,
        endpoints: NorceEndpoints,
        *,
        http_client: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
        token_retry: RetryPolicy | None = None,
        token_skew: float = 60.0,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self._owns_client = http_client is None
        self.http_client = http_client or httpx.AsyncClient(timeout=timeout, limits=DEFAULT_LIMITS)
        self.endpoints = endpoints
        self.tokens = TokenProvider(
            self.http_client,
            endpoints.identity_url,
            credentials,
            skew=token_skew,
            retry=token_retry,
        )
        self.http = NorceHttp(
            self.http_client, self.tokens, credentials.application_id, retry=retry
        )
        self.connect = ConnectClient(
            self.http, endpoints.connect_url, job_path_prefix=endpoints.job_path_prefix
        )
        self.query = QueryClient(self.http, endpoints.query_url)

    async def aclose(self) -> None:
        if self._owns_client:
            await self.http_client.aclose()

    async def __aenter__(self) -> NorceClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
