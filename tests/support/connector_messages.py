"""A price row's change messages as each Debezium connector writes them, decoded by the
fused hot path: for the version-ordering tests (``tests/unit/import_path/``).

The connectors' ``source`` blocks are in ``tests/support/debezium_sources.py``.
"""

from __future__ import annotations

from typing import Any

import orjson

from agents.config.sync_config import InputBinding, load_config
from agents.imports.cdc import decode_mapped
from streams.records import Mapped
from tests.support.sync_config import EXAMPLE

# The example config's price binding (JSON, keyed by its key columns).
PRICES = load_config(EXAMPLE).binding_for_topic("erp.public.prices")


def row(price: float) -> dict[str, Any]:
    return {
        "part_no": "A-100",
        "price_list_code": "STD",
        "quantity_break": 1,
        "price_sale": price,
        "cost_purchase": 1.0,
        "cost_unit": 1.0,
        "price_recommended": 2.0,
        "is_discountable": True,
        "currency_code": "SEK",
    }


def message(source: dict[str, Any], op: str, price: float, **extra: Any) -> bytes:
    """A change envelope of the price row with ``source`` as its ``source`` block."""
    image: Any = row(price)
    if source["connector"] == "mongodb":
        image = orjson.dumps(image).decode()  # the document as extended JSON text
    before, after = (image, None) if op == "d" else (None, image)
    envelope = {"before": before, "after": after, "source": source, "op": op, "ts_ms": 1}
    return orjson.dumps({**envelope, **extra})


def decoded(value: bytes, binding: InputBinding = PRICES) -> Mapped:
    mapped = decode_mapped(value, None, binding)
    assert mapped is not None
    return mapped


def sql_lsn(vlf: int, block: int, slot: int) -> str:
    """A SQL Server LSN as Debezium writes it: ``VLF:block:slot`` in hex."""
    return f"{vlf:08x}:{block:08x}:{slot:04x}"
