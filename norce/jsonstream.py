"""Stream items as one JSON array without ever holding the whole array in memory.

A full import can hold hundreds of thousands of rows; the body is produced lazily, in
chunks of about ``chunk_size`` bytes, as httpx sends it.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import orjson
from pydantic import BaseModel

Item = Mapping[str, Any] | BaseModel


class ItemBatches:
    """Items handed over a list at a time (a full import's rows, a fetch at a time):
    each list is encoded in one call, and the rows do not cross an async generator one
    by one. Iterate it as an async iterable of the lists."""

    def __init__(self, batches: AsyncIterable[Sequence[Item]]) -> None:
        self.batches = batches

    def __aiter__(self) -> AsyncIterator[Sequence[Item]]:
        return self.batches.__aiter__()


Items = Iterable[Item] | AsyncIterable[Item] | ItemBatches

DEFAULT_CHUNK_SIZE = 64 * 1024


def _default(value: Any) -> Any:
    # Prices are decimals; write them as exact JSON numbers, not floats or strings.
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError(f"cannot send non-finite decimal {value}")
        return orjson.Fragment(format(value, "f"))
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def encode_item(item: Item) -> bytes:
    """One item as compact JSON; pydantic models go out by their (PascalCase) aliases."""
    if type(item) is dict:  # the usual row: skips two ABC checks per row of a big file
        return orjson.dumps(item, default=_default)
    if isinstance(item, BaseModel):
        item = item.model_dump(by_alias=True)
    elif not isinstance(item, Mapping):
        raise TypeError(f"an import item must be a mapping or a pydantic model, not {item!r:.80}")
    return orjson.dumps(item, default=_default)


def encode_batch(batch: Sequence[Item]) -> bytes:
    """The items as ``encode_item`` writes them, joined by commas (no brackets)."""
    if all(type(item) is dict for item in batch):
        return orjson.dumps(batch, default=_default)[1:-1]  # one call for the whole list
    return b",".join(encode_item(item) for item in batch)


async def _aiter(items: Iterable[Item] | AsyncIterable[Item]) -> AsyncIterator[Item]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


async def json_array_chunks(
    items: Items, *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> AsyncIterator[bytes]:
    """Yield ``[``, the items joined by ``,``, ``]`` as byte chunks of ~``chunk_size``."""
    buffer = bytearray(b"[")
    source: AsyncIterable[Any]
    if isinstance(items, ItemBatches):  # a batch is encoded whole (one call per fetch)
        source, encode = items, encode_batch
    else:
        # An async source is iterated directly, not through _aiter: one generator step
        # less per row of a million-row full file.
        source = items if isinstance(items, AsyncIterable) else _aiter(items)
        encode = encode_item
    first = True
    async for part in source:
        piece = encode(part)
        if not piece:  # an empty batch
            continue
        if not first:
            buffer += b","
        first = False
        buffer += piece
        if len(buffer) >= chunk_size:
            yield bytes(buffer)
            buffer.clear()
    buffer += b"]"
    yield bytes(buffer)
