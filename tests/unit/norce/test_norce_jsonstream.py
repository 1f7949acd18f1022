from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal

import orjson
import pytest
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_pascal

from norce.jsonstream import ItemBatches, encode_item, json_array_chunks


class PriceRow(BaseModel):
    model_config = ConfigDict(alias_generator=to_pascal, populate_by_name=True)
    part_no: str
    price_list_code: str
    price_sale: Decimal
    price_catalog: Decimal | None = None


async def collect(chunks: AsyncIterator[bytes]) -> list[bytes]:
    return [chunk async for chunk in chunks]


async def test_empty_source_is_an_empty_array() -> None:
    assert await collect(json_array_chunks([])) == [b"[]"]


async def test_sync_iterable_of_dicts() -> None:
    chunks = await collect(json_array_chunks([{"PartNo": "1"}, {"PartNo": "2"}]))
    assert b"".join(chunks) == b'[{"PartNo":"1"},{"PartNo":"2"}]'


async def test_async_source_and_models_by_alias_with_exact_decimals() -> None:
    async def rows() -> AsyncIterator[PriceRow | dict]:
        yield PriceRow(part_no="1", price_list_code="STD", price_sale=Decimal("99.90"))
        yield {"PartNo": "2", "D": date(2024, 5, 1), "Price": Decimal("0.1")}

    body = b"".join(await collect(json_array_chunks(rows())))
    assert body == (
        b'[{"PartNo":"1","PriceListCode":"STD","PriceSale":99.90,"PriceCatalog":null},'
        b'{"PartNo":"2","D":"2024-05-01","Price":0.1}]'
    )
    assert orjson.loads(body)[0]["PriceSale"] == 99.9


async def test_chunks_are_bounded_and_concatenate_to_valid_json() -> None:
    items = ({"PartNo": f"{i:06d}", "OnhandValue": i} for i in range(5000))
    chunks = await collect(json_array_chunks(items, chunk_size=4096))
    assert len(chunks) > 20
    item_size = len(b'{"PartNo":"000000","OnhandValue":0000},')
    assert max(len(c) for c in chunks) < 4096 + item_size
    decoded = orjson.loads(b"".join(chunks))
    assert len(decoded) == 5000
    assert decoded[4999] == {"PartNo": "004999", "OnhandValue": 4999}


async def test_stream_is_lazy() -> None:
    produced = 0

    def rows():
        nonlocal produced
        for i in range(1_000_000):
            produced += 1
            yield {"PartNo": str(i)}

    stream = json_array_chunks(rows(), chunk_size=1024)
    first = await anext(stream)
    await stream.aclose()
    assert first.startswith(b'[{"PartNo":"0"}')
    assert produced < 200  # only enough rows for one chunk were pulled


def test_encode_item_rejects_non_items() -> None:
    with pytest.raises(TypeError, match="mapping or a pydantic model"):
        encode_item(["PartNo", "1"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not JSON serializable"):
        encode_item({"P": Decimal("NaN")})
    with pytest.raises(TypeError):
        encode_item({"P": object()})


async def test_batches_give_the_body_the_items_give() -> None:
    # A full import hands its rows over a fetch at a time: the body must be byte for
    # byte the one the same rows make one by one (decimals exact, models by alias,
    # empty batches adding no comma), and a bad item must still be refused.
    rows: list[dict[str, object] | PriceRow] = [
        {"PartNo": f"P{n}", "PriceSale": Decimal(f"{n}.10"), "Note": "},{"} for n in range(50)
    ]
    rows[7] = PriceRow(part_no="M1", price_list_code="STD", price_sale=Decimal("9.99"))
    batches = [rows[:0], rows[:5], [], rows[5:30], rows[30:]]

    async def in_batches() -> AsyncIterator[list[dict[str, object] | PriceRow]]:
        for batch in batches:
            yield batch

    one_by_one = b"".join(await collect(json_array_chunks(rows, chunk_size=256)))
    batched = b"".join(await collect(json_array_chunks(ItemBatches(in_batches()), chunk_size=256)))
    assert batched == one_by_one
    assert len(orjson.loads(batched)) == 50
    assert b"".join(await collect(json_array_chunks(ItemBatches(_none())))) == b"[]"

    async def bad() -> AsyncIterator[list[object]]:
        yield [{"P": Decimal("NaN")}]

    with pytest.raises(TypeError):
        await collect(json_array_chunks(ItemBatches(bad())))  # type: ignore[arg-type]


async def _none() -> AsyncIterator[list[dict[str, object]]]:
    return
    yield
