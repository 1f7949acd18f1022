"""Declarative field mapping: source columns -> Norce fields (and Query entities -> targets).

A mapping is a dict from output field to a spec::

    PartNo: part_no                                   # shorthand for {from: part_no}
    PriceSale: {from: price_sale, convert: decimal}
    QuantityBreak: {from: quantity_break, convert: int, default: 1}
    CurrencyCode: {const: SEK}
    Cultures.0.Name: {from: name_sv, convert: [strip]}  # dotted output path -> nesting

- ``from`` names a source column; a dotted ``from`` (``PriceLists.0.PriceSale``) walks
  nested objects and lists, for Query entities on the export path.
- ``convert`` is one conversion or a list applied in order (see ``CONVERSIONS``); a
  conversion may take an argument after a colon (``datetime:us``, ``decimal:2``). Null
  values skip conversions.
- ``default`` is the output value used as-is when the column is missing or null. Without
  a default a missing column is a mapping error (it catches typos), while a null passes.
- ``const`` is a fixed output value.
- Output paths with integer segments build lists (``Variants.0.Skus.0.EanCode``); list
  indexes must be contiguous from 0, and no output path may be a prefix of another.

A mapping is compiled once into a ``Mapper``; an optional hook ``"package.module:function"``
(or ``"file.py:function"``, relative to the config file) then runs as
``hook(row, context) -> dict`` (``context`` is the ``ChangeEvent`` on the import path).
``map_for_import`` is the import step of the fused hot path
(``agents.imports.cdc.decode_mapped``): a decoded row to (Norce key, Norce row). A delete
maps only what its before-image holds (no defaults or constants; nulls count as unknown,
since Postgres fills only the key of a default-identity before-image), must still yield
the key fields, and gets ``IsActive: False``; a state that merges it onto the held row
keeps the other fields. Other changes get ``IsActive: True`` unless the mapping sets it,
so a re-created row is re-activated.

This module is the mapping language's public surface; behind it: the conversions and
Debezium decimals (``conversions.py``), hook loading (``hooks.py``) and the generated
fast path of a flat mapping (``mapping_codegen.py``).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from agents.config.conversions import (
    CONVERSIONS,
    MappingError,
    _compile_chain,
    _compile_conversion,
    _is_number,
    decimal_to_number,
    decode_decimal_bytes,
    decode_variable_scale_decimal,
)
from agents.config.hooks import Hook, load_hook
from agents.config.mapping_codegen import _MISSING, _generate_full_map

if TYPE_CHECKING:
    from agents.config.sync_config import InputBinding

__all__ = [
    "CONVERSIONS",
    "KEY_FIELDS",
    "FieldSpec",
    "Mapper",
    "MappingError",
    "decimal_to_number",
    "decode_decimal_bytes",
    "decode_variable_scale_decimal",
    "key_function",
    "load_hook",
    "map_for_import",
    "norce_key",
    "parse_mapping",
]

# Norce match keys per kind (norce-api.md). Products can be matched by PartNo instead, for
# sources keyed per SKU: see ``InputBinding.key_fields``.
KEY_FIELDS: dict[str, tuple[str, ...]] = {
    "price": ("PartNo", "PriceListCode", "QuantityBreak"),
    "stock": ("PartNo", "WarehouseCode", "LocationCode"),
    "product": ("Code",),
    "customer": ("Code",),
    "pricelist": ("PriceListCode",),
    "company": ("Code",),
}


# --- the mapping model -------------------------------------------------------------------

_SEGMENT = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_\-]*|[0-9]+)$")


class FieldSpec(BaseModel):
    """One output field: ``{from, convert, default}`` or ``{const}``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: str | None = Field(default=None, alias="from")
    const: Any = None
    convert: list[str] = Field(default_factory=list)
    default: Any = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"from": data}
        if isinstance(data, dict) and isinstance(data.get("convert"), str):
            return {**data, "convert": [data["convert"]]}
        return data

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        has_const = "const" in self.model_fields_set
        if (self.from_ is None) == (not has_const):
            raise ValueError("give exactly one of 'from' or 'const'")
        if has_const and (self.convert or self.has_default):
            raise ValueError("'const' takes no 'convert' or 'default'")
        if self.from_ is not None:
            _parse_path(self.from_)
        for conversion in self.convert:
            _compile_conversion(conversion)
        return self

    @model_serializer(mode="plain")
    def _compact(self) -> dict[str, Any]:
        # Dump in the config's own form, so a dumped config loads back unchanged.
        if self.is_const:
            return {"const": self.const}
        out: dict[str, Any] = {"from": self.from_}
        if self.convert:
            out["convert"] = list(self.convert)
        if self.has_default:
            out["default"] = self.default
        return out

    @property
    def has_default(self) -> bool:
        return "default" in self.model_fields_set

    @property
    def is_const(self) -> bool:
        return "const" in self.model_fields_set


MappingSpec = dict[str, FieldSpec]


def parse_mapping(raw: Mapping[str, Any]) -> MappingSpec:
    return {name: FieldSpec.model_validate(spec) for name, spec in raw.items()}


def _parse_path(path: str) -> tuple[str | int, ...]:
    parts = path.split(".")
    if not path or not all(_SEGMENT.match(part) for part in parts):
        raise ValueError(f"bad field path {path!r}")
    tokens = tuple(int(p) if p.isdigit() else p for p in parts)
    if isinstance(tokens[0], int):
        raise ValueError(f"field path {path!r} must start with a name")
    return tokens


def _check_paths(paths: list[tuple[str | int, ...]]) -> None:
    """Reject prefix clashes, mixed list/object levels and gaps in list indexes."""
    seen = {p: ".".join(map(str, p)) for p in paths}
    children: dict[tuple[str | int, ...], set[str | int]] = {}
    for path in paths:
        for depth in range(1, len(path)):
            prefix = path[:depth]
            if prefix in seen:
                raise ValueError(f"field {seen[prefix]!r} clashes with {seen[path]!r}")
            children.setdefault(prefix, set()).add(path[depth])
    for prefix, keys in children.items():
        where = ".".join(map(str, prefix))
        ints = {k for k in keys if isinstance(k, int)}
        if ints and len(ints) != len(keys):
            raise ValueError(f"{where!r} mixes list indexes and field names")
        if ints and ints != set(range(len(ints))):
            raise ValueError(f"list indexes under {where!r} must run from 0 without gaps")


def _getter(tokens: tuple[str | int, ...]) -> Callable[[Mapping[str, Any]], Any]:
    if len(tokens) == 1:
        name = tokens[0]
        return lambda row: row.get(name, _MISSING)

    def get(row: Mapping[str, Any]) -> Any:
        node: Any = row
        for token in tokens:
            if isinstance(token, int):
                if not isinstance(node, list) or token >= len(node):
                    return _MISSING
                node = node[token]
            else:
                if not isinstance(node, dict):
                    return _MISSING
                node = node.get(token, _MISSING)
                if node is _MISSING:
                    return _MISSING
        return node

    return get


def _assign(out: dict[str, Any], tokens: tuple[str | int, ...], value: Any) -> None:
    node: Any = out
    for i in range(len(tokens) - 1):
        token = tokens[i]
        if isinstance(token, int):
            while len(node) <= token:
                node.append(None)
            child = node[token]
        else:
            child = node.get(token)
        if child is None:
            child = [] if isinstance(tokens[i + 1], int) else {}
            node[token] = child
        node = child
    last = tokens[-1]
    if isinstance(last, int):
        while len(node) <= last:
            node.append(None)
    node[last] = value


class Mapper:
    """A compiled mapping: ``mapper(row, partial=..., context=...) -> dict``."""

    __slots__ = ("_fast", "_fields", "_hook", "_specs", "hook_name", "output_paths")

    def __init__(
        self,
        spec: Mapping[str, Any],
        hook: str | Hook | None = None,
        *,
        base_dir: Path | None = None,
        hook_anywhere: bool = False,
    ) -> None:
        specs = {
            name: s if isinstance(s, FieldSpec) else FieldSpec.model_validate(s)
            for name, s in spec.items()
        }
        if not specs:
            raise ValueError("mapping is empty")
        paths = {name: _parse_path(name) for name in specs}
        _check_paths(list(paths.values()))
        self._specs = specs
        self.output_paths: tuple[str, ...] = tuple(specs)
        self._fields = tuple(self._compile_field(name, paths[name], s) for name, s in specs.items())
        converts = tuple(tuple(s.convert) for s in specs.values())
        self._fast = _generate_full_map(self._fields, converts)
        if isinstance(hook, str):
            self.hook_name: str | None = hook
            self._hook: Hook | None = load_hook(hook, base_dir, anywhere=hook_anywhere)
        else:
            self.hook_name = getattr(hook, "__qualname__", None) if hook else None
            self._hook = hook

    @staticmethod
    def _compile_field(name: str, out: tuple[str | int, ...], spec: FieldSpec) -> tuple[Any, ...]:
        # (name, target, nested target, column or getter or None for a const, conversion,
        #  has default, default or const, source text, const needs a copy)
        nested = len(out) > 1
        target = out if nested else out[0]
        if spec.is_const:
            const = spec.const
            mutable = isinstance(const, dict | list)
            return (name, target, nested, None, None, False, const, None, mutable)
        assert spec.from_ is not None
        path = _parse_path(spec.from_)
        column: Any = path[0] if len(path) == 1 else _getter(path)
        conv = _compile_chain(spec.convert)
        default = spec.default
        return (name, target, nested, column, conv, spec.has_default, default, spec.from_, False)

    @property
    def has_hook(self) -> bool:
        return self._hook is not None

    @property
    def generated(self) -> Callable[[Mapping[str, Any]], dict[str, Any]] | None:
        """The generated full-row mapping (``row -> out``, the hook not included), or
        None when this mapping takes the field loop."""
        return self._fast

    def __call__(
        self, row: Mapping[str, Any], *, partial: bool = False, context: Any = None
    ) -> dict[str, Any]:
        """Map ``row``.

        ``partial`` (deletes) maps only what the before-image holds: missing and null columns,
        defaults and constants are left out.
        """
        return self.map(row, partial, context)

    def map(self, row: Mapping[str, Any], partial: bool, context: Any) -> dict[str, Any]:
        """``__call__`` with positional arguments: the per-change path."""
        # The same steps, generated once for these fields, when there is a generated form.
        fast = None if partial else self._fast
        out = self._map_fields(row, partial) if fast is None else fast(row)
        if self._hook is not None:
            try:
                result = self._hook(out, context)
            except MappingError:
                raise
            except Exception as exc:
                raise MappingError(f"hook {self.hook_name} failed: {exc!r}") from None
            if not isinstance(result, dict):
                raise MappingError(
                    f"hook {self.hook_name} returned {type(result).__name__}, not a dict"
                )
            out = result
        return out

    def _map_fields(self, row: Mapping[str, Any], partial: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        get = row.get
        for name, target, nested, column, conv, has_default, default, src, mutable in self._fields:
            if column is None:  # const
                if partial:
                    continue
                value = copy.deepcopy(default) if mutable else default
            else:
                value = get(column, _MISSING) if type(column) is str else column(row)
                if value is None or value is _MISSING:
                    if partial:
                        # A before-image may hold only the key (Postgres REPLICA IDENTITY
                        # DEFAULT leaves the other columns null): nulls there mean "unknown".
                        continue
                    if value is _MISSING:
                        if not has_default:
                            raise MappingError(f"{name}: column {src!r} is missing from the row")
                        value = default
                    elif has_default:
                        value = default
                elif conv is not None:
                    try:
                        value = conv(value)
                    except (ValueError, TypeError, ArithmeticError) as exc:
                        raise MappingError(f"{name} from {src!r}: {exc}") from None
            if nested:
                _assign(out, target, value)
            else:
                out[target] = value
        return out

    def __eq__(self, other: object) -> bool:
        # Equal specs compile to equal behaviour; lets configs holding mappers compare.
        if not isinstance(other, Mapper):
            return NotImplemented
        return self._specs == other._specs and self._hook is other._hook

    __hash__ = None  # type: ignore[assignment]


# --- keys and the import step ------------------------------------------------------------


def _key_text(value: Any, field: str) -> str:
    if type(value) is str:
        if value:
            return value
    elif value is not _MISSING and value is not None:
        if isinstance(value, bool) or not _is_number(value):
            raise MappingError(f"key field {field} must be a string or number, got {value!r}")
        if isinstance(value, float) and value.is_integer():
            return str(int(value))  # 1.0 and 1 are the same QuantityBreak
        return str(value)
    raise MappingError(f"key field {field} is missing or empty")


_KEY_FUNCS: dict[tuple[str, ...], Callable[[Mapping[str, Any]], str]] = {}


def _key_func(fields: tuple[str, ...]) -> Callable[[Mapping[str, Any]], str]:
    """Compiled once per key-field tuple: the key runs once per change."""
    func = _KEY_FUNCS.get(fields)
    if func is None:
        paths = [_parse_path(f) for f in fields]
        if all(len(p) == 1 for p in paths):
            # Top-level key fields (every flat kind): read the row directly.
            names = tuple(fields)

            def func(row: Mapping[str, Any]) -> str:
                get = row.get
                parts = []
                for name in names:
                    value = get(name)
                    kind = type(value)
                    if kind is str and value:
                        parts.append(value)
                    elif kind is int:  # as _key_text does
                        parts.append(str(value))
                    else:
                        parts.append(_key_text(value, name))
                return "|".join(parts)

        else:
            getters = tuple((f, _getter(p)) for f, p in zip(fields, paths, strict=True))

            def func(row: Mapping[str, Any]) -> str:
                return "|".join([_key_text(get(row), name) for name, get in getters])

        _KEY_FUNCS[fields] = func
    return func


def norce_key(kind: str, row: Mapping[str, Any], key_fields: tuple[str, ...] | None = None) -> str:
    """The Norce match key of a mapped row: key field values joined by ``|``.

    Values are not escaped: a ``|`` inside a value could make two keys collide.
    """
    fields = key_fields or KEY_FIELDS.get(kind)
    if not fields:
        raise MappingError(f"no key fields known for kind {kind!r}")
    return _key_func(tuple(fields))(row)


def key_function(binding: InputBinding) -> Callable[[Mapping[str, Any]], str]:
    """The compiled Norce key of ``binding``'s mapped rows."""
    return _key_func(binding.norce_key_fields)


def map_for_import(
    mapper: Mapper,
    key_of: Callable[[Mapping[str, Any]], str],
    row: Mapping[str, Any],
    deleted: bool,
    context: Any,
) -> tuple[str, dict[str, Any]]:
    """The import step of ``decode_mapped``: (Norce key, mapped row with ``IsActive``)."""
    out = mapper.map(row, deleted, context)
    key = key_of(out)
    if deleted:
        out["IsActive"] = False
    else:
        out.setdefault("IsActive", True)
    return key, out
