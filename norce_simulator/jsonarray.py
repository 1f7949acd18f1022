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


async def iter_json_batches(
    stream: ByteStream, max_item_bytes: int = 4 * 1024 * 1024
) -> AsyncIterator[list[Any]]:
    """The elements of the array ``stream`` holds, parsed (numbers with a fraction or an
    exponent as floats), a list per read of the body: the same parser and checks as
    :func:`iter_json_array`, without an async step per element (a million-row body);
    raises :class:`JsonArrayError` when the body is not an array."""
    reader = _Reader(stream, max_item_bytes)
    await reader.start()
    items = ijson.sendable_list()
    parser = ijson.items_coro(items, "item", use_float=True)
    while True:
        chunk = await reader.read(READ_SIZE)
        try:
            if chunk:
                parser.send(chunk)
            else:
                parser.close()  # the end of the body: an unclosed array fails here
        except ijson.JSONError as error:
            raise JsonArrayError(_reason(error, reader.count + len(items))) from None
        if items:
            reader.mark = reader.total
            reader.count += len(items)
            batch = list(items)
            del items[:]
            yield batch
        if not chunk:
            return


async def iter_json_array(
    stream: ByteStream, max_item_bytes: int = 4 * 1024 * 1024
) -> AsyncIterator[Any]:
    """Each element of the array ``stream`` holds (see :func:`iter_json_batches`)."""
    async for batch in iter_json_batches(stream, max_item_bytes):
        for item in batch:
            yield item
