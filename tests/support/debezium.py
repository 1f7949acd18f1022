"""Builds change events shaped as Debezium's Postgres connector writes them (JSON without
the schema wrapper). The demo's generator, the tests and the benchmarks use it; the
decoder in :mod:`agents.imports.cdc` reads them like any Debezium event."""

from __future__ import annotations

import itertools
import time
from typing import Any

import orjson

_lsn = itertools.count(int(time.time() * 1000) * 1000)


def envelope(
    table: str,
    op: str,
    after: dict[str, Any] | None,
    before: dict[str, Any] | None = None,
    *,
    lsn: int | None = None,
    ts_ms: int | None = None,
    server: str = "erp",
) -> dict[str, Any]:
    ts = ts_ms if ts_ms is not None else int(time.time() * 1000)
    return {
        "before": before,
        "after": after,
        "source": {
            "version": "2.5.0.Final",
            "connector": "postgresql",
            "name": server,
            "ts_ms": ts,
            "snapshot": "false" if op != "r" else "true",
            "db": server,
            "schema": "public",
            "table": table,
            "txId": 1,
            "lsn": lsn if lsn is not None else next(_lsn),
            "xmin": None,
        },
        "op": op,
        "ts_ms": ts + 5,
    }


def key_bytes(row: dict[str, Any], columns: list[str]) -> bytes:
    return orjson.dumps({c: row[c] for c in columns})


def price_row(part_no: str, price: float, price_list: str = "STD") -> dict[str, Any]:
    return {
        "part_no": part_no,
        "price_list_code": price_list,
        "quantity_break": 1,
        "price_sale": price,
        "cost_purchase": round(price * 0.6, 2),
        "cost_unit": round(price * 0.62, 2),
        "price_recommended": round(price * 1.2, 2),
        "is_discountable": True,
        "currency_code": "SEK",
    }


PRICE_KEY = ["part_no", "price_list_code", "quantity_break"]


def stock_row(part_no: str, qty: int, warehouse: str = "MAIN") -> dict[str, Any]:
    return {
        "part_no": part_no,
        "warehouse_code": warehouse,
        "location_code": "A1",
        "on_hand_qty": qty,
        "incoming_qty": 0,
        "next_delivery_date": None,
        "lead_time_days": 3,
    }


STOCK_KEY = ["part_no", "warehouse_code", "location_code"]


def item_row(part_no: str, product_code: str, weight: float) -> dict[str, Any]:
    return {
        "part_no": part_no,
        "product_code": product_code,
        "manufacturer_code": "ACME",
        "ean_code": f"73{abs(hash(part_no)) % 10**11:011d}",
        "weight_kg": weight,
        "is_buyable": True,
        "standard_price": 100.0,
    }


def product_row(product_code: str, part_no: str, name: str) -> dict[str, Any]:
    return {
        "product_code": product_code,
        "manufacturer_code": "ACME",
        "manufacturer_name": "Acme AB",
        "name_sv": name,
        "title_sv": name,
        "description_sv": f"{name} (sv)",
        "name_en": name,
        "title_en": name,
        "description_en": f"{name} (en)",
        "main_part_no": part_no,
        "sku_comment_sv": "",
    }


def price_change(n: int, version: int, *, no_price: bool = False) -> tuple[bytes, dict]:
    """(Kafka key, envelope) of SKU ``n``'s price at ``version``: a later version has a
    higher LSN and price; ``no_price`` leaves out the PriceSale Norce requires."""
    row = price_row(f"SKU-{n:05d}", float(n * 100 + version))
    if no_price:
        row["price_sale"] = None  # Norce requires PriceSale when the header lists it
    return key_bytes(row, PRICE_KEY), envelope("prices", "u", row, lsn=1_000_000 + version)
