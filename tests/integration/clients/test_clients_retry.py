"""Retries against injected faults: 429 with Retry-After, 5xx, timeouts."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from norce.client import NorceClient
from norce.connect_header import ConnectHeader
from norce.errors import NorceRetriesExhausted, NorceServerError, NorceTimeout
from norce.retry import RetryPolicy
from norce_simulator import SimulatorServer


async def test_429_is_retried_after_retry_after(norce: NorceClient, sim: SimulatorServer) -> None:
    await norce.connect.ping()  # token first: its time must not count
    sim.state.set_faults({"job": {"error_next": 1, "status": 429, "retry_after_s": 1}})
    started = time.monotonic()
    assert await norce.connect.ping() is True
    elapsed = time.monotonic() - started
    assert elapsed >= 1.0
    assert elapsed < 3.0
    assert sim.state.calls["connect:Job/Ping"] == 3


async def test_429_with_retry_after_on_an_import(norce: NorceClient, sim: SimulatorServer) -> None:
    await norce.connect.ping()
    sim.state.set_faults({"connect": {"error_next": 1, "status": 429, "retry_after_s": 1}})
    started = time.monotonic()
    response = await norce.connect.import_price_lists(
        ConnectHeader(account_id=1), [{"PriceListCode": "STD"}]
    )
    assert time.monotonic() - started >= 1.0
    assert response.validation_summary is not None
    assert response.validation_summary.nr_of_items_in_total == 1
    assert sim.state.calls["connect:Product/ImportPriceLists"] == 2


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_is_retried(status: int, norce: NorceClient, sim: SimulatorServer) -> None:
    sim.state.set_faults({"job": {"error_next": 2, "status": status}})
    assert await norce.connect.ping() is True
    assert sim.state.calls["connect:Job/Ping"] == 3


async def test_retries_give_up_with_the_last_error(
    norce: NorceClient, sim: SimulatorServer
) -> None:
    sim.state.set_faults({"job": {"error_rate": 1.0, "status": 500}})
    with pytest.raises(NorceRetriesExhausted) as info:
        await norce.connect.get_job(1)
    assert info.value.attempts == 4
    assert isinstance(info.value.last_error, NorceServerError)
    assert info.value.status_code == 500
    assert sim.state.calls["connect:Job/Get"] == 4


async def test_timeouts_are_retried_then_reported(
    sim: SimulatorServer, make_client: Callable[..., NorceClient]
) -> None:
    sim.state.set_faults({"job": {"latency_s": 0.5}})
    retry = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.01)
    norce = make_client(sim, retry=retry, timeout=httpx.Timeout(0.2))
    with pytest.raises(NorceRetriesExhausted) as info:
        await norce.connect.ping()
    assert isinstance(info.value.last_error, NorceTimeout)
    assert info.value.attempts == 2
    assert sim.state.calls["connect:Job/Ping"] == 2


async def test_query_429_is_retried_after_retry_after(
    norce: NorceClient, sim: SimulatorServer
) -> None:
    await norce.connect.ping()
    sim.state.set_faults({"query": {"error_next": 1, "status": 429, "retry_after_s": 1}})
    started = time.monotonic()
    assert await norce.query.get_entity("Products/ProductSkus", "missing") is None
    assert time.monotonic() - started >= 1.0
    assert sim.state.calls["query:Products/ProductSkus"] == 2
