from __future__ import annotations

import orjson
import pytest

PRICE = [{"PartNo": "1", "PriceListCode": "STD", "PriceSale": 1.0}]


async def test_missing_or_bad_bearer_is_401(api) -> None:
    url = api.sim.connect_url + "Product/ImportSkuPriceLists"
    hdr = {"X-StormConnect-Header": '{"AccountId":1}', "application-id": "sim-test-app"}
    r = await api.http.post(url, content=orjson.dumps(PRICE), headers=hdr)
    assert r.status_code == 401
    assert r.json() == {"StatusCode": 401, "Description": "Missing bearer token."}
    r = await api.http.post(
        url, content=orjson.dumps(PRICE), headers=hdr | {"Authorization": "Bearer forged"}
    )
    assert (r.status_code, r.json()["Description"]) == (401, "Invalid bearer token.")
    r = await api.http.get(api.sim.connect_url + "Job/Get?id=1")
    assert r.status_code == 401
    assert api.sim.state.jobs == {}


async def test_wrong_or_missing_application_id_is_403(api) -> None:
    auth = await api.auth()
    url = api.sim.connect_url + "Product/ImportSkuPriceLists"
    for app_id in ("other-app", None):
        headers = {
            "Authorization": auth["Authorization"],
            "X-StormConnect-Header": '{"AccountId":1}',
        }
        if app_id:
            headers["application-id"] = app_id
        r = await api.http.post(url, content=orjson.dumps(PRICE), headers=headers)
        assert r.status_code == 403
        assert r.json()["StatusCode"] == 403
    assert api.sim.state.jobs == {}


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ('{"FullFile":false}', "AccountId is required"),
        ('{"AccountId":1,"SkuPriceListFieldsThatAreSet":[3,42]}', "unknown code 42"),
        ('{"AccountId":1,"SkuOnhandFieldsThatAreSet":[7]}', "unknown code 7"),
        ('{"AccountId":1,"SerializationType":2}', "SerializationType"),
    ],
)
async def test_bad_connect_header_is_400(api, header: str, fragment: str) -> None:
    headers = await api.auth() | {"X-StormConnect-Header": header}
    r = await api.http.post(
        api.sim.connect_url + "Product/ImportSkuPriceLists",
        content=orjson.dumps(PRICE),
        headers=headers,
    )
    assert r.status_code == 400
    body = r.json()
    assert body["StatusCode"] == 400
    assert fragment in body["Description"]
    assert api.sim.state.jobs == {}


async def test_missing_connect_header_is_400(api) -> None:
    r = await api.http.post(
        api.sim.connect_url + "Product/ImportOnhands", content=b"[]", headers=await api.auth()
    )
    assert r.status_code == 400
    assert "X-StormConnect-Header is missing" in r.json()["Description"]


@pytest.mark.parametrize("path", ["Product/ImportPriceLists", "Customer/ImportCustomers"])
async def test_full_file_refused_where_norce_has_none(api, path: str) -> None:
    r = await api.post_import(path, [], {"AccountId": 1, "FullFile": True})
    assert r.status_code == 400
    assert r.json()["Description"] == f"FullFile is not supported by {path}."


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"PartNo": "1"}', "not a JSON array"),
        (b'[{"PartNo": "1"}, ', "before the JSON array was closed"),
        (b'[{"PartNo": }]', "not valid JSON at item [0]"),
    ],
)
async def test_body_that_is_not_an_array_is_400(api, body: bytes, fragment: str) -> None:
    r = await api.post_import("Product/ImportSkuPriceLists", body)
    assert r.status_code == 400
    assert fragment in r.json()["Description"]
    assert api.sim.state.jobs == {}
