"""Fixtures: an in-process simulator over real HTTP, and clients pointed at it.

Test modules here are not a package (a ``tests/.../norce`` package would shadow the
real one), so helpers are handed out as fixtures rather than imported.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from norce.client import NorceClient
from norce.config import NorceCredentials, NorceEndpoints
from norce.retry import RetryPolicy
from norce_simulator import SimulatorConfig, SimulatorServer

DEMO = NorceCredentials(
    client_id="norce-sync-demo",
    client_secret="demo-secret",
    application_id="demo-app",
    scope="playground",
)
# Short waits keep the suite fast; Retry-After is still honoured in full.
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.05, max_delay=0.2, max_retry_after=5.0)

StartSim = Callable[..., Awaitable[SimulatorServer]]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/clients" in str(item.path):
            item.add_marker(pytest.mark.integration)


def _config(**overrides: object) -> SimulatorConfig:
    settings: dict[str, object] = {
        "port": 0,
        "workers": 2,
        "lead_time_s": 0.05,
        "token_lifetime_s": 3600,
    }
    settings.update(overrides)
    return SimulatorConfig(**settings)


@pytest.fixture
def demo() -> NorceCredentials:
    return DEMO


@pytest.fixture
def fast_retry() -> RetryPolicy:
    return FAST_RETRY


@pytest.fixture
async def start_sim() -> AsyncIterator[StartSim]:
    """Start a simulator with config overrides; stopped at teardown."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**overrides: object) -> SimulatorServer:
            return await stack.enter_async_context(SimulatorServer(_config(**overrides)))

        yield start


@pytest.fixture
async def sim(start_sim: StartSim) -> SimulatorServer:
    return await start_sim()


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., NorceClient]]:
    """Build NorceClients for a simulator (demo credentials, fast retries); closed after."""
    clients: list[NorceClient] = []

    def make(
        server: SimulatorServer, credentials: NorceCredentials = DEMO, **kwargs: object
    ) -> NorceClient:
        kwargs.setdefault("retry", FAST_RETRY)
        client = NorceClient(credentials, NorceEndpoints(base_url=server.url), **kwargs)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def norce(make_client: Callable[..., NorceClient], sim: SimulatorServer) -> NorceClient:
    return make_client(sim)
