from __future__ import annotations

import orjson
import pytest

from norce_simulator.jsonarray import JsonArrayError, JsonArraySplitter

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


def split(body: bytes, chunk: int) -> list[bytes]:
    s = JsonArraySplitter()
    out: list[bytes] = []
    for i in range(0, len(body), chunk):
        out += s.feed(body[i : i + chunk])
    s.close()
    return out


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 64, 10_000])
def test_split_any_chunking_gives_the_same_items(chunk: int) -> None:
    body = b"\xef\xbb\xbf \n[ " + b" ,\n ".join(orjson.dumps(x) for x in TRICKY) + b" ]\n "
    items = split(body, chunk)
    assert [orjson.loads(i) for i in items] == TRICKY


def test_empty_array_and_whitespace() -> None:
    assert split(b"  [ \n ]  ", 1) == []


def test_buffer_holds_only_the_unfinished_item() -> None:
    s = JsonArraySplitter()
    row = orjson.dumps({"PartNo": "1", "PriceSale": 1.0})
    s.feed(b"[")
    for _ in range(1000):
        assert s.feed(row + b",") == [row]
    # consumed bytes are dropped: nothing left but what follows the last comma
    assert len(s._buf) == 0
    s.feed(row[:5])
    assert bytes(s._buf) == row[:5]
    assert s.feed(row[5:] + b"]") == [row]
    s.close()
    assert s.count == 1001


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"a": 1}', "not a JSON array"),
        (b"[1, 2,]", "trailing comma"),
        (b"[1,,2]", "missing item"),
        (b"[,1]", "missing item"),
        (b'[{"a": "unterminated}]', "before the JSON array was closed"),
        (b"[1, 2", "before the JSON array was closed"),
        (b"[1] [2]", "after the end"),
        (b"", "empty body"),
        (b"[1}]", "unbalanced"),
    ],
)
def test_structural_errors(body: bytes, message: str) -> None:
    with pytest.raises(JsonArrayError, match=message):
        split(body, 3)


def test_oversized_item_is_refused_before_it_is_complete() -> None:
    s = JsonArraySplitter(max_item_bytes=100)
    s.feed(b'[{"a": "')
    with pytest.raises(JsonArrayError, match="larger than 100 bytes"):
        s.feed(b"x" * 200)
