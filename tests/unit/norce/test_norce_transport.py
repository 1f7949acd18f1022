"""Client behaviour over an in-process ``httpx.MockTransport`` (no sockets)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from urllib.parse import parse_qs

import httpx
import orjson
import pytest

from norce.client import NorceClient
from norce.config import NorceCredentials, NorceEndpoints
from norce.connect import JobTimeout
from norce.connect_header import ConnectHeader
from norce.errors import (
    NorceAuthError,
    NorceBadRequest,
    NorceError,
    NorceRateLimited,
    NorceRetriesExhausted,
    NorceServerError,
)
from norce.identity import TokenProvider
from norce.jobs import JobStatus
from norce.odata import ODataQuery, eq
from norce.retry import RetryPolicy

BASE = "http://norce.test"
CREDS = NorceCredentials(
    client_id="cid", client_secret="top-secret", application_id="app-1", scope="stage"
)
QUERY = BASE + "/commerce/query/2.0/"
FAST = RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_client(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    async def async_handler(request: httpx.Request) -> httpx.Response:
        await request.aread()  # consume streamed bodies like a real server would
        return handler(request)

    return httpx.AsyncClient(transport=httpx.MockTransport(async_handler))


def token_response(n: int, expires_in: float = 3600) -> httpx.Response:
    return httpx.Response(200, json={"access_token": f"tok-{n}", "expires_in": expires_in})


async def test_token_request_form_and_caching() -> None:
    forms: list[dict[str, list[str]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url == BASE + "/identity/1.0/connect/token"
        forms.append(parse_qs(request.content.decode()))
        return token_response(len(forms), expires_in=600)

    clock = Clock()
    async with make_client(handler) as client:
        provider = TokenProvider(
            client, BASE + "/identity/1.0/connect/token", CREDS, skew=60, clock=clock
        )
        assert await provider.get_token() == "tok-1"
        clock.now += 539  # 61 s before expiry: still fresh
        assert await provider.get_token() == "tok-1"
        clock.now += 2  # 59 s before expiry: inside the skew
        assert await provider.get_token() == "tok-2"
    assert forms[0] == {
        "grant_type": ["client_credentials"],
        "client_id": ["cid"],
        "client_secret": ["top-secret"],
        "scope": ["stage"],
    }
    assert provider.fetch_count == 2
    assert "top-secret" not in repr(provider) and "tok-" not in repr(provider)


async def test_short_lived_token_refreshes_at_half_life() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return token_response(calls, expires_in=10)

    clock = Clock()
    async with make_client(handler) as client:
        provider = TokenProvider(client, BASE + "/t", CREDS, skew=60, clock=clock)
        assert await provider.get_token() == "tok-1"
        clock.now += 4.9
        assert await provider.get_token() == "tok-1"
        clock.now += 0.2
        assert await provider.get_token() == "tok-2"


async def test_concurrent_callers_share_one_refresh() -> None:
    calls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)  # a slow token endpoint widens the race window
        return token_response(calls)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        provider = TokenProvider(client, BASE + "/t", CREDS)
        tokens = await asyncio.gather(*(provider.get_token() for _ in range(20)))
        assert set(tokens) == {"tok-1"}
        refreshed = await asyncio.gather(*(provider.refresh(stale="tok-1") for _ in range(20)))
        assert set(refreshed) == {"tok-2"}
    assert calls == 2


async def test_token_endpoint_429_honours_retry_after() -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    answers = [
        httpx.Response(429, headers={"Retry-After": "7"}, json={"error": "slow_down"}),
        token_response(1),
    ]
    async with make_client(lambda request: answers.pop(0)) as client:
        provider = TokenProvider(client, BASE + "/t", CREDS, sleep=fake_sleep)
        assert await provider.get_token() == "tok-1"
    assert slept == [7.0]


async def test_bad_credentials_are_an_auth_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": "invalid_client"})

    async with make_client(handler) as client:
        provider = TokenProvider(client, BASE + "/t", CREDS)
        with pytest.raises(NorceAuthError, match="invalid_client") as info:
            await provider.get_token()
    assert "top-secret" not in str(info.value)


def api(handler: Callable[[httpx.Request], httpx.Response]) -> NorceClient:
    """A NorceClient whose token endpoint hands out tok-1, tok-2, ..."""
    issued = 0

    def route(request: httpx.Request) -> httpx.Response:
        nonlocal issued
        if request.url.path == "/identity/1.0/connect/token":
            issued += 1
            return token_response(issued)
        return handler(request)

    return NorceClient(
        CREDS,
        NorceEndpoints(base_url=BASE),
        http_client=make_client(route),
        retry=FAST,
    )


async def test_api_calls_carry_bearer_and_application_id() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"JobId": 5, "StatusId": 6})

    async with api(handler) as norce:
        job = await norce.connect.get_job(5)
    assert job.job_id == 5
    assert seen[0].headers["Authorization"] == "Bearer tok-1"
    assert seen[0].headers["application-id"] == "app-1"
    assert str(seen[0].url) == BASE + "/commerce/connect/4.0/Job/Get?id=5"


async def test_401_forces_one_refresh_and_one_repeat() -> None:
    auths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        auths.append(request.headers["Authorization"])
        if request.headers["Authorization"] == "Bearer tok-1":
            return httpx.Response(401)
        return httpx.Response(200, json=[])

    async with api(handler) as norce:
        assert await norce.connect.get_job_log(1) == []
        assert norce.tokens.fetch_count == 2
    assert auths == ["Bearer tok-1", "Bearer tok-2"]


async def test_second_401_is_an_auth_error() -> None:
    async with api(lambda request: httpx.Response(401, json={"Description": "no"})) as norce:
        with pytest.raises(NorceAuthError):
            await norce.connect.ping()
        assert norce.tokens.fetch_count == 2


async def test_403_is_not_retried() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(403, json={"Description": "application-id unknown"})

    async with api(handler) as norce:
        with pytest.raises(NorceAuthError, match="application-id unknown"):
            await norce.connect.ping()
    assert calls == 1


async def test_import_streams_header_and_body_and_retries_a_replayable_source() -> None:
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        assert request.headers["X-StormConnect-Header"] == '{"AccountId":1,"SerializationType":0}'
        assert request.headers["Content-Type"] == "application/json"
        if len(bodies) == 1:
            return httpx.Response(503)
        return httpx.Response(200, json={"JobId": "9", "StatusCode": 0})

    async def rows() -> AsyncIterator[dict]:
        for i in range(3):
            yield {"PartNo": str(i)}

    async with api(handler) as norce:
        result = await norce.connect.import_onhands(ConnectHeader(account_id=1), rows)
    assert result.job_id == "9"
    assert len(bodies) == 2
    assert bodies[0] == bodies[1] == b'[{"PartNo":"0"},{"PartNo":"1"},{"PartNo":"2"}]'


async def test_one_shot_source_is_sent_once() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(503, json={"Description": "busy"})

    async def rows() -> AsyncIterator[dict]:
        yield {"PartNo": "1"}

    async with api(handler) as norce:
        with pytest.raises(NorceServerError, match="busy"):
            await norce.connect.import_onhands(ConnectHeader(account_id=1), rows())
    assert calls == 1


async def test_import_rejects_single_item() -> None:
    async with api(lambda request: httpx.Response(200)) as norce:
        with pytest.raises(TypeError):
            await norce.connect.import_onhands(ConnectHeader(account_id=1), {"PartNo": "1"})


async def test_bad_request_carries_description() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"Description": "unknown code 7"})

    async with api(handler) as norce:
        with pytest.raises(NorceBadRequest) as info:
            await norce.connect.import_onhands(ConnectHeader(account_id=1), [])
    assert info.value.description == "unknown code 7"


async def test_retries_exhausted() -> None:
    async with api(lambda request: httpx.Response(500)) as norce:
        with pytest.raises(NorceRetriesExhausted) as info:
            await norce.connect.get_job(1)
    assert info.value.attempts == 3
    assert isinstance(info.value.last_error, NorceServerError)


async def test_long_retry_after_is_left_to_the_caller() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "3600"})

    async with api(handler) as norce:
        with pytest.raises(NorceRateLimited) as info:
            await norce.query.get_entity("Products/ProductSkus", "1")
    assert info.value.retry_after == 3600.0


async def test_query_get_entity_and_404() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.raw_path.startswith(b"/commerce/query/2.0/Products/ProductSkus('100011')"):
            assert request.url.params["$expand"] == "PriceLists($filter=IsActive eq true)"
            return httpx.Response(200, json={"PartNo": "100011"})
        return httpx.Response(404)

    query = ODataQuery().expand("PriceLists", filter=eq("IsActive", True))
    async with api(handler) as norce:
        sku = await norce.query.get_entity("Products/ProductSkus", "100011", query)
        assert sku == {"PartNo": "100011"}
        assert await norce.query.get_entity("Products/ProductSkus", "nope") is None
        with pytest.raises(NorceError):
            await norce.query.get_entity("Products/ProductSkus", "nope", missing_ok=False)


async def test_iterate_follows_next_links_and_refuses_foreign_hosts() -> None:
    pages = {
        "0": {
            "value": [{"N": 1}, {"N": 2}],
            "@odata.nextLink": BASE + "/commerce/query/2.0/X?$skip=2",
        },
        "2": {"value": [{"N": 3}], "@odata.nextLink": "X?$skip=3"},
        "3": {"value": [{"N": 4}], "@odata.nextLink": "http://evil.test/X?$skip=4"},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        skip = request.url.params.get("$skip", "0")
        return httpx.Response(200, content=orjson.dumps(pages[skip]))

    async with api(handler) as norce:
        got = [e["N"] async for e in norce.query.iterate("X", max_pages=3)]
        assert got == [1, 2, 3, 4]
        with pytest.raises(NorceError, match="another origin"):
            _ = [e async for e in norce.query.iterate("X")]


async def test_wait_for_job_polls_until_final_and_times_out() -> None:
    statuses = iter([6, 1, 5, 2])

    def handler(request: httpx.Request) -> httpx.Response:
        job_id = int(request.url.params["id"])
        status = next(statuses) if job_id == 1 else 6
        return httpx.Response(200, json={"JobId": job_id, "StatusId": status})

    async with api(handler) as norce:
        job = await norce.connect.wait_for_job(1, poll_interval=0.001, max_interval=0.002)
        assert job.status is JobStatus.SUCCEEDED
        with pytest.raises(JobTimeout) as info:
            await norce.connect.wait_for_job(2, poll_interval=0.01, max_wait=0.05)
    assert info.value.job is not None and info.value.job.status is JobStatus.QUEUED
