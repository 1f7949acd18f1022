"""Identity: the OAuth2 client-credentials token endpoint and the API's bearer check."""

from __future__ import annotations

import asyncio
import hmac
import math
import secrets
from typing import Any

import orjson
from aiohttp import web

from norce_simulator.ratelimit import TokenBucket
from norce_simulator.state import SimState

SCOPES = ("playground", "stage", "prod")


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return _json(status, {"error": error, "error_description": description})


class IdentityHandlers:
    def __init__(self, state: SimState) -> None:
        self.state = state
        self._buckets: dict[str, TokenBucket] = {}  # per client IP
        state.on_reset(self._buckets.clear)

    def _limited(self, request: web.Request) -> float:
        cfg = self.state.config
        if not cfg.token_rate_limit:
            return 0.0
        ip = request.remote or "?"
        bucket = self._buckets.get(ip)
        if bucket is None:
            bucket = self._buckets[ip] = TokenBucket(
                cfg.token_rate_per_minute / 60, cfg.token_burst
            )
        return bucket.take()

    async def token(self, request: web.Request) -> web.Response:
        wait = self._limited(request)
        if wait:
            return _json(
                429,
                {"error": "rate_limited", "error_description": "Too many token requests."},
                {"Retry-After": str(math.ceil(wait))},
            )
        form = await request.post()
        cfg = self.state.config
        if form.get("grant_type") != "client_credentials":
            return _oauth_error(
                400, "unsupported_grant_type", "grant_type must be client_credentials"
            )
        client_id = str(form.get("client_id", ""))
        client_secret = str(form.get("client_secret", ""))
        clients = {cfg.client_id: cfg.client_secret, **cfg.extra_clients}
        expected = clients.get(client_id, "")
        ok_secret = bool(expected) and hmac.compare_digest(
            client_secret.encode(), expected.encode()
        )
        if not ok_secret:
            return _oauth_error(401, "invalid_client", "Unknown client or wrong secret.")
        scope = form.get("scope")
        if scope not in SCOPES:
            return _oauth_error(400, "invalid_scope", f"scope must be one of {', '.join(SCOPES)}")
        token = secrets.token_urlsafe(32)
        loop = asyncio.get_running_loop()
        self.state.tokens[token] = loop.time() + cfg.token_lifetime_s
        lifetime = cfg.token_lifetime_s
        return _json(
            200,
            {
                "access_token": token,
                "expires_in": int(lifetime) if float(lifetime).is_integer() else lifetime,
                "token_type": "Bearer",
                "scope": scope,
            },
        )


def check_auth(state: SimState, request: web.Request, error: Any) -> web.Response | None:
    """401 without a valid, unexpired bearer token; 403 for a wrong application-id.

    ``error(status, message)`` builds the API's own error body.
    """
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return _with_challenge(error(401, "Missing bearer token."))
    expiry = state.tokens.get(token.strip())
    if expiry is None:
        return _with_challenge(error(401, "Invalid bearer token."))
    if asyncio.get_running_loop().time() >= expiry:
        return _with_challenge(error(401, "The access token has expired."))
    app_id = request.headers.get("application-id")
    if app_id is None or app_id != state.config.application_id:
        return error(403, "Missing or wrong application-id header.")
    return None


def _with_challenge(response: web.Response) -> web.Response:
    response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return response
