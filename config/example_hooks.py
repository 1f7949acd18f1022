"""Python hooks of the example export targets (``hook:`` in a target mapping).

A hook runs after the declarative mapping as ``hook(out, context) -> dict``; ``context``
is a ``agents.export.targets.ExportContext`` whose ``document`` is the whole Query entity, so a
hook can compute what the path DSL cannot (sums over rows, fallbacks between rows).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agents.export.targets import ExportContext


def _stock(document: dict[str, Any]) -> float:
    total = 0.0
    for row in document.get("OnHands") or []:
        value = row.get("OnhandValue") if isinstance(row, dict) else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            total += value
    return total


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def search_sku(out: dict[str, Any], context: ExportContext) -> dict[str, Any]:
    """Stock summed over every warehouse and location; ``in_stock`` for faceting."""
    stock = _stock(context.document)
    out["stock"] = _number(stock)
    out["in_stock"] = stock > 0
    return out


def marketplace_sku(out: dict[str, Any], context: ExportContext) -> dict[str, Any]:
    """Whole units summed over warehouses; the currency falls back to the price list's."""
    out["quantity"] = max(0, int(_stock(context.document)))
    price = out.get("price")
    if isinstance(price, dict) and price.get("currency") is None:
        rows = context.document.get("PriceLists") or []
        head = rows[0].get("PriceList") if rows and isinstance(rows[0], dict) else None
        price["currency"] = (head or {}).get("CurrencyCode")
    return out
