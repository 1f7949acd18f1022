"""A price row checked without building a pydantic model.

A full import POSTs a million price rows, nearly all plainly valid: two key texts, a
few non-negative numbers and flags. Validating each through ``PriceRow`` (build a model,
dump it) was half of the simulator's CPU per row. :func:`plain_price_row` accepts only a
row whose every field has exactly the type and range ``PriceRow`` would accept without
converting anything, and returns what ``prepare`` would; any other row (a number as
text, a padded key, an unknown field, a price rule, a negative price) returns ``None``
and goes through the model, which gives Norce's answer and its message.
"""

from __future__ import annotations

import math
from typing import Any

_PRICES = frozenset(
    (
        "PriceSale",
        "CostPurchase",
        "CostUnit",
        "PriceRecommended",
        "PricePrevious",
        "PriceCatalog",
    )
)
_FLAGS = frozenset(("IsPriceDiscountable", "IsPriceDiscountableCreateOnly", "IsActive"))
_KEYS = ("PartNo", "PriceListCode")
# Integers a float holds exactly; a larger one (or one past a float's range) is the
# model's to judge.
_EXACT_INT = 2**53


def plain_price_row(raw: dict[str, Any]) -> dict[str, Any] | None:
    """The row as ``prepare("price", ...)`` returns it, or ``None``: ask the model."""
    row: dict[str, Any] = {}
    for name, value in raw.items():
        kind = type(value)
        if name in _PRICES:
            if value is None:
                row[name] = None
            elif kind is float and value >= 0 and math.isfinite(value):
                row[name] = value
            elif kind is int and 0 <= value <= _EXACT_INT:
                row[name] = float(value)  # the model's field is a float
            else:
                return None
        elif name in _FLAGS:
            if value is not None and kind is not bool:
                return None
            row[name] = value
        elif name in _KEYS:
            # The model strips whitespace; a text it would change is left to it.
            if kind is not str or not value or value != value.strip():
                return None
            row[name] = value
        elif name == "QuantityBreak":
            if kind is not int or value < 1:
                return None
            row[name] = value
        elif name == "CurrencyCode":
            if value is not None and kind is not str:
                return None
            row[name] = value
        else:
            return None  # PriceRule, PriceRuleValue or a field the model ignores
    if "PartNo" not in row or "PriceListCode" not in row:
        return None
    row.setdefault("QuantityBreak", 1)
    return row
