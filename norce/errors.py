"""Typed failures of the Norce clients.

Callers branch on the class (retry later, fix the request, re-authenticate), never on
status codes or message text.
"""

from __future__ import annotations

import httpx
import orjson


class NorceError(Exception):
    """Base of every error raised by the Norce clients."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        description: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.description = description
        self.url = url


class NorceAuthError(NorceError):
    """401/403, or the token endpoint refused the credentials."""


class NorceBadRequest(NorceError):
    """400 (or another 4xx we cannot fix by retrying); ``description`` says why."""


class NorceNotFound(NorceError):
    """404."""


class NorceRateLimited(NorceError):
    """429; ``retry_after`` is the server's wait in seconds when it sent one."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class NorceServerError(NorceError):
    """5xx."""


class NorceTransportError(NorceError):
    """No HTTP answer at all: connection refused/reset, protocol error."""


class NorceTimeout(NorceTransportError):
    """The request timed out (connect, write, read or pool)."""


class NorceRetriesExhausted(NorceError):
    """Every allowed attempt failed with a retryable error; ``last_error`` is the last."""

    def __init__(self, message: str, *, attempts: int, last_error: NorceError) -> None:
        super().__init__(
            message,
            status_code=last_error.status_code,
            description=last_error.description,
            url=last_error.url,
        )
        self.attempts = attempts
        self.last_error = last_error


RETRYABLE = (NorceRateLimited, NorceServerError, NorceTransportError)


def describe_body(body: bytes, limit: int = 500) -> str | None:
    """The server's own explanation: Norce's ``Description``, OAuth's ``error``, or text."""
    if not body:
        return None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:limit].decode("utf-8", "replace").strip() or None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):  # OData: {"error": {"message"}}
            return str(error["message"])[:limit]
        for key in ("Description", "description", "error_description", "error", "Message"):
            value = data.get(key)
            if value:
                return str(value)[:limit]
    return body[:limit].decode("utf-8", "replace")


def error_from_response(response: httpx.Response, retry_after: float | None = None) -> NorceError:
    """Map a non-2xx answer onto its exception class. The body must already be read."""
    status = response.status_code
    description = describe_body(response.content)
    try:
        method, url = response.request.method, str(response.request.url)
    except RuntimeError:  # a Response built by hand (tests) has no request
        method, url = "?", None
    # Never echo query strings or headers: they may carry tokens in odd deployments.
    where = url.split("?", 1)[0] if url else "?"
    message = f"Norce answered {status} for {method} {where}"
    if description:
        message += f": {description}"
    kw = {"status_code": status, "description": description, "url": url}
    if status in (401, 403):
        return NorceAuthError(message, **kw)
    if status == 404:
        return NorceNotFound(message, **kw)
    if status == 429:
        return NorceRateLimited(message, retry_after=retry_after, **kw)
    if status >= 500:
        return NorceServerError(message, **kw)
    return NorceBadRequest(message, **kw)


def error_from_transport(exc: httpx.TransportError, url: str | None = None) -> NorceError:
    where = url.split("?", 1)[0] if url else "?"
    if isinstance(exc, httpx.TimeoutException):
        return NorceTimeout(f"timed out calling {where}: {type(exc).__name__}", url=url)
    return NorceTransportError(f"no answer from {where}: {type(exc).__name__}: {exc}", url=url)


# Norce does not answer or refuses us: not the fault of the record being worked on.
OUTAGE = (NorceAuthError, NorceServerError, NorceTransportError, NorceRateLimited)


def is_outage(error: BaseException) -> bool:
    """True when ``error`` says Norce is unavailable to us (401/403 wrong or revoked
    credentials, 5xx, timeouts, no connection, 429 past the retries): the work waits and
    retries, nothing is dead-lettered. False for the record's own fault (404 of one
    entity, 400 for its data) and for anything that is not a ``NorceError``."""
    if isinstance(error, NorceRetriesExhausted):
        error = error.last_error
    return isinstance(error, OUTAGE)
