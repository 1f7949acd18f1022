"""``norce-sync map``: a user writing a mapping feeds sample records and reads, for each,
the Norce row or the dead-letter reason, plus the header a delta sends."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.support.cli import norce_sync
from tests.support.debezium import PRICE_KEY, envelope, price_row

pytestmark = pytest.mark.e2e


def test_map_prints_each_row_or_its_reason(tmp_path: Path) -> None:
    good, bad = price_row("MAP-1", 10.5), price_row("MAP-2", 1.0)
    bad["quantity_break"] = "one"
    samples = tmp_path / "samples.jsonl"
    samples.write_text(
        "\n".join(
            orjson.dumps(
                {"key": {c: r[c] for c in PRICE_KEY}, "value": envelope("prices", "u", r)}
            ).decode()
            for r in (good, bad)
        )
    )

    done = norce_sync("map", "--input", "erp.public.prices", str(samples))

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "POST Product/ImportSkuPriceLists" in lines
    assert any(line.startswith('X-StormConnect-Header: {"AccountId":1001') for line in lines)
    assert any(
        line.startswith("#1  erp|price|MAP-1|STD|1  upsert  version ts_ms=") for line in lines
    )
    assert any('"PartNo":"MAP-1"' in line and '"PriceSale":10.5' in line for line in lines)
    assert any(
        line.startswith("#2  dead letter (map): ") and "QuantityBreak" in line for line in lines
    )
    assert lines[-1] == "2 records: 1 mapped or skipped, 1 dead letters"


def test_map_reads_stdin_and_names_an_unknown_input() -> None:
    done = norce_sync("map", "--input", "no.such.topic", stdin="{}")
    assert done.returncode != 0
    assert "no input binds topic 'no.such.topic'" in done.stderr
