"""Fixtures for driving the Norce simulator over real HTTP (httpx), in-process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from norce_simulator import SimulatorConfig, SimulatorServer

CLIENT_ID = "sim-test-client"
CLIENT_SECRET = "sim-test-secret"
APP_ID = "sim-test-app"
FINAL = {2, 3, 4}


def make_config(**overrides: Any) -> SimulatorConfig:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "workers": 2,
        "lead_time_s": 0.05,
        "token_rate_limit": False,
        "webhook_time_factor": 0.0001,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "application_id": APP_ID,
    }
    values.update(overrides)
    return SimulatorConfig(**values)


class SimApi:
    """Thin HTTP helper: token, headers, imports, job polling, query, control."""

    client_id = CLIENT_ID
    client_secret = CLIENT_SECRET
    app_id = APP_ID

    def __init__(self, sim: SimulatorServer, http: httpx.AsyncClient) -> None:
        self.sim = sim
        self.http = http
        self._token: str | None = None

    @staticmethod
    def form(**overrides: str) -> dict[str, str]:
        """Token request form with the test credentials."""
        base = {
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "scope": "stage",
        }
        return base | overrides

    async def token(self, scope: str = "stage") -> str:
        r = await self.http.post(self.sim.identity_url, data=self.form(scope=scope))
        assert r.status_code == 200, r.text
        return r.json()["access_token"]

    async def auth(self) -> dict[str, str]:
        if self._token is None:
            self._token = await self.token()
        return {"Authorization": f"Bearer {self._token}", "application-id": APP_ID}

    async def post_import(
        self, path: str, items: Any, header: dict[str, Any] | None = None, **kw: Any
    ) -> httpx.Response:
        headers = await self.auth()
        headers["X-StormConnect-Header"] = orjson.dumps(header or {"AccountId": 1}).decode()
        content = items if isinstance(items, bytes | str) else orjson.dumps(items)
        return await self.http.post(self.sim.connect_url + path, content=content, headers=headers)

    async def submit(self, path: str, items: Any, header: dict[str, Any] | None = None) -> int:
        r = await self.post_import(path, items, header)
        assert r.status_code == 200, r.text
        return int(r.json()["JobId"])

    async def job(self, job_id: int) -> dict[str, Any]:
        r = await self.http.get(
            self.sim.connect_url + "Job/Get", params={"id": job_id}, headers=await self.auth()
        )
        assert r.status_code == 200, r.text
        return r.json()

    async def job_log(self, job_id: int) -> list[dict[str, Any]]:
        r = await self.http.get(
            self.sim.connect_url + "Job/GetLog", params={"id": job_id}, headers=await self.auth()
        )
        assert r.status_code == 200, r.text
        return r.json()

    async def wait_job(self, job_id: int, within: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while True:
            job = await self.job(job_id)
            if job["StatusId"] in FINAL:
                return job
            assert time.monotonic() < deadline, f"job {job_id} not final: {job}"
            await asyncio.sleep(0.01)

    async def run(self, path: str, items: Any, header: dict[str, Any] | None = None) -> dict:
        return await self.wait_job(await self.submit(path, items, header))

    async def query(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(
            self.sim.query_url + path, params=params, headers=await self.auth()
        )

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        r = await self.http.request(
            method, f"{self.sim.url}/_sim/{path}", content=orjson.dumps(body) if body else None
        )
        assert r.status_code == 200, r.text
        return r.json()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Everything here drives the simulator over HTTP: mark it `integration`.
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0) as client:
        yield client


@pytest.fixture
async def start_sim() -> AsyncIterator[Callable[..., Awaitable[SimulatorServer]]]:
    """Factory: start a simulator with config overrides; all are stopped at teardown."""
    servers: list[SimulatorServer] = []

    async def start(**overrides: Any) -> SimulatorServer:
        server = await SimulatorServer(make_config(**overrides)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def sim(start_sim: Callable[..., Awaitable[SimulatorServer]]) -> SimulatorServer:
    return await start_sim()


@pytest.fixture
def api(sim: SimulatorServer, http: httpx.AsyncClient) -> SimApi:
    return SimApi(sim, http)


@pytest.fixture
def make_api(http: httpx.AsyncClient) -> Callable[[SimulatorServer], SimApi]:
    return lambda server: SimApi(server, http)
