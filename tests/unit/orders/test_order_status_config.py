"""The ERP order status input: an input binding of kind ``order_status``, kept apart from
the import bindings; the old ``orders.status`` block still read for one release."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from agents.config.sync_config import ConfigError, SyncConfig
from agents.config.sync_config import parse_config as parse_any

EXAMPLE = Path(__file__).parents[3] / "config" / "example.yaml"
STATUS = {
    "topic": "erp.public.orders",
    "source": "erp",
    "format": "plain",
    "mapping": {"ClientOrderRef": "web_order_no", "OrderStatus": "status"},
}


def parse_config(data: dict[str, Any], origin: str = "sync.yaml") -> SyncConfig:
    return parse_any(data, origin, base_dir=EXAMPLE.parent)


def example() -> dict[str, Any]:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["inputs"] = [i for i in data["inputs"] if i.get("kind") != "order_status"]
    return data


def with_input(**changes: Any) -> dict[str, Any]:
    data = example()
    data["inputs"].insert(1, {**copy.deepcopy(STATUS), "kind": "order_status", **changes})
    return data


def test_an_order_status_input_is_its_own_binding_not_an_import() -> None:
    config = parse_config(with_input())
    status = config.order_status_input
    assert status is not None and status.topic == "erp.public.orders"
    assert status.mapper()({"web_order_no": "W1", "status": "Confirmed"}) == {
        "ClientOrderRef": "W1",
        "OrderStatus": "Confirmed",
    }
    # The import flow never sees it: no (source, kind) pair, no import topic.
    assert "erp.public.orders" not in config.topics
    assert all(kind != "order_status" for _, kind in config.pairs())
    assert config.deprecations == []


def test_the_example_config_binds_the_erp_order_statuses() -> None:
    config = parse_config(yaml.safe_load(EXAMPLE.read_text()))
    assert config.order_status_input is not None
    assert config.order_status_input.kind == "order_status"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mapping": {"ClientOrderRef": "web_order_no"}}, "does not produce OrderStatus"),
        ({"mapping": {"OrderStatus": "status"}}, "neither ClientOrderRef nor ErpOrderNo"),
        ({"source": "wms"}, "unknown source 'wms'"),
        ({"topic": "erp.public.prices"}, "bound twice"),
        ({"format": "avro"}, "inputs.1: format"),
        ({"owned_fields": {}}, "inputs.1: owned_fields: Extra inputs are not permitted"),
        ({"mapping": {"OrderStatus": {"from": "s", "convert": "nope"}}}, "inputs.1: mapping"),
    ],
)
def test_a_bad_order_status_input_is_one_clear_config_error(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(with_input(**changes), "sync.yaml")


def test_only_one_order_status_input() -> None:
    data = with_input()
    data["inputs"].append({**STATUS, "topic": "erp.public.orders2", "kind": "order_status"})
    with pytest.raises(ConfigError, match="one order status input is supported"):
        parse_config(data)


def test_the_old_orders_status_block_still_works_with_a_deprecation_warning() -> None:
    data = example()
    data["orders"] = {"status": copy.deepcopy(STATUS)}
    config = parse_config(data)
    status = config.order_status_input
    assert status is not None and status.topic == "erp.public.orders"
    assert status.source == "erp" and status.format == "plain"
    (warning,) = config.deprecations
    assert "orders.status is deprecated" in warning and "kind: order_status" in warning
    assert "topic: erp.public.orders" in warning


def test_the_old_block_and_the_new_input_together_are_refused() -> None:
    data = with_input()
    data["orders"] = {"status": copy.deepcopy(STATUS)}
    with pytest.raises(ConfigError, match="old form of an input with kind: order_status"):
        parse_config(data)


def test_a_bad_old_block_names_its_place() -> None:
    data = example()
    data["orders"] = {"status": {**STATUS, "mapping": {"OrderStatus": "status"}}}
    with pytest.raises(ConfigError, match=r"orders\.status: .*neither ClientOrderRef"):
        parse_config(data)
