"""A typed builder for the OData v4 query options Norce Query understands.

Values are rendered as OData literals (strings quoted with ``'`` doubled inside,
booleans ``true``/``false``, ``null``, dates unquoted) and property paths are checked,
so no caller input can change the shape of a filter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Union
from urllib.parse import quote, urlencode
from uuid import UUID

Value = Union[str, int, float, bool, None, Decimal, datetime, date, UUID, Enum]  # noqa: UP007

_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$")


def _path(name: str) -> str:
    if not _PATH.match(name):
        raise ValueError(f"not an OData property path: {name!r}")
    return name


def literal(value: Value) -> str:
    """``value`` as an OData v4 literal."""
    if isinstance(value, Enum):
        value = value.value
    if value is None:
        return "null"
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("NaN and infinity have no OData literal here")
        return repr(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("non-finite decimal")
        return format(value, "f")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("OData DateTimeOffset needs a timezone-aware datetime")
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"no OData literal for {type(value).__name__}")


class Expr:
    """A boolean filter expression. Combine with ``&``, ``|`` and ``~``."""

    def to_odata(self) -> str:
        raise NotImplementedError

    def _operand(self) -> str:  # parenthesised when used inside and/or/not
        return self.to_odata()

    def __and__(self, other: Expr) -> Expr:
        return and_(self, other)

    def __or__(self, other: Expr) -> Expr:
        return or_(self, other)

    def __invert__(self) -> Expr:
        return not_(self)

    def __str__(self) -> str:
        return self.to_odata()


@dataclass(frozen=True)
class Compare(Expr):
    op: str
    name: str
    value: Value

    def to_odata(self) -> str:
        return f"{_path(self.name)} {self.op} {literal(self.value)}"


@dataclass(frozen=True)
class Logical(Expr):
    op: str  # "and" | "or"
    parts: tuple[Expr, ...]

    def to_odata(self) -> str:
        return f" {self.op} ".join(part._operand() for part in self.parts)

    def _operand(self) -> str:
        return f"({self.to_odata()})"


@dataclass(frozen=True)
class Not(Expr):
    part: Expr

    def to_odata(self) -> str:
        inner = self.part.to_odata()
        return f"not ({inner})"


def eq(name: str, value: Value) -> Expr:
    return Compare("eq", name, value)


def ne(name: str, value: Value) -> Expr:
    return Compare("ne", name, value)


def gt(name: str, value: Value) -> Expr:
    return Compare("gt", name, value)


def ge(name: str, value: Value) -> Expr:
    return Compare("ge", name, value)


def lt(name: str, value: Value) -> Expr:
    return Compare("lt", name, value)


def le(name: str, value: Value) -> Expr:
    return Compare("le", name, value)


def _flatten(op: str, parts: Iterable[Expr]) -> Expr:
    flat: list[Expr] = []
    for part in parts:
        # (a and b) and c == a and b and c: keeps the string free of needless parens
        flat.extend(part.parts if isinstance(part, Logical) and part.op == op else [part])
    if not flat:
        raise ValueError(f"{op}_ needs at least one expression")
    return flat[0] if len(flat) == 1 else Logical(op, tuple(flat))


def and_(*parts: Expr) -> Expr:
    return _flatten("and", parts)


def or_(*parts: Expr) -> Expr:
    return _flatten("or", parts)


def not_(part: Expr) -> Expr:
    return Not(part)


@dataclass(frozen=True)
class ODataQuery:
    """Immutable: every method returns a new query.

    >>> ODataQuery().filter(eq("PartNo", "10'01")).select("PartNo", "Name").top(10).to_odata()
    "$filter=PartNo eq '10''01'&$select=PartNo,Name&$top=10"
    """

    filters: tuple[Expr, ...] = ()
    selects: tuple[str, ...] = ()
    expands: tuple[tuple[str, ODataQuery | None], ...] = ()
    orderbys: tuple[str, ...] = ()
    top_: int | None = None
    skip_: int | None = None
    count_: bool | None = None
    extra: tuple[tuple[str, str], ...] = field(default=())

    def filter(self, *exprs: Expr) -> ODataQuery:
        """AND the expressions into the filter (repeated calls AND as well)."""
        return replace(self, filters=self.filters + exprs)

    def select(self, *names: str) -> ODataQuery:
        return replace(self, selects=self.selects + tuple(_path(n) for n in names))

    def expand(
        self,
        navigation: str,
        *,
        filter: Expr | None = None,  # mirrors $filter
        select: Iterable[str] = (),
        top: int | None = None,
        skip: int | None = None,
        expand: ODataQuery | None = None,
        query: ODataQuery | None = None,
    ) -> ODataQuery:
        """``$expand=navigation(options)``; options from keywords or a whole sub-query."""
        sub = query or ODataQuery()
        if filter is not None:
            sub = sub.filter(filter)
        if select:
            sub = sub.select(*select)
        if top is not None:
            sub = sub.top(top)
        if skip is not None:
            sub = sub.skip(skip)
        if expand is not None:
            sub = replace(sub, expands=sub.expands + expand.expands)
        nested = None if sub == ODataQuery() else sub
        return replace(self, expands=(*self.expands, (_path(navigation), nested)))

    def order_by(self, name: str, descending: bool = False) -> ODataQuery:
        term = f"{_path(name)} desc" if descending else _path(name)
        return replace(self, orderbys=(*self.orderbys, term))

    def top(self, n: int) -> ODataQuery:
        if n < 0:
            raise ValueError("$top must be >= 0")
        return replace(self, top_=n)

    def skip(self, n: int) -> ODataQuery:
        if n < 0:
            raise ValueError("$skip must be >= 0")
        return replace(self, skip_=n)

    def count(self, on: bool = True) -> ODataQuery:
        return replace(self, count_=on)

    def _options(self) -> list[tuple[str, str]]:
        options: list[tuple[str, str]] = []
        if self.filters:
            options.append(("$filter", and_(*self.filters).to_odata()))
        if self.selects:
            options.append(("$select", ",".join(self.selects)))
        if self.expands:
            rendered = []
            for name, sub in self.expands:
                inner = sub._nested() if sub is not None else ""
                rendered.append(f"{name}({inner})" if inner else name)
            options.append(("$expand", ",".join(rendered)))
        if self.orderbys:
            options.append(("$orderby", ",".join(self.orderbys)))
        if self.top_ is not None:
            options.append(("$top", str(self.top_)))
        if self.skip_ is not None:
            options.append(("$skip", str(self.skip_)))
        if self.count_ is not None:
            options.append(("$count", "true" if self.count_ else "false"))
        return options

    def _nested(self) -> str:
        # Options inside $expand(...) are separated by ';' (OData v4 URL conventions 5.1.3)
        return ";".join(f"{k}={v}" for k, v in self._options())

    def to_params(self) -> dict[str, str]:
        """System query options as a dict for ``httpx`` (which percent-encodes them)."""
        return dict(self._options())

    def to_odata(self) -> str:
        """Readable, unencoded form, e.g. for logs and tests."""
        return "&".join(f"{k}={v}" for k, v in self._options())

    def to_query_string(self) -> str:
        """Percent-encoded query string (spaces as ``%20``, ``$`` and ``,`` kept)."""
        return urlencode(self._options(), quote_via=quote, safe="$,()'=;/")


def entity_key(key: str | int | UUID) -> str:
    """``('100011')`` / ``(42)``: an entity key for a URL path segment."""
    if isinstance(key, bool):
        raise TypeError("a bool is not an entity key")
    if isinstance(key, int | UUID):
        return f"({key})"
    return "('" + quote(key.replace("'", "''"), safe="'") + "')"
