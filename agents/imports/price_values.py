"""Price values Norce will not write: null or 0 in an owned price field.

Norce never overwrites a price with null or 0 (its SkuPriceList schema says so for every
price field; norce-api.md, Connect), so such a value in a delta or full row silently
leaves the old price in place. Each one is counted per source and field
(``norce_sync_unwritable_price_values_total``) and logged once per key by the service
that sends it (:class:`UnwritablePrices`, one per delta submitter and full import).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from agents.config.sync_config import InputBinding
from streams import metrics

log = logging.getLogger(__name__)

PRICE_VALUES = frozenset(
    ("PriceSale", "CostPurchase", "CostUnit", "PriceRecommended", "PricePrevious", "PriceCatalog")
)
_CODES = {3: "PriceSale", 4: "CostPurchase", 5: "CostUnit", 6: "PriceRecommended"}
_CODES |= {7: "PricePrevious", 8: "PriceCatalog"}
_LOGGED_MAX = 100_000  # bounded memory: past it, keys may be logged again


def owned_price_values(binding: InputBinding) -> tuple[str, ...]:
    owned = binding.owned_fields.get("SkuPriceListFieldsThatAreSet", [])
    names = (_CODES.get(f) if isinstance(f, int) else f for f in owned)
    return tuple(n for n in names if n in PRICE_VALUES)


class UnwritablePrices:
    """What one sender (the delta submitter, the full import) has logged: each key and
    field once, in bounded memory."""

    def __init__(self) -> None:
        self._logged: set[str] = set()

    def note(self, binding: InputBinding, rows: Iterable[dict[str, Any]]) -> int:
        """Count (and log once per key) owned price fields that are null or 0 in ``rows``;
        returns how many values were found. Deactivations (``IsActive: false``) are
        skipped: their prices do not matter."""
        if binding.kind != "price":
            return 0
        fields = owned_price_values(binding)
        if not fields:
            return 0
        found = 0
        for row in rows:
            if row.get("IsActive") is False:
                continue
            for name in fields:
                value = row.get(name)
                if value is None or value == 0:
                    found += 1
                    metrics.unwritable_prices.inc(source=binding.source, kind="price", field=name)
                    self._log_once(binding, row, name, value)
        return found

    def _log_once(self, binding: InputBinding, row: dict[str, Any], name: str, value: Any) -> None:
        key = "|".join(str(row.get(f)) for f in binding.norce_key_fields)
        marker = f"{binding.source}|{key}|{name}"
        if marker in self._logged:
            return
        if len(self._logged) >= _LOGGED_MAX:
            self._logged.clear()
        self._logged.add(marker)
        log.warning(
            "%s price %s: %s is %s; Norce keeps its current value",
            binding.source,
            key,
            name,
            "null" if value is None else value,
        )
