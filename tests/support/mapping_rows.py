"""Source rows of the example config's bindings, for the mapping tests.

Shared by the mapping tests (``tests/unit/config/test_mapping.py``) and the fused hot path
check (``tests/unit/import_path/test_decode_mapped.py``), which sends them as Debezium
messages through both paths.
"""

from __future__ import annotations

from typing import Any

# erp.public.prices: untrimmed, lower-case codes and a null cost the mapping must handle.
PRICE_ROW: dict[str, Any] = {
    "part_no": "A-100",
    "price_list_code": " std ",
    "quantity_break": 1,
    "price_sale": 199.9,
    "cost_purchase": 120.0,
    "cost_unit": None,
    "price_recommended": 249.0,
    "is_discountable": True,
    "currency_code": "sek",
}

# The price binding's key columns: a default-identity before-image fills only these.
PRICE_KEY_COLUMNS = ("part_no", "price_list_code", "quantity_break")

# erp.public.items: a product keyed per SKU.
ITEM_ROW: dict[str, Any] = {
    "part_no": "P1-A",
    "product_code": "P1",
    "manufacturer_code": "ACME",
    "ean_code": " 7310000000001 ",
    "weight_kg": "1.250",
    "is_buyable": True,
    "standard_price": 99.0,
}

# pim.public.products: product content in two cultures.
PIM_ROW: dict[str, Any] = {
    "product_code": "P1",
    "manufacturer_code": "ACME",
    "manufacturer_name": "Acme AB",
    "name_sv": "Stol",
    "title_sv": "Stol, ek",
    "description_sv": None,
    "name_en": "Chair",
    "title_en": "Chair, oak",
    "description_en": None,
    "main_part_no": "P1-A",
    "sku_comment_sv": "Monteras",
}


def key_only(row: dict[str, Any], key_columns: tuple[str, ...]) -> dict[str, Any]:
    """``row`` as a default-identity before-image: the key columns, every other one null."""
    return {k: (v if k in key_columns else None) for k, v in row.items()}
