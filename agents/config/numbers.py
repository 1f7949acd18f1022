"""The numbers Norce can hold, checked before a value leaves the mapping.

Norce is a .NET service: its integer fields are 64-bit (``long``) and its decimals are
``System.Decimal`` (at most 29 significant digits, magnitude below 7.9e28). A number
outside those bounds is the record's own fault: it is rejected with a clear reason (the
record is dead-lettered), never passed on to crash the encoder (orjson refuses integers
beyond 64 bits) or to be rounded silently by Norce.

Every check here costs O(digits) at most: a hostile number such as ``"1E+999999999"`` is
judged by its exponent before anything expands it (``int(Decimal("1E+999999999"))``
would build a billion-digit integer).
"""

from __future__ import annotations

import math
from decimal import Decimal

INT_MIN = -(1 << 63)
INT_MAX = (1 << 63) - 1
# System.Decimal: 96-bit unscaled integer (29 digits), scale 0-28.
DECIMAL_MAX = Decimal(79228162514264337593543950335)
DECIMAL_DIGITS = 29
# A Kafka Connect decimal's unscaled value longer than this cannot fit System.Decimal
# (96 bits); checked before the bytes become a number.
MAX_UNSCALED_BYTES = 16


class NumberOutOfRange(ValueError):
    """A number Norce cannot hold."""


def check_int(value: int) -> int:
    """``value`` if it fits a 64-bit signed integer."""
    if INT_MIN <= value <= INT_MAX:
        return value
    raise NumberOutOfRange(f"integer beyond Norce's 64-bit range ({_digits(value)} digits)")


def check_float(value: float) -> float:
    if math.isfinite(value):
        return value
    raise NumberOutOfRange(f"not a finite number: {value!r}")


def to_int(d: Decimal) -> int:
    """An integral, finite decimal as a 64-bit int (checked before it is expanded)."""
    if not d.is_finite():
        raise NumberOutOfRange(f"not a finite number: {d}")
    if d.adjusted() > 18:  # >= 1e19 > 2**63: rejected before int() expands it
        raise NumberOutOfRange(f"integer beyond Norce's 64-bit range: {_short(d)}")
    return check_int(int(d))


def to_float(d: Decimal) -> float:
    """A finite decimal as a float within System.Decimal's magnitude."""
    if not d.is_finite():
        raise NumberOutOfRange(f"not a finite number: {d}")
    # copy_abs: exact (abs() rounds to the context's 28 digits, and traps on overflow).
    if d.adjusted() > 28 or d.copy_abs() > DECIMAL_MAX:
        raise NumberOutOfRange(f"number beyond Norce's decimal range: {_short(d)}")
    return float(d)


def to_number(d: Decimal) -> int | float:
    """JSON number for Norce: integers stay exact (64-bit), fractions become floats
    (correctly rounded) when System.Decimal can hold them."""
    if not d.is_finite():
        raise NumberOutOfRange(f"not a finite number: {d}")
    if d.as_tuple().exponent >= 0:
        return to_int(d)
    digits = _significant(d)
    if digits > DECIMAL_DIGITS:
        raise NumberOutOfRange(
            f"{digits} significant digits, more than Norce's decimals hold ({DECIMAL_DIGITS})"
        )
    return to_float(d)


def check_unscaled(raw: bytes) -> bytes:
    if len(raw) > MAX_UNSCALED_BYTES:
        raise NumberOutOfRange(
            f"decimal of {len(raw)} bytes, more than Norce's decimals hold "
            f"({MAX_UNSCALED_BYTES} bytes)"
        )
    return raw


def _significant(d: Decimal) -> int:
    """Significant digits, trailing zeros not counted (exact: ``normalize()`` would round
    to the context's precision first)."""
    digits = d.as_tuple().digits
    count = len(digits)
    if count <= DECIMAL_DIGITS:
        return count
    end = count
    while end > 1 and digits[end - 1] == 0:
        end -= 1
    return end


def _short(d: Decimal) -> str:
    text = str(d)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"


def _digits(value: int) -> int:
    # Estimated from the bit length: str(value) of a huge int is quadratic.
    return max(1, int(value.bit_length() * 0.30103) + 1)
