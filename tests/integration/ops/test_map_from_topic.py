"""``norce-sync map --from-topic N`` dry-runs the last N records of each partition of an
input topic, read from the broker (nothing is committed or written)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.support.broker import ROOT
from tests.support.cli import norce_sync
from tests.support.debezium import PRICE_KEY, envelope, key_bytes, price_row
from tests.support.kafka import create_topics, produce

pytestmark = pytest.mark.integration


async def test_map_reads_the_last_records_of_the_input_topic(
    kafka_servers: str, unique: str, tmp_path: Path
) -> None:
    topic = f"erp.prices.{unique}"
    data = yaml.safe_load((ROOT / "config" / "example.yaml").read_text())
    data["inputs"] = [dict(i, topic=topic) for i in data["inputs"] if i["kind"] == "price"]
    data["inputs"] = data["inputs"][:1]
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    (tmp_path / "example_hooks.py").write_text((ROOT / "config" / "example_hooks.py").read_text())
    await create_topics(kafka_servers, [topic], partitions=1)
    rows = [price_row(f"TOPIC-{n}", float(n)) for n in range(5)]
    await produce(
        kafka_servers,
        topic,
        [(key_bytes(r, PRICE_KEY), envelope("prices", "u", r)) for r in rows],
    )

    done = norce_sync(
        "map", "--input", topic, "--from-topic", "2",
        env={"NORCE_SYNC_CONFIG_FILE": str(config),
             "NORCE_SYNC_BROKER": f"kafka://{kafka_servers}"},
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "2 records: 2 mapped or skipped, 0 dead letters"
    assert '"PartNo":"TOPIC-3"' in done.stdout and '"PartNo":"TOPIC-4"' in done.stdout
    assert "TOPIC-2" not in done.stdout
