from __future__ import annotations

import asyncio

import httpx

from norce_simulator import SimulatorServer


def form(**overrides: str) -> dict[str, str]:
    base = {
        "grant_type": "client_credentials",
        "client_id": "sim-test-client",
        "client_secret": "sim-test-secret",
        "scope": "stage",
    }
    return base | overrides


async def test_token_response_shape(sim: SimulatorServer, http: httpx.AsyncClient) -> None:
    r = await http.post(sim.identity_url, data=form(scope="playground"))
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "playground"
    assert len(body["access_token"]) >= 32
    assert sim.state.tokens[body["access_token"]] > 0


async def test_wrong_secret_or_client_is_401(sim: SimulatorServer, http: httpx.AsyncClient) -> None:
    r = await http.post(sim.identity_url, data=form(client_secret="nope"))
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"
    r = await http.post(sim.identity_url, data=form(client_id="someone-else"))
    assert r.status_code == 401
    assert sim.state.tokens == {}


async def test_bad_grant_or_scope_is_400(sim: SimulatorServer, http: httpx.AsyncClient) -> None:
    r = await http.post(sim.identity_url, data=form(grant_type="password"))
    assert (r.status_code, r.json()["error"]) == (400, "unsupported_grant_type")
    r = await http.post(sim.identity_url, data=form(scope="production"))
    assert (r.status_code, r.json()["error"]) == (400, "invalid_scope")


async def test_token_expires(start_sim, make_api) -> None:
    sim = await start_sim(token_lifetime_s=0.3)
    api = make_api(sim)
    token = await api.token()
    headers = {"Authorization": f"Bearer {token}", "application-id": api.app_id}
    ping = sim.connect_url + "Job/Ping"
    assert (await api.http.get(ping, headers=headers)).status_code == 200
    await asyncio.sleep(0.35)
    r = await api.http.get(ping, headers=headers)
    assert r.status_code == 401
    assert r.json() == {"StatusCode": 401, "Description": "The access token has expired."}
    assert "invalid_token" in r.headers["WWW-Authenticate"]
    fresh = await api.token()
    headers["Authorization"] = f"Bearer {fresh}"
    assert (await api.http.get(ping, headers=headers)).status_code == 200


async def test_expire_tokens_control(api) -> None:
    headers = await api.auth()
    assert (
        await api.http.get(api.sim.connect_url + "Job/Ping", headers=headers)
    ).status_code == 200
    assert await api.control("POST", "tokens/expire") == {"expired": 1}
    r = await api.http.get(api.sim.connect_url + "Job/Ping", headers=headers)
    assert r.status_code == 401


async def test_rate_limit_burst_20_then_429(start_sim, http: httpx.AsyncClient) -> None:
    sim = await start_sim(token_rate_limit=True)  # defaults: 3 a minute, burst 20
    codes = [(await http.post(sim.identity_url, data=form())).status_code for _ in range(20)]
    assert codes == [200] * 20
    r = await http.post(sim.identity_url, data=form())
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "20"  # one token every 20 s at 3 a minute
    # A wrong secret still costs a token: the limit is per IP, before credentials.
    assert (await http.post(sim.identity_url, data=form(client_secret="x"))).status_code == 429
    assert len(sim.state.tokens) == 20
