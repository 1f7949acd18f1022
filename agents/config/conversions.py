"""The mapping language's conversions (``decimal``, ``int``, ``date:...``, ``cents``...,
chained with ``|``) and Debezium's decimal encodings; :mod:`agents.config.mapping` is
their public surface."""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from agents.config import numbers
from streams.records import PipelineError


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
