"""The one way the Norce clients talk HTTP: auth headers, error mapping, retries.

Every API call carries ``Authorization: Bearer <token>`` and ``application-id``. A 401
means the token died early (revoked, clock skew): we force one token refresh and repeat
the call once; a second 401 is a real auth failure. 429/5xx/transport errors go through
the retry policy.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import httpx

from norce.errors import NorceAuthError, error_from_response, error_from_transport
from norce.identity import TokenProvider
from norce.retry import NO_RETRY, RetryPolicy, Uniform, call_with_retries, parse_retry_after

# A request body: fixed bytes (replayable) or a factory that makes a fresh byte stream
# for each attempt (replayable), or a one-shot async iterator (sent once, never retried).
BodyFactory = Callable[[], AsyncIterator[bytes]]
Body = bytes | BodyFactory | AsyncIterator[bytes]


class NorceHttp:
    """Authenticated, retrying requests against one Norce tenant."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        tokens: TokenProvider,
        application_id: str,
        *,
        retry: RetryPolicy | None = None,
        rng: Uniform | None = None,
    ) -> None:
        self.client = client
        self.tokens = tokens
        self.application_id = application_id
        self.retry = retry or RetryPolicy()
        self._rng = rng or random.Random()

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: Body | None = None,
        ok: tuple[int, ...] = (200,),
        retry: RetryPolicy | None = None,
    ) -> httpx.Response:
        """Send the request; return the (fully read) response when its status is in ``ok``.

        Other statuses raise the matching ``NorceError``. A one-shot async iterator body
        cannot be replayed, so it disables retries (pass a factory to keep them).
        """
        policy = retry or self.retry
        if body is not None and not isinstance(body, bytes) and not callable(body):
            policy = NO_RETRY

        async def attempt(_: int) -> httpx.Response:
            return await self._send_authenticated(method, url, params, headers, body, ok)

        return await call_with_retries(
            attempt, policy, rng=self._rng, what=f"{method} {url.split('?', 1)[0]}"
        )

    async def _send_authenticated(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        body: Body | None,
        ok: tuple[int, ...],
    ) -> httpx.Response:
        token = await self.tokens.get_token()
        response = await self._send(method, url, params, headers, body, token)
        if response.status_code == 401 and _replayable(body):
            # The token expired early: one forced refresh (shared by concurrent callers
            # that saw the same token) and one more try.
            token = await self.tokens.refresh(stale=token)
            response = await self._send(method, url, params, headers, body, token)
        if response.status_code in ok:
            return response
        error = error_from_response(
            response, parse_retry_after(response.headers.get("Retry-After"))
        )
        if response.status_code == 401 and isinstance(error, NorceAuthError):
            self.tokens.invalidate(stale=token)
        raise error

    async def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        body: Body | None,
        token: str,
    ) -> httpx.Response:
        all_headers: dict[str, str] = {
            "Authorization": f"Bearer {token}",
            "application-id": self.application_id,
            "Accept": "application/json",
        }
        if headers:
            all_headers.update(headers)
        content: Any = body() if callable(body) else body
        try:
            response = await self.client.request(
                method, url, params=params, headers=all_headers, content=content
            )
        except httpx.TransportError as exc:
            raise error_from_transport(exc, url) from exc
        return response


def _replayable(body: Body | None) -> bool:
    return body is None or isinstance(body, bytes) or callable(body)
