"""The simulator's plain price-row check: it answers exactly as the pydantic model does
for every row it accepts, and leaves every other row to the model."""

from __future__ import annotations

import random
from typing import Any

from norce_simulator.header import parse_header
from norce_simulator.kinds import KINDS, ItemError, prepare
from norce_simulator.price_rows import plain_price_row

HEADER = parse_header('{"AccountId": 1001, "FullFile": true}')
ODD: list[Any] = [
    None, 0, 1, 2, 1.5, 0.0, -1, -0.5, True, False, "1", "", " SKU", "SKU ", "SKU",
    10**400, 2**60, 2**53, float("inf"), float("nan"), [], {}, "  ", "\u00a0SKU",
]  # fmt: skip
FIELDS = [
    "PartNo", "PriceListCode", "QuantityBreak", "PriceSale", "CostPurchase", "CostUnit",
    "PriceRecommended", "PricePrevious", "PriceCatalog", "IsPriceDiscountable",
    "IsPriceDiscountableCreateOnly", "CurrencyCode", "IsActive", "PriceRule",
    "PriceRuleValue", "Unknown",
]  # fmt: skip


def typical(n: int) -> dict[str, Any]:
    return {
        "PartNo": f"SKU-{n:07d}",
        "PriceListCode": "STD",
        "QuantityBreak": 1,
        "PriceSale": 100 + n % 1000,
        "CostPurchase": 60.0,
        "CostUnit": 62.0,
        "PriceRecommended": 120.0,
        "IsPriceDiscountable": True,
        "CurrencyCode": "SEK",
        "IsActive": True,
    }


def by_model(raw: dict[str, Any]) -> dict[str, Any] | str:
    """What the model path of ``prepare`` answers: the row, or the error."""
    spec = KINDS["price"]
    try:
        model = spec.model.model_validate(raw)
    except Exception as error:  # the answer under test
        return type(error).__name__
    row = model.model_dump(mode="json", exclude_unset=True)
    for field in spec.key_fields:
        row[field] = getattr(model, field)
    return row


def test_a_typical_full_import_row_takes_the_plain_path_with_the_models_answer() -> None:
    raw = typical(7)
    plain = plain_price_row(raw)
    assert plain is not None
    assert plain == by_model(raw)
    assert prepare("price", raw, 0, HEADER) == plain


def test_every_row_the_plain_check_accepts_the_model_accepts_the_same() -> None:
    rng = random.Random(24)
    accepted = 0
    for n in range(20_000):
        raw = typical(n)
        for _ in range(rng.randint(0, 3)):
            field = rng.choice(FIELDS)
            if rng.random() < 0.2:
                raw.pop(field, None)
            else:
                raw[field] = rng.choice(ODD)
        plain = plain_price_row(raw)
        if plain is None:
            continue
        accepted += 1
        model = by_model(raw)
        assert isinstance(model, dict), (raw, model)
        assert plain == model, raw
        # And the same types (1 == 1.0 == True would hide a bool or an int).
        assert {k: type(v) for k, v in plain.items()} == {k: type(v) for k, v in model.items()}, raw
    assert accepted > 1000  # the check ran on plenty of accepted rows


def test_rows_the_model_refuses_are_refused_with_its_message() -> None:
    for raw in (
        {**typical(1), "PriceSale": -1},
        {**typical(1), "PartNo": "  "},
        {**typical(1), "QuantityBreak": 0},
        {**typical(1), "PriceSale": float("nan")},
    ):
        assert plain_price_row(raw) is None
        try:
            prepare("price", raw, 3, HEADER)
        except ItemError as error:
            assert str(error).startswith("Item [3] (PartNo ")
        else:
            raise AssertionError(f"accepted {raw}")
