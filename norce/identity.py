"""OAuth2 client-credentials tokens for Norce, cached and refreshed one at a time.

The token endpoint allows about 3 requests a minute per IP (burst 20) and answers 429
beyond that, so every API call must share one cached token, and when it runs out many
concurrent callers must cause exactly one refresh.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr

from norce.config import NorceCredentials
from norce.errors import (
    NorceAuthError,
    NorceBadRequest,
    NorceError,
    error_from_response,
    error_from_transport,
)
from norce.retry import RetryPolicy, Sleep, Uniform, call_with_retries, parse_retry_after

log = logging.getLogger(__name__)


class TokenResponse(BaseModel):
    """The token endpoint's answer; the token itself is a secret."""

    model_config = ConfigDict(extra="allow", frozen=True)

    access_token: SecretStr
    expires_in: float = 3600.0
    token_type: str = "Bearer"
    scope: str | None = None


class TokenProvider:
    """Hands out a valid bearer token, fetching a new one only when needed.

    A token is refreshed ``skew`` seconds before it expires (at most half its lifetime
    early, so very short-lived tokens are still used). ``refresh(stale=...)`` forces a
    new token after an API call got 401 with ``stale``; concurrent callers that saw the
    same stale token share one refresh (lock + double-check).
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        token_url: str,
        credentials: NorceCredentials,
        *,
        skew: float = 60.0,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: Uniform | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        self._client = client
        self._token_url = token_url
        self._credentials = credentials
        self._skew = skew
        # The token endpoint is the scarcest resource: retry it, but on Retry-After only.
        self._retry = retry or RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=20.0)
        self._clock = clock
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0
        self.fetch_count = 0  # token endpoint round-trips that produced a token

    def __repr__(self) -> str:  # never show the token or the secret
        return f"TokenProvider(url={self._token_url!r}, client_id={self._credentials.client_id!r})"

    def _fresh(self) -> bool:
        return self._token is not None and self._clock() < self._refresh_at

    async def get_token(self) -> str:
        """A token that is valid for at least the skew (or half its lifetime)."""
        if self._fresh():
            return self._token  # type: ignore[return-value]
        async with self._lock:
            if self._fresh():  # another caller refreshed while we waited for the lock
                return self._token  # type: ignore[return-value]
            return await self._fetch()

    async def refresh(self, stale: str | None = None) -> str:
        """Force a new token, unless someone already replaced ``stale`` meanwhile."""
        async with self._lock:
            if stale is not None and self._token is not None and self._token != stale:
                return self._token
            return await self._fetch()

    def invalidate(self, stale: str | None = None) -> None:
        """Drop the cached token (only if it is still ``stale``, when given)."""
        if stale is not None and self._token != stale:
            return  # already replaced by a concurrent refresh: keep the new one
        self._token = None
        self._refresh_at = 0.0

    async def _fetch(self) -> str:
        token = await call_with_retries(
            self._request_token,
            self._retry,
            rng=self._rng,
            sleep=self._sleep,
            what="token request",
        )
        now = self._clock()
        lifetime = max(0.0, token.expires_in)
        early = min(self._skew, lifetime / 2)
        self._token = token.access_token.get_secret_value()
        self._refresh_at = now + lifetime - early
        self.fetch_count += 1
        log.info("fetched a Norce access token valid for %.0fs", lifetime)
        return self._token

    async def _request_token(self, attempt: int) -> TokenResponse:
        creds = self._credentials
        form = {
            "grant_type": "client_credentials",
            "client_id": creds.client_id,
            "client_secret": creds.client_secret.get_secret_value(),
            "scope": creds.scope,
        }
        try:
            response = await self._client.post(self._token_url, data=form)
        except httpx.TransportError as exc:
            raise error_from_transport(exc, self._token_url) from exc
        if response.status_code != 200:
            error = error_from_response(
                response, parse_retry_after(response.headers.get("Retry-After"))
            )
            # OAuth says 400 invalid_client / unauthorized_client for bad credentials.
            if isinstance(error, NorceBadRequest) and (error.description or "").startswith(
                ("invalid_client", "unauthorized_client")
            ):
                raise NorceAuthError(str(error), status_code=error.status_code) from None
            raise error
        try:
            return TokenResponse.model_validate_json(response.content)
        except ValueError as exc:
            raise NorceError(
                f"token endpoint answered 200 without a usable token: {type(exc).__name__}",
                status_code=200,
                url=self._token_url,
            ) from None
