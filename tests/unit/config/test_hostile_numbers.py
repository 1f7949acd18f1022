"""Numbers Norce cannot hold are rejected by the mapping with a clear reason, quickly.

Issue 23 item 1: a NUMERIC(38,0) price of 10**30 became a Python int beyond 64 bits that
the state encoder refused (and crashed the projector); "1E+999999999" would expand to a
billion digits."""

from __future__ import annotations

import base64
import time
from decimal import Decimal
from typing import Any

import orjson
import pytest

from agents.config.mapping import MappingError, decimal_to_number
from tests.support.sync_config import convert

HUGE = "1000000000000000000000000000000"  # the probe: 10**30, NUMERIC(38,0)


@pytest.mark.parametrize(
    ("conversion", "value", "reason"),
    [
        ("decimal", HUGE, "64-bit"),
        ("decimal", str(2**63), "64-bit"),
        ("decimal", str(-(2**63) - 1), "64-bit"),
        ("decimal", "1E+999999999", "64-bit"),
        ("decimal", "-1E+999999999", "64-bit"),
        ("decimal", "1.5E+999999999", "64-bit"),
        ("decimal", "1.5E+40", "64-bit"),
        ("decimal", "12345678901234567890123456789.5", "significant digits"),
        ("decimal", "0." + "1" * 40, "significant digits"),
        ("decimal", "NaN", "finite"),
        ("decimal", "Infinity", "finite"),
        ("decimal", "-inf", "finite"),
        ("decimal", "sNaN", "finite"),
        ("decimal", 2**64, "64-bit"),
        ("decimal:0", base64.b64encode(b"\x01" + b"\x00" * 40).decode(), "bytes"),
        ("decimal", {"scale": 0, "value": base64.b64encode(b"\x7f" * 200).decode()}, "bytes"),
        ("int", HUGE, "64-bit"),
        ("int", "1E+999999999", "64-bit"),
        ("int", 2**63, "64-bit"),
        ("float", "1E+999999999", "decimal range"),
        ("float", "1e400", "decimal range"),
        ("cents", "1E+999999999", "decimal range"),
    ],
)
def test_numbers_norce_cannot_hold_are_rejected_with_a_reason(
    conversion: str, value: Any, reason: str
) -> None:
    started = time.process_time()
    with pytest.raises(MappingError) as raised:
        convert(conversion, value)
    assert time.process_time() - started < 0.5  # judged by the exponent, never expanded
    assert reason in raised.value.reason
    assert raised.value.stage == "map"


@pytest.mark.parametrize(
    ("conversion", "value", "expected"),
    [
        ("decimal", str(2**63 - 1), 2**63 - 1),
        ("decimal", str(-(2**63)), -(2**63)),
        ("decimal", "1E+18", 10**18),
        ("decimal", "79228162514264337593543950335.0", 7.922816251426434e28),
        ("decimal", "19.90000000000000000000000000000000000", 19.9),  # NUMERIC(38,35)
        ("int", "9223372036854775807", 2**63 - 1),
        ("float", "1e28", 1e28),
    ],
)
def test_numbers_at_the_bounds_still_map(conversion: str, value: Any, expected: Any) -> None:
    result = convert(conversion, value)
    assert result == expected and type(result) is type(expected)
    orjson.dumps(result)  # the state encoder takes it


def test_every_number_the_mapping_returns_is_encodable() -> None:
    for text in ("0", "-0", "0.0001", "123456789012345678", "1E+18", "-1E-28", "9.99E+17"):
        orjson.dumps(decimal_to_number(Decimal(text)))
