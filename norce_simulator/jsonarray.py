"""Incremental splitter for a JSON array body: yields each top-level element's bytes.

Connect bodies can hold 100,000+ items, so the simulator never loads a body whole: it
feeds the request's chunks in here and gets back complete elements as soon as their
closing byte arrives. Only the unfinished tail of the current element is buffered.
The splitter checks structure only (brackets, strings, commas); each element is then
parsed on its own by the caller.
"""

from __future__ import annotations

import re

_WS = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"
# Outside strings only these bytes matter; inside strings only quote and backslash.
_STRUCT = re.compile(rb'[\[\]{}",]')
_IN_STRING = re.compile(rb'["\\]')

_START, _FIRST, _NEXT, _VALUE, _DONE = range(5)


class JsonArrayError(ValueError):
    """The body is not a well-formed JSON array (structure only)."""


class JsonArraySplitter:
    """Feed chunks, collect element bytes; call :meth:`close` at end of body."""

    def __init__(self, max_item_bytes: int = 4 * 1024 * 1024) -> None:
        self._buf = bytearray()
        self._pos = 0  # scan position in _buf
        self._start = 0  # start of the element being scanned
        self._depth = 0  # bracket depth inside the current element
        self._in_str = False
        self._state = _START
        self._bom_checked = False
        self._max = max_item_bytes
        self.count = 0  # elements produced so far

    def feed(self, chunk: bytes) -> list[bytes]:
        if self._state == _DONE:
            if chunk.strip(_WS):
                raise JsonArrayError("data after the end of the array")
            return []
        self._buf += chunk
        out: list[bytes] = []
        self._scan(out)
        # Drop what is consumed once per chunk (not per element: that would be quadratic).
        cut = self._start if self._state == _VALUE else self._pos
        if cut:
            del self._buf[:cut]
            self._pos -= cut
            self._start -= cut
        if self._state == _VALUE and self._pos - self._start > self._max:
            raise JsonArrayError(f"item {self.count} is larger than {self._max} bytes")
        return out

    def close(self) -> None:
        if self._state != _DONE:
            if self._state == _START and not bytes(self._buf).strip(_WS):
                raise JsonArrayError("empty body, expected a JSON array")
            raise JsonArrayError("body ended before the JSON array was closed")

    def _skip_ws(self) -> bool:
        """Advance over whitespace; False if the buffer ran out."""
        buf, n = self._buf, len(self._buf)
        while self._pos < n and buf[self._pos] in _WS:
            self._pos += 1
        return self._pos < n

    def _scan(self, out: list[bytes]) -> None:
        buf = self._buf
        while True:
            if self._state == _START:
                if not self._bom_checked:
                    if len(buf) < 3 and _BOM.startswith(bytes(buf)):
                        return  # maybe a BOM split across chunks: wait for more
                    self._bom_checked = True
                    if buf[:3] == _BOM:
                        self._pos += 3
                if not self._skip_ws():
                    return
                if buf[self._pos] != 0x5B:  # '['
                    raise JsonArrayError("body is not a JSON array")
                self._pos += 1
                self._state = _FIRST
            elif self._state in (_FIRST, _NEXT):
                if not self._skip_ws():
                    return
                c = buf[self._pos]
                if c == 0x5D:  # ']'
                    if self._state == _NEXT:
                        raise JsonArrayError(f"trailing comma after item {self.count - 1}")
                    self._pos += 1
                    self._state = _DONE
                elif c == 0x2C:  # ','
                    raise JsonArrayError(f"missing item at index {self.count}")
                else:
                    self._start = self._pos
                    self._depth = 0
                    self._in_str = False
                    self._state = _VALUE
            elif self._state == _VALUE:
                if not self._scan_value(out):
                    return
            else:  # _DONE
                rest = bytes(buf[self._pos :])
                if rest.strip(_WS):
                    raise JsonArrayError("data after the end of the array")
                self._pos = len(buf)
                return

    def _scan_value(self, out: list[bytes]) -> bool:
        """Scan the current element; True when it ended (state moved on)."""
        buf = self._buf
        while True:
            if self._in_str:
                m = _IN_STRING.search(buf, self._pos)
                if m is None:
                    self._pos = len(buf)
                    return False
                if m.group() == b"\\":
                    if m.start() + 1 >= len(buf):  # escape split across chunks: wait
                        self._pos = m.start()
                        return False
                    self._pos = m.start() + 2
                    continue
                self._in_str = False
                self._pos = m.end()
                continue
            m = _STRUCT.search(buf, self._pos)
            if m is None:
                self._pos = len(buf)
                return False
            c = m.group()
            self._pos = m.end()
            if c == b'"':
                self._in_str = True
            elif c in (b"{", b"["):
                self._depth += 1
            elif self._depth > 0 and c in (b"}", b"]"):
                self._depth -= 1
            elif self._depth > 0:  # ',' inside a nested value
                continue
            elif c in (b",", b"]"):  # end of a top-level element
                item = bytes(buf[self._start : m.start()]).strip(_WS)
                if not item:
                    raise JsonArrayError(f"missing item at index {self.count}")
                out.append(item)
                self.count += 1
                self._state = _NEXT if c == b"," else _DONE
                return True
            else:  # '}' at depth 0
                raise JsonArrayError(f"unbalanced '}}' in item {self.count}")
