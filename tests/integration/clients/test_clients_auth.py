"""Tokens against the simulator: caching, one refresh under concurrency, auth errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from pydantic import SecretStr

from norce.client import NorceClient
from norce.config import NorceCredentials
from norce.errors import NorceAuthError
from norce.retry import RetryPolicy
from norce_simulator import SimulatorServer

TOKEN_CALLS = "identity:token"
MakeClient = Callable[..., NorceClient]


async def test_token_is_cached_across_calls(norce: NorceClient, sim: SimulatorServer) -> None:
    for _ in range(5):
        assert await norce.connect.ping() is True
    assert sim.state.calls[TOKEN_CALLS] == 1
    assert sim.state.calls["connect:Job/Ping"] == 5


async def test_expired_token_is_refreshed_once_for_20_concurrent_calls(
    start_sim: Callable[..., Awaitable[SimulatorServer]], make_client: MakeClient
) -> None:
    sim = await start_sim(token_lifetime_s=1.0)
    norce = make_client(sim)
    assert await norce.connect.ping() is True
    assert sim.state.calls[TOKEN_CALLS] == 1
    await asyncio.sleep(1.1)  # the token has now expired, on both sides
    results = await asyncio.gather(*(norce.connect.ping() for _ in range(20)))
    assert results == [True] * 20
    assert sim.state.calls[TOKEN_CALLS] == 2
    assert sim.state.calls["connect:Job/Ping"] == 21  # no call needed a second try


async def test_token_dead_before_its_time_is_refreshed_once_on_401(
    norce: NorceClient, sim: SimulatorServer
) -> None:
    assert await norce.connect.ping() is True
    assert sim.state.expire_tokens() == 1  # server-side expiry the client cannot foresee
    results = await asyncio.gather(*(norce.connect.ping() for _ in range(20)))
    assert results == [True] * 20
    assert sim.state.calls[TOKEN_CALLS] == 2
    assert sim.state.calls["connect:Job/Ping"] == 41  # 1 + 20 rejected + 20 repeated
    assert norce.tokens.fetch_count == 2


async def test_wrong_secret_is_an_auth_error(
    sim: SimulatorServer, make_client: MakeClient, demo: NorceCredentials
) -> None:
    wrong = demo.model_copy(update={"client_secret": SecretStr("not-the-secret")})
    norce = make_client(sim, wrong)
    with pytest.raises(NorceAuthError) as info:
        await norce.connect.ping()
    assert info.value.status_code == 401
    assert "not-the-secret" not in str(info.value)
    assert sim.state.calls[TOKEN_CALLS] == 1
    assert sim.state.calls["connect:Job/Ping"] == 0


async def test_wrong_application_id_is_forbidden(
    sim: SimulatorServer, make_client: MakeClient, demo: NorceCredentials
) -> None:
    norce = make_client(sim, demo.model_copy(update={"application_id": "other-app"}))
    with pytest.raises(NorceAuthError) as info:
        await norce.connect.get_job(1)
    assert info.value.status_code == 403
    assert sim.state.calls[TOKEN_CALLS] == 1  # 403 does not burn a token refresh


async def test_token_endpoint_429_is_retried_after_retry_after(
    sim: SimulatorServer, make_client: MakeClient
) -> None:
    sim.state.set_faults({"identity": {"error_next": 1, "status": 429, "retry_after_s": 1}})
    token_retry = RetryPolicy(max_attempts=3, base_delay=0.05, max_delay=0.1)
    norce = make_client(sim, token_retry=token_retry)
    started = time.monotonic()
    assert await norce.connect.ping() is True
    elapsed = time.monotonic() - started
    assert elapsed >= 1.0
    assert sim.state.calls[TOKEN_CALLS] == 2
