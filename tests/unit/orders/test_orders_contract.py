"""The order contract and the receiver's pure checks."""

from __future__ import annotations

import base64

import orjson
import pytest
from pydantic import ValidationError

from agents.orders.digest import order_digest
from agents.orders.receiver import basic_auth_ok
from agents.orders.status_input import StatusChangeError, decode_status_change, newer
from norce.orders import OrderRequest, OrderStatusUpdate


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_auth_needs_both_halves_and_a_configured_password() -> None:
    assert basic_auth_ok(basic("norce", "pw"), "norce", "pw")
    assert not basic_auth_ok(basic("norce", "nope"), "norce", "pw")
    assert not basic_auth_ok(basic("other", "pw"), "norce", "pw")
    assert not basic_auth_ok(basic("norce", ""), "norce", "")  # unset opens nothing
    assert not basic_auth_ok("Bearer pw", "norce", "pw")
    assert not basic_auth_ok("Basic not-base64!", "norce", "pw")
    assert not basic_auth_ok(None, "norce", "pw")


def test_an_order_keeps_unknown_fields_and_requires_its_ref() -> None:
    order = OrderRequest.from_json(
        orjson.dumps({"ClientOrderRef": " W1 ", "Items": [{"LineNo": 1}], "New": {"a": 1}})
    )
    assert order.ClientOrderRef == "W1"
    assert order.model_dump()["New"] == {"a": 1}
    with pytest.raises(ValidationError):
        OrderRequest.model_validate({"ClientOrderRef": ""})
    with pytest.raises(ValidationError):
        OrderRequest.model_validate({"ClientOrderRef": "x" * 51})
    with pytest.raises(ValidationError, match="LineNo 1 appears twice"):
        OrderRequest.model_validate({"ClientOrderRef": "W", "Items": [{"LineNo": 1}] * 2})


def test_the_same_order_has_one_digest_whatever_its_key_order() -> None:
    assert order_digest({"a": 1, "b": [1, 2]}) == order_digest({"b": [1, 2], "a": 1})
    assert order_digest({"a": 1}) != order_digest({"a": 2})


def test_status_changes_decode_with_their_source_position() -> None:
    debezium = {
        "schema": {},
        "payload": {"op": "u", "after": {"s": "Confirmed"}, "source": {"lsn": 42}},
    }
    change = decode_status_change(orjson.dumps(debezium), "debezium")
    assert change is not None and change.row == {"s": "Confirmed"} and change.version[0] == 42
    plain = {"op": "upsert", "version": 3, "data": {"s": "Delivered"}}
    assert decode_status_change(orjson.dumps(plain), "plain") == ({"s": "Delivered"}, [3])
    assert decode_status_change(None, "debezium") is None
    assert decode_status_change(orjson.dumps({"op": "d", "before": {}}), "debezium") is None
    with pytest.raises(StatusChangeError):
        decode_status_change(b"{", "plain")
    with pytest.raises(StatusChangeError):
        decode_status_change(orjson.dumps({"op": "upsert", "data": {}}), "plain")


def test_only_a_newer_version_is_sent() -> None:
    assert newer([2], None)
    assert newer([3], [2])
    assert not newer([2], [2])
    assert not newer([1], [2])


def test_a_status_update_is_identified_by_either_reference() -> None:
    assert OrderStatusUpdate(ClientOrderRef="W1", OrderStatus="Delivered").order_key() == "W1"
    assert OrderStatusUpdate(ErpOrderNo="E9", OrderStatus="Delivered").order_key() == "erp:E9"
