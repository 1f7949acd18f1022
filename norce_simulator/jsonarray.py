"""Streaming reader for a JSON array body: yields each top-level element, parsed.

Connect bodies can hold 100,000+ items, so the simulator never loads a body whole: ijson
parses the request stream incrementally and hands out each element once it is complete.
Memory holds the element being parsed plus one read buffer; an element that grows past
``max_item_bytes`` is refused before it is complete.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

import ijson
import orjson

_WS = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"
READ_SIZE = 64 * 1024


class JsonArrayError(ValueError):
    """The body is not a well-formed JSON array."""


class ByteStream(Protocol):
    """What aiohttp's ``request.content`` offers: ``read(n)`` up to n bytes, b"" at end."""

    async def read(self, n: int = -1) -> bytes: ...


class _Reader:
    """The stream as ijson reads it: checks the body opens an array (ijson would take any
    JSON value and find no items in it), drops a UTF-8 BOM (yajl refuses one), and counts
    bytes so an element that outgrows the limit is refused."""

    def __init__(self, stream: ByteStream, max_item_bytes: int) -> None:
        self._stream = stream
        self._max = max_item_bytes
        self._head = b""
        self.total = 0  # bytes read from the stream
        self.mark = 0  # ``total`` when the last element came out
        self.count = 0  # elements that came out

    async def _next(self, size: int = READ_SIZE) -> bytes:
        chunk = await self._stream.read(size)
        self.total += len(chunk)
        return chunk

    async def start(self) -> None:
        head = b""
        while len(head) < len(_BOM) and (chunk := await self._next()):
            head += chunk
        head = head.removeprefix(_BOM).lstrip(_WS)
        while not head and (chunk := await self._next()):
            head = chunk.lstrip(_WS)
        if not head:
            raise JsonArrayError("empty body, expected a JSON array")
        if not head.startswith(b"["):
            raise JsonArrayError("body is not a JSON array")
        self._head = head

    async def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson asks for 0 bytes to learn whether the stream gives bytes
            return b""
        if self._head:
            head, self._head = self._head, b""
            return head
        # Checked before reading on: every byte since the last element belongs to the
        # unfinished one (bar separators), so only a truly large element trips this.
        if self.total - self.mark > self._max:
            raise JsonArrayError(f"item {self.count} is larger than {self._max} bytes")
        return await self._next(size if size > 0 else READ_SIZE)


def _reason(error: Exception, count: int) -> str:
    text = str(error).split("\n", 1)[0].strip()
    if "premature EOF" in text or "Incomplete JSON" in text:
        return "body ended before the JSON array was closed"
    if "trailing garbage" in text or "Additional data" in text:
        return "data after the end of the array"
    # ijson reports a parse error for a whole read buffer, so the bad element is this one
    # or one after it in the same buffer.
    return f"not valid JSON at item [{count}] or after: {text}"


# The fast path keeps at most this much of the body unparsed (the body splits at no "},"
# it can use: nested or unusual elements) before ijson reads the rest.
FAST_LIMIT = 256 * 1024
_COMMA = 44
# orjson reads an integer past 64 bits (as a float or an unsigned) where yajl refuses the
# body ("integer overflow"): text with a run of 19 digits anywhere is left to ijson.
# (Digits mapped to "0" and searched: a tenth of a regular expression's cost.)
_DIGITS = bytes.maketrans(b"0123456789", b"0000000000")
_LONG_RUN = b"0" * 19


def _long_digits(text: bytes, end: int) -> bool:
    return text.translate(_DIGITS).find(_LONG_RUN, 0, end) >= 0


def _last_cut(buf: bytes) -> int:
    """Where the body may split between two elements: the comma after the last "}"
    (bar whitespace), or -1. Only a guess: a "}," can sit inside a string or a nested
    object, so the text before it is parsed whole before anything is handed out."""
    end = len(buf)
    for _ in range(3):
        brace = buf.rfind(b"}", 0, end)
        if brace < 0:
            return -1
        at = brace + 1
        while at < len(buf) and buf[at] in _WS:
            at += 1
        if at < len(buf) and buf[at] == _COMMA:
            return at
        end = brace
    return -1


async def iter_json_batches(
    stream: ByteStream, max_item_bytes: int = 4 * 1024 * 1024
) -> AsyncIterator[list[Any]]:
    """The elements of the array ``stream`` holds, a list per read of the body; raises
    :class:`JsonArrayError` when the body is not an array.

    The same elements and errors as :func:`iter_json_array` at a quarter of its cost per
    row: the text up to a "}," is parsed by orjson as ``[`` + text + ``]``. JSON is read
    left to right with one meaning per byte, so when that parses, the text is exactly
    whole elements of the array (a "}," inside a string would leave the string open and
    fail). Whatever orjson does not take (a guess that falls inside an element, an
    error, a number orjson cannot hold) is left to ijson, which reads the rest of the
    body from there and gives the answer and the message."""
    reader = _Reader(stream, max_item_bytes)
    await reader.start()
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    pending = b""
    after_comma = False  # the body so far ends with a comma: an element must follow
    opened = False
    while True:
        chunk = await reader.read(READ_SIZE)
        if not opened:
            chunk, opened = chunk[1:], True  # the "[" that start() found
            if not chunk:
                continue
        if not chunk:  # the end of the body: the rest must be elements and "]"
            if _long_digits(pending, len(pending)):
                break
            try:
                items = loads(b"[" + pending)
            except decode_error:
                break
            if not items and after_comma:
                break  # "[1,]"
            reader.count += len(items)
            if items:
                yield items
            return
        pending += chunk
        cut = _last_cut(pending)
        if cut >= 0 and not _long_digits(pending, cut):
            try:
                items = loads(b"[" + pending[:cut] + b"]")
            except decode_error:
                items = None
            if items:
                reader.mark = reader.total
                reader.count += len(items)
                pending = pending[cut + 1 :]
                after_comma = True
                yield items
                continue
        if len(pending) > FAST_LIMIT:
            break
    # From here ijson reads on: the text not yet handed out, after a "[" (and, after a
    # comma, a stand-in element so "[1,]" stays an error) and then the rest of the body.
    async for batch in _ijson_from(reader, pending, after_comma):
        yield batch


async def _ijson_from(
    reader: _Reader, pending: bytes, after_comma: bool
) -> AsyncIterator[list[Any]]:
    items = ijson.sendable_list()
    parser = ijson.items_coro(items, "item", use_float=True)
    stand_in = after_comma
    chunk = (b"[0," if after_comma else b"[") + pending
    while True:
        try:
            if chunk:
                parser.send(chunk)
            else:
                parser.close()  # the end of the body: an unclosed array fails here
        except ijson.JSONError as error:
            raise JsonArrayError(
                _reason(error, reader.count + len(items) - len(items[:stand_in]))
            ) from None
        if stand_in and items:
            del items[0]
            stand_in = False
        if items:
            reader.mark = reader.total
            reader.count += len(items)
            batch = list(items)
            del items[:]
            yield batch
        if not chunk:
            return
        chunk = await reader.read(READ_SIZE)


async def iter_json_array(
    stream: ByteStream, max_item_bytes: int = 4 * 1024 * 1024
) -> AsyncIterator[Any]:
    """Each element of the array ``stream`` holds, parsed (numbers with a fraction or an
    exponent as floats), by ijson alone; raises :class:`JsonArrayError` when the body is
    not an array. The reference :func:`iter_json_batches` is held to (tests)."""
    reader = _Reader(stream, max_item_bytes)
    await reader.start()
    items = ijson.items_async(reader, "item", use_float=True)
    while True:
        try:
            item = await anext(items)
        except StopAsyncIteration:
            return
        except ijson.JSONError as error:
            raise JsonArrayError(_reason(error, reader.count)) from None
        reader.mark = reader.total
        reader.count += 1
        yield item
