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
``to_mapped`` turns a ``ChangeEvent`` into a ``MappedChange``: a delete maps
only what its before-image holds (no defaults or constants; nulls count as unknown, since
Postgres fills only the key of a default-identity before-image), must still yield the key
fields, and gets ``IsActive: False``; a state that merges it onto the held row keeps the
other fields. Other changes get ``IsActive: True`` unless the mapping sets it, so a
re-created row is re-activated. ``map_for_import`` is that step without the records,
shared with the fused hot path (``agents.imports.cdc.decode_mapped``).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import importlib
import importlib.util
import math
import re
import sys
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from agents.config import numbers
from streams.records import ChangeEvent, MappedChange, PipelineError

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
    "to_mapped",
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

Hook = Callable[[dict[str, Any], Any], dict[str, Any]]


class MappingError(PipelineError):
    """A change could not be mapped (stage ``map``)."""

    def __init__(self, reason: str) -> None:
        super().__init__("map", reason)


# --- conversions -------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_TRUE = frozenset(("true", "t", "yes", "y", "1", "on"))
_FALSE = frozenset(("false", "f", "no", "n", "0", "off"))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def decimal_to_number(d: Decimal) -> int | float:
    # JSON number for Norce: ints stay exact, fractions become floats (correctly rounded);
    # numbers Norce cannot hold are rejected (agents.config.numbers).
    return numbers.to_number(d)


def _decimal_of(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite number: {value!r}")
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"not a number: {value!r}") from None
    if isinstance(value, dict) and "scale" in value and "value" in value:
        return decode_variable_scale_decimal(value)
    raise ValueError(f"expected a number, got {type(value).__name__}")


def decode_decimal_bytes(encoded: str, scale: int) -> Decimal:
    """Kafka Connect ``Decimal``: base64 of a big-endian two's-complement unscaled int."""
    try:
        raw = base64.b64decode(encoded, validate=True)
    except ValueError:
        raise ValueError(f"not a base64 decimal: {encoded!r}") from None
    numbers.check_unscaled(raw)
    return Decimal(int.from_bytes(raw, "big", signed=True)).scaleb(-scale)


def decode_variable_scale_decimal(value: Mapping[str, Any]) -> Decimal:
    """``io.debezium.data.VariableScaleDecimal``: ``{"scale": n, "value": base64}``."""
    scale, encoded = value.get("scale"), value.get("value")
    if not isinstance(scale, int) or isinstance(scale, bool) or not isinstance(encoded, str):
        raise ValueError(f"not a VariableScaleDecimal: {value!r}")
    return decode_decimal_bytes(encoded, scale)


def _conv_str(arg: str | None) -> Callable[[Any], Any]:
    def conv(value: Any) -> Any:
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float | Decimal):
            return str(value)
        raise ValueError(f"cannot convert {type(value).__name__} to str")

    return conv


def _conv_int(arg: str | None) -> Callable[[Any], Any]:
    def conv(value: Any) -> Any:
        if type(value) is int or (isinstance(value, int) and not isinstance(value, bool)):
            return numbers.check_int(value)
        d = _decimal_of(value)
        if not d.is_finite() or d != d.to_integral_value():
            raise ValueError(f"not an integer: {value!r}")
        return numbers.to_int(d)

    return conv


def _conv_float(arg: str | None) -> Callable[[Any], Any]:
    def conv(value: Any) -> Any:
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(f"not a finite number: {value!r}")
            return value
        return numbers.to_float(_decimal_of(value))

    return conv


def _conv_decimal(arg: str | None) -> Callable[[Any], Any]:
    # ``decimal:<scale>`` reads Debezium's precise-mode base64 strings when the topic has no
    # schema to carry the scale (schemas.enable=false).
    scale = _int_arg("decimal", arg) if arg is not None else None

    def conv(value: Any) -> Any:
        kind = type(value)
        if kind is float:  # already a JSON number: the common case, kept cheap
            if math.isfinite(value):
                return value
            raise ValueError(f"not a finite number: {value!r}")
        if kind is int:
            return numbers.check_int(value)
        if scale is not None and kind is str:
            return decimal_to_number(decode_decimal_bytes(value, scale))
        return decimal_to_number(_decimal_of(value))

    return conv


def _conv_bool(arg: str | None) -> Callable[[Any], Any]:
    def conv(value: Any) -> Any:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            text = value.strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
        raise ValueError(f"not a boolean: {value!r}")

    return conv


def _conv_not(arg: str | None) -> Callable[[Any], Any]:
    to_bool = _conv_bool(None)
    return lambda value: not to_bool(value)


def _conv_positive(arg: str | None) -> Callable[[Any], Any]:
    return lambda value: _decimal_of(value) > 0


def _str_method(name: str) -> Callable[[str | None], Callable[[Any], Any]]:
    def factory(arg: str | None) -> Callable[[Any], Any]:
        method = getattr(str, name)

        def conv(value: Any) -> Any:
            if not isinstance(value, str):
                raise ValueError(f"{name} needs a string, got {type(value).__name__}")
            return method(value)

        return conv

    return factory


def _conv_cents(arg: str | None) -> Callable[[Any], Any]:
    def conv(value: Any) -> Any:
        d = _decimal_of(value)
        if not d.is_finite() or d != d.to_integral_value():
            raise ValueError(f"cents must be whole: {value!r}")
        numbers.to_float(d)  # in range before the division (which traps on overflow)
        return float(d / 100)

    return conv


def _conv_date(arg: str | None) -> Callable[[Any], Any]:
    def conv(value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            # io.debezium.time.Date: days since the epoch.
            try:
                return date.fromordinal(_EPOCH_ORDINAL + value).isoformat()
            except (ValueError, OverflowError):
                raise ValueError(f"day number out of range: {value}") from None
        if isinstance(value, str):
            text = value.strip()
            try:
                if len(text) == 10:
                    return date.fromisoformat(text).isoformat()
                return datetime.fromisoformat(text).date().isoformat()
            except ValueError:
                raise ValueError(f"not an ISO date: {value!r}") from None
        raise ValueError(f"not a date: {value!r}")

    return conv


_DATETIME_UNITS = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": None}


def _conv_datetime(arg: str | None) -> Callable[[Any], Any]:
    # Integers are epoch values in ``arg`` units: ms (io.debezium.time.Timestamp, the
    # default), us (MicroTimestamp, Postgres ``timestamp``), ns (NanoTimestamp) or s. They
    # encode wall-clock time without a zone, so the result has none either.
    unit = arg or "ms"
    if unit not in _DATETIME_UNITS:
        raise ValueError(f"datetime unit must be one of s, ms, us, ns; got {unit!r}")
    factor = _DATETIME_UNITS[unit]

    def conv(value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            micros = value // 1000 if factor is None else value * factor
            try:
                return (_EPOCH + timedelta(microseconds=micros)).isoformat()
            except OverflowError:
                raise ValueError(f"timestamp out of range: {value}") from None
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.strip()).isoformat()
            except ValueError:
                raise ValueError(f"not an ISO datetime: {value!r}") from None
        raise ValueError(f"not a datetime: {value!r}")

    return conv


def _int_arg(name: str, arg: str) -> int:
    try:
        return int(arg)
    except ValueError:
        raise ValueError(f"{name} needs an integer argument, got {arg!r}") from None


CONVERSIONS: dict[str, Callable[[str | None], Callable[[Any], Any]]] = {
    "str": _conv_str,
    "int": _conv_int,
    "float": _conv_float,
    "decimal": _conv_decimal,
    "bool": _conv_bool,
    "not": _conv_not,
    "positive": _conv_positive,
    "upper": _str_method("upper"),
    "lower": _str_method("lower"),
    "strip": _str_method("strip"),
    "cents": _conv_cents,
    "date": _conv_date,
    "datetime": _conv_datetime,
}


def _compile_conversion(text: str) -> Callable[[Any], Any]:
    name, _, arg = text.partition(":")
    factory = CONVERSIONS.get(name.strip())
    if factory is None:
        raise ValueError(f"unknown conversion {name!r} (known: {', '.join(sorted(CONVERSIONS))})")
    return factory(arg.strip() if arg else None)


_STR_METHODS = frozenset(("upper", "lower", "strip"))


def _compile_chain(texts: list[str]) -> Callable[[Any], Any] | None:
    """One callable for a list of conversions (None for none), so a field costs one call."""
    convs = tuple(_compile_conversion(t) for t in texts)
    if not convs:
        return None
    if len(convs) == 1:
        return convs[0]
    names = [t.partition(":")[0].strip() for t in texts]
    if all(n in _STR_METHODS for n in names):
        # Fused [strip, upper]-style chains: one type check, the same error as the first.
        methods = tuple(getattr(str, n) for n in names)
        first = names[0]

        def str_chain(value: Any) -> Any:
            if type(value) is not str and not isinstance(value, str):
                raise ValueError(f"{first} needs a string, got {type(value).__name__}")
            for method in methods:
                value = method(value)
            return value

        return str_chain

    def chain(value: Any) -> Any:
        for conv in convs:
            value = conv(value)
        return value

    return chain


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


_MISSING: Any = object()


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


def load_hook(ref: str, base_dir: Path | None = None, *, anywhere: bool = False) -> Hook:
    """Resolve ``"package.module:function"``, or ``"file.py:function"`` (a path relative to
    ``base_dir``, the config file's folder), to a callable. A hook file must lie inside
    ``base_dir`` unless ``anywhere`` (``hook_files_anywhere``): whoever can edit the config
    then cannot make the worker run any Python file on the machine."""
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(
            f"hook must look like 'package.module:function' or 'file.py:function', got {ref!r}"
        )
    try:
        if module_name.endswith(".py"):
            path = ((base_dir or Path.cwd()) / module_name).resolve()
            if (
                base_dir is not None
                and not anywhere
                and not path.is_relative_to(base_dir.resolve())
            ):
                raise ValueError(
                    f"hook {ref!r}: {module_name!r} is outside the config's folder; move it "
                    "there, or set NORCE_SYNC_HOOK_FILES_ANYWHERE=true"
                )
            module = _module_from_file(path)
        else:
            module = importlib.import_module(module_name)
    except (ImportError, OSError) as exc:
        raise ValueError(f"hook {ref!r}: cannot import {module_name!r}: {exc}") from None
    target: Any = module
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ValueError(f"hook {ref!r}: {module_name!r} has no {attr!r}")
    if not callable(target):
        raise ValueError(f"hook {ref!r} is not callable")
    return target


def _module_from_file(path: Path) -> ModuleType:
    """Import a hook file once per resolved path (two mappings naming the same file share
    its functions, so their mappers compare equal)."""
    path = path.resolve()
    name = f"norce_sync_hooks_{hashlib.sha1(str(path).encode()).hexdigest()[:12]}"
    if (loaded := sys.modules.get(name)) is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"not a Python file: {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


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
        self._fast = _generate_full_map(self._fields)
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


def _generate_full_map(fields: tuple[tuple[Any, ...], ...]) -> Callable[[Any], Any] | None:
    """``Mapper._map_fields(row, partial=False)`` as one generated function for mappings
    of top-level targets read from columns or constants (every example binding): no loop,
    no per-field tuple unpacking or branches on the field's kind; the per-change mapping
    runs once per change event. None for other mappings (nested targets, path getters):
    they take the loop."""
    if any(
        nested or (column is not None and type(column) is not str)
        for _, _, nested, column, *_ in fields
    ):
        return None
    env: dict[str, Any] = {
        "_MISSING": _MISSING,
        "MappingError": MappingError,
        "deepcopy": copy.deepcopy,
    }
    lines = ["def full_map(row):", "    get = row.get", "    out = {}"]
    for i, (name, target, _, column, conv, has_default, default, src, mutable) in enumerate(fields):
        env.update(
            {
                f"n{i}": name,
                f"t{i}": target,
                f"c{i}": column,
                f"f{i}": conv,
                f"d{i}": default,
                f"s{i}": src,
            }
        )
        if column is None:  # a constant
            lines.append(f"    out[t{i}] = deepcopy(d{i})" if mutable else f"    out[t{i}] = d{i}")
            continue
        missing = f"raise MappingError(f'{{n{i}}}: column {{s{i}!r}} is missing from the row')"
        lines += [
            f"    value = get(c{i}, _MISSING)",
            "    if value is _MISSING:",
            f"        value = d{i}" if has_default else f"        {missing}",
        ]
        if has_default:
            lines += ["    elif value is None:", f"        value = d{i}"]
        if conv is not None:
            lines += [
                "    elif value is not None:",
                "        try:",
                f"            value = f{i}(value)",
                "        except (ValueError, TypeError, ArithmeticError) as exc:",
                f"            raise MappingError(f'{{n{i}}} from {{s{i}!r}}: {{exc}}') from None",
            ]
        lines.append(f"    out[t{i}] = value")
    lines.append("    return out")
    exec(compile("\n".join(lines), "<generated mapping>", "exec"), env)
    return env["full_map"]  # type: ignore[no-any-return]


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
    """The import step shared by ``to_mapped`` and ``decode_mapped``: (Norce key, row)."""
    out = mapper.map(row, deleted, context)
    key = key_of(out)
    if deleted:
        out["IsActive"] = False
    else:
        out.setdefault("IsActive", True)
    return key, out


def to_mapped(change: ChangeEvent, binding: InputBinding) -> MappedChange:
    """Map a decoded change with its binding's compiled mapping. Raises ``MappingError``."""
    key, row = map_for_import(
        binding.mapper, key_function(binding), change.row, change.deleted, change
    )
    return MappedChange.trusted(
        source=change.source,
        kind=change.kind,
        key=key,
        state_key=f"{change.source}|{change.kind}|{key}",
        version=change.version,
        row=row,
        deleted=change.deleted,
    )
