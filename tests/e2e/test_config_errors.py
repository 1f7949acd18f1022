"""A config with several mistakes is reported the same way by every command: each mistake
on one ``file: path: problem`` line, no traceback, exit status 78 (EX_CONFIG)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.errors import EXIT_CONFIG
from tests.support.broker import ROOT
from tests.support.cli import norce_sync

pytestmark = pytest.mark.e2e

BROKEN = """\
sources:
  erp:
    account_id: 1
    credentials: {client_id: erp, client_secret_env: NORCE_SYNC_TEST_UNSET_SECRET}
inputs:
  - topic: erp.prices
    source: erp
    kind: prise
    mapping: {fields: {PartNo: {from: sku, convert: nope}}}
"""
MISTAKES = (
    "inputs.0.kind: Input should be 'product', 'price', 'stock'",
    "inputs.0.mapping.fields.PartNo: Extra inputs are not permitted",
    "inputs.0.owned_fields: Field required",
)


@pytest.mark.parametrize(
    "command",
    [["worker"], ["jobs"], ["config", "check", "{file}"]],
    ids=["worker", "jobs", "config-check"],
)
def test_every_mistake_is_listed_without_a_traceback(tmp_path: Path, command: list[str]) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text(BROKEN)
    args = [part.replace("{file}", str(config)) for part in command]
    # A broker that is never reached: the config is checked before anything connects.
    env = {
        "NORCE_SYNC_CONFIG_FILE": str(config),
        "NORCE_SYNC_BROKER": "kafka://127.0.0.1:9",
    }

    done = norce_sync(*args, env=env)

    assert done.returncode == EXIT_CONFIG, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    for mistake in MISTAKES:
        assert any(line.startswith(f"{config}: {mistake}") for line in lines), done.stderr


def test_a_bad_setting_is_named_without_a_traceback() -> None:
    done = norce_sync("jobs", env={"NORCE_SYNC_TOPIC_PARTITIONS": "many"})

    assert done.returncode == EXIT_CONFIG, done.stderr
    assert "Traceback" not in done.stderr
    assert (
        "environment: NORCE_SYNC_TOPIC_PARTITIONS: Input should be a valid integer" in done.stderr
    )


def test_config_check_accepts_the_example_config() -> None:
    done = norce_sync("config", "check", str(ROOT / "config" / "example.yaml"))

    assert done.returncode == 0, done.stderr
    assert "example.yaml: valid (5 inputs, 2 sources, 2 export targets)" in done.stdout
