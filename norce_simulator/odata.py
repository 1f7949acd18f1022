"""A small OData v4 subset: $filter (eq ne gt ge lt le, and, or, not-free, parentheses),
$select, and $expand with nested options (``PriceLists($filter=IsActive eq true;$top=5)``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]


class ODataError(ValueError):
    """A query option that cannot be parsed: answered 400."""


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>'(?:[^']|'')*')
    | (?P<num>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\b
    | (?P<lp>\() | (?P<rp>\))
    | (?P<word>[A-Za-z_][A-Za-z0-9_/]*)
    )""",
    re.VERBOSE,
)


def _eq(a: Any, b: Any) -> bool:
    # bool is an int in Python; OData keeps them apart (1 eq true is false).
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": _eq,
    "ne": lambda a, b: not _eq(a, b),
    "gt": lambda a, b: _cmp(a, b, lambda x, y: x > y),
    "ge": lambda a, b: _cmp(a, b, lambda x, y: x >= y),
    "lt": lambda a, b: _cmp(a, b, lambda x, y: x < y),
    "le": lambda a, b: _cmp(a, b, lambda x, y: x <= y),
}
_LITERALS = {"true": True, "false": False, "null": None}


def _cmp(a: Any, b: Any, op: Callable[[Any, Any], bool]) -> bool:
    if a is None or b is None or isinstance(a, bool) != isinstance(b, bool):
        return False
    try:
        return bool(op(a, b))
    except TypeError:
        return False


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ODataError(f"$filter: cannot parse at {text[pos:]!r}")
        pos = m.end()
        kind = m.lastgroup
        value = m.group(kind)  # type: ignore[arg-type]
        if kind == "str":
            out.append(("lit", value[1:-1].replace("''", "'")))
        elif kind == "num":
            out.append(("lit", float(value) if any(c in value for c in ".eE") else int(value)))
        elif kind == "word" and value in _LITERALS:
            out.append(("lit", _LITERALS[value]))
        else:
            out.append((kind or "", value))
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def _peek(self) -> tuple[str, Any] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _next(self) -> tuple[str, Any]:
        tok = self._peek()
        if tok is None:
            raise ODataError("$filter: unexpected end")
        self.i += 1
        return tok

    def parse(self) -> Predicate:
        pred = self._or()
        if self._peek() is not None:
            raise ODataError(f"$filter: unexpected {self._peek()[1]!r}")  # type: ignore[index]
        return pred

    def _or(self) -> Predicate:
        left = self._and()
        while self._peek() == ("word", "or"):
            self.i += 1
            right = self._and()
            left = (lambda a, b: lambda r: a(r) or b(r))(left, right)
        return left

    def _and(self) -> Predicate:
        left = self._cmp()
        while self._peek() == ("word", "and"):
            self.i += 1
            right = self._cmp()
            left = (lambda a, b: lambda r: a(r) and b(r))(left, right)
        return left

    def _cmp(self) -> Predicate:
        kind, value = self._next()
        if kind == "lp":
            inner = self._or()
            if self._next()[0] != "rp":
                raise ODataError("$filter: missing ')'")
            return inner
        if kind != "word":
            raise ODataError(f"$filter: expected a property name, got {value!r}")
        prop = value
        op_kind, op = self._next()
        if op_kind != "word" or op not in _OPS:
            raise ODataError(f"$filter: unsupported operator {op!r}")
        lit_kind, lit = self._next()
        if lit_kind != "lit":
            raise ODataError(f"$filter: expected a literal after {prop} {op}")
        fn = _OPS[op]
        return lambda row: bool(fn(row.get(prop), lit))


def parse_filter(text: str | None) -> Predicate | None:
    if text is None or not text.strip():
        return None
    return _Parser(text).parse()


# A key lookup's usual form, matched in one pass: ``prop eq 'a' or prop eq 'b' ...`` with
# string or integer literals, in at most one pair of parentheses. Only a subset of what
# parse_filter accepts, so answering it without parse_filter rejects nothing new.
_KEY_LIT = r"'(?:[^']|'')*'|-?\d+"


@functools.lru_cache(maxsize=64)
def _key_patterns(prop: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    term = rf"{re.escape(prop)}\s+eq\s+(?:{_KEY_LIT})"
    whole = rf"\s*(?P<open>\(\s*)?{term}(?:\s+or\s+{term})*\s*(?(open)\))\s*"
    return re.compile(whole), re.compile(rf"{re.escape(prop)}\s+eq\s+({_KEY_LIT})")


def key_terms(text: str | None, prop: str) -> list[str | int] | None:
    """The literals of a filter in a key lookup's usual form (see ``_KEY_LIT``), else
    None. A valid filter: the caller need not parse it again. Linear in its length."""
    if not text:
        return None
    whole, term = _key_patterns(prop)
    if whole.fullmatch(text) is None:
        return None
    # The whole text is terms joined by ``or``: scanning from its start meets each
    # term's literal in turn (a quoted ``or`` sits inside a literal, never between).
    return [
        lit[1:-1].replace("''", "'") if lit[0] == "'" else int(lit) for lit in term.findall(text)
    ]


def key_disjunction(text: str | None, prop: str) -> list[Any] | None:
    """The literals of a filter that is only ``prop eq a or prop eq b ...`` (parentheses
    allowed), else None: lets Query answer a batch lookup from its index, not a scan."""
    if text is None or not text.strip():
        return None
    try:
        toks = [t for t in _tokens(text) if t[0] not in ("lp", "rp")]
    except ODataError:
        return None
    values: list[Any] = []
    for i in range(0, len(toks), 4):
        term = toks[i : i + 4]
        if len(term) < 3 or term[0] != ("word", prop) or term[1] != ("word", "eq"):
            return None
        if term[2][0] != "lit":
            return None
        if len(term) == 4 and term[3] != ("word", "or"):
            return None
        values.append(term[2][1])
    return values if toks and toks[-1][0] == "lit" else None


def parse_select(text: str | None) -> list[str] | None:
    if text is None or not text.strip():
        return None
    return [s.strip() for s in text.split(",") if s.strip()]


@dataclass
class Expand:
    name: str
    filter: Predicate | None = None
    select: list[str] | None = None
    top: int | None = None
    skip: int = 0
    options: dict[str, str] = field(default_factory=dict)


def _split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside parentheses and quotes."""
    parts, depth, quote, cur = [], 0, False, []
    for ch in text:
        if ch == "'":
            quote = not quote
        elif not quote and ch == "(":
            depth += 1
        elif not quote and ch == ")":
            depth -= 1
        if ch == sep and depth == 0 and not quote:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0 or quote:
        raise ODataError("unbalanced parentheses or quotes")
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def parse_int(name: str, text: str | None, default: int | None = None) -> int | None:
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ODataError(f"{name} must be a non-negative integer") from None
    if value < 0:
        raise ODataError(f"{name} must be a non-negative integer")
    return value


def parse_expand(text: str | None) -> list[Expand]:
    if text is None or not text.strip():
        return []
    out = []
    for part in _split_top(text, ","):
        name, _, rest = part.partition("(")
        exp = Expand(name.strip())
        if rest:
            if not rest.endswith(")"):
                raise ODataError(f"$expand: bad options in {part!r}")
            for opt in _split_top(rest[:-1], ";"):
                key, eq, value = opt.partition("=")
                if not eq:
                    raise ODataError(f"$expand: bad option {opt!r}")
                key = key.strip()
                exp.options[key] = value
                if key == "$filter":
                    exp.filter = parse_filter(value)
                elif key == "$select":
                    exp.select = parse_select(value)
                elif key == "$top":
                    exp.top = parse_int("$top", value)
                elif key == "$skip":
                    exp.skip = parse_int("$skip", value, 0) or 0
                else:
                    raise ODataError(f"$expand: unsupported option {key}")
        out.append(exp)
    return out


def project(row: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    if select is None:
        return dict(row)
    return {k: row[k] for k in select if k in row}
