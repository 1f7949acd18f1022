from __future__ import annotations

import json
import random
import re
from collections.abc import Awaitable, Callable

import orjson
import pytest

from norce_simulator.jsonarray import JsonArrayError, iter_json_array, iter_json_batches

TRICKY = [
    {"PartNo": "a,b]", "Name": 'quote " and \\ backslash', "Nested": [1, [2, {"x": "}"}]]},
    "plain string, with comma ] and [",
    12.5,
    True,
    None,
    [],
    {},
    {"Unicode": "åäö €", "Esc": '\\"\\n'},
]


class Chunks:
    """An async byte stream serving ``parts`` one per read (split further when a read asks
    for less), counting what it gave out."""

    def __init__(self, parts: list[bytes]) -> None:
        self.parts = [p for p in parts if p]
        self.given = 0

    async def read(self, n: int = -1) -> bytes:
        if not self.parts or n == 0:
            return b""
        part = self.parts.pop(0)
        if 0 < n < len(part):
            part, rest = part[:n], part[n:]
            self.parts.insert(0, rest)
        self.given += len(part)
        return part


def chunked(body: bytes, size: int) -> Chunks:
    return Chunks([body[i : i + size] for i in range(0, len(body), size)])


async def split(body: bytes, chunk: int, max_item_bytes: int = 4 * 1024 * 1024) -> list[object]:
    return [item async for item in iter_json_array(chunked(body, chunk), max_item_bytes)]


async def split_batches(body: bytes, chunk: int) -> list[object]:
    return [item async for batch in iter_json_batches(chunked(body, chunk)) for item in batch]


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 64, 10_000])
async def test_split_any_chunking_gives_the_same_items(chunk: int) -> None:
    body = b"\xef\xbb\xbf \n[ " + b" ,\n ".join(orjson.dumps(x) for x in TRICKY) + b" ]\n "
    assert await split(body, chunk) == TRICKY
    assert await split_batches(body, chunk) == TRICKY  # the connect handler's reader


async def test_empty_array_and_whitespace() -> None:
    assert await split(b"  [ \n ]  ", 1) == []


async def test_items_come_out_while_the_body_streams_in() -> None:
    # Bounded memory: each element is handed out before more than one further read of the
    # body has happened, so nothing ahead of it piles up.
    row = orjson.dumps({"PartNo": "1", "PriceSale": 1.0})
    stream = Chunks([b"[", *([row + b","] * 1000), row + b"]"])
    seen = 0
    async for item in iter_json_array(stream):
        assert item == {"PartNo": "1", "PriceSale": 1.0}
        end_of_item = 1 + (seen + 1) * (len(row) + 1)
        assert stream.given <= end_of_item + len(row) + 1
        seen += 1
    assert seen == 1001


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"a": 1}', "not a JSON array"),
        # ijson names no cause for these; the hand-written splitter said "trailing comma",
        # "missing item" and "unbalanced".
        (b"[1, 2,]", "not valid JSON at item"),
        (b"[1,,2]", "not valid JSON at item"),
        (b"[,1]", "not valid JSON at item [0]"),
        (b'[{"a": "unterminated}]', "before the JSON array was closed"),
        (b"[1, 2", "before the JSON array was closed"),
        (b"[1] [2]", "after the end"),
        (b"", "empty body"),
        (b"[1}]", "not valid JSON at item"),
    ],
)
async def test_structural_errors(body: bytes, message: str) -> None:
    with pytest.raises(JsonArrayError, match=re.escape(message)):
        await split(body, 3)
    with pytest.raises(JsonArrayError, match=re.escape(message)):
        await split_batches(body, 3)


async def test_oversized_item_is_refused_before_it_is_complete() -> None:
    stream = Chunks([b'[{"a": "', b"x" * 200, b"x" * 10_000_000, b'"}]'])
    with pytest.raises(JsonArrayError, match="larger than 100 bytes"):
        async for _ in iter_json_array(stream, max_item_bytes=100):
            pass
    assert stream.given < 1000  # refused without reading the rest of the element


def random_element(rng: random.Random, depth: int = 0) -> object:
    """Rows with the text a splitter can stumble on: "}," in strings, nesting, escapes."""
    texts = ["}", "},", '"},{"', "},\n{", "]", "[", ",", "\\", '"', "åäö €", "\u2028", "x" * 40]
    choice = rng.randrange(8 if depth < 3 else 5)
    if choice == 0:
        return "".join(rng.choice(texts) for _ in range(rng.randrange(4)))
    if choice == 1:
        return rng.choice([0, -1, 2**63 - 1, 2**64 + 5, 10**30, -(2**70)])
    if choice == 2:
        return rng.choice([0.5, -0.0, 1e300, 123.456, 1e-7])
    if choice == 3:
        return rng.choice([True, False, None])
    if choice == 4:
        return {"PartNo": "P}, {", "PriceSale": 1.5}
    if choice == 5:
        return [random_element(rng, depth + 1) for _ in range(rng.randrange(3))]
    return {
        rng.choice(["PartNo", "a", "}", "},{", "k"]): random_element(rng, depth + 1)
        for _ in range(rng.randrange(4))
    }


def random_body(rng: random.Random) -> bytes:
    elements = [random_element(rng) for _ in range(rng.randrange(30))]
    if rng.random() < 0.5:
        elements = [random_element(rng, 3) if rng.random() < 0.2 else e for e in elements]
    sep = rng.choice([b",", b", ", b",\n  ", b" ,"])
    # The standard library writes integers of any size (orjson stops at 64 bits).
    texts = (json.dumps(e, ensure_ascii=False).encode() for e in elements)
    body = b"[" + sep.join(texts) + b"]"
    if rng.random() < 0.3:  # something a client got wrong
        at = rng.randrange(len(body))
        body = rng.choice(
            [
                body[:at] + body[at + 1 :],
                body[:at] + b"," + body[at:],
                body[:at] + b"}" + body[at:],
                body[:at],
                body + b" [1]",
                body[:-1] + b",]",
                body[:at] + b"NaN" + body[at:],
                body[:at] + b"\xff" + body[at:],
            ]
        )
    return body


async def outcome(parse: Callable[[bytes], Awaitable[list[object]]], body: bytes) -> object:
    try:
        return await parse(body)
    except JsonArrayError as error:
        return ("error", str(error).split(" at item")[0].split(":")[0])


@pytest.mark.parametrize("seed", range(20))
async def test_batches_give_the_same_items_and_errors_as_ijson_alone(seed: int) -> None:
    # The connect handler's fast reader against ijson alone, on random bodies (valid and
    # broken) in random read sizes: the same elements, or the same kind of refusal.
    rng = random.Random(seed)
    for _ in range(40):
        body = random_body(rng)
        chunk = rng.choice([1, 3, 17, 64, 1000, 1 << 16])
        expected = await outcome(lambda b, c=chunk: split(b, c), body)
        got = await outcome(lambda b, c=chunk: split_batches(b, c), body)
        assert got == expected, body
