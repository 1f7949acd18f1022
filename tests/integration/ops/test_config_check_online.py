"""``norce-sync config check --online`` asks the broker whether the input topics exist and
Norce whether each source's credentials get a token, and names what does not answer
(never the secret)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from norce_simulator import SimulatorConfig, SimulatorServer
from tests.support.cli import norce_sync
from tests.support.kafka import create_topics
from tests.support.stack import worker_env, write_config

pytestmark = pytest.mark.integration


async def test_online_check_names_missing_topics_and_refused_credentials(
    kafka_servers: str, unique: str, tmp_path: Path
) -> None:
    sim_cfg = SimulatorConfig(port=0, token_rate_limit=False)
    async with SimulatorServer(sim_cfg) as sim:
        config, topics = write_config(tmp_path, unique, kinds=("price", "stock"))
        env = worker_env(kafka_servers, unique, sim.url, config, tmp_path)
        env["NORCE_SYNC_CREATE_INPUT_TOPICS"] = "false"  # Debezium owns the input topics
        await create_topics(kafka_servers, [topics["price"]])

        wrong = {**env, "NORCE_SYNC_ERP_CLIENT_SECRET": "wrong-secret-value"}
        done = await asyncio.to_thread(norce_sync, "config", "check", "--online", env=wrong)

        assert done.returncode == 1, done.stdout
        assert f"Kafka: input topic {topics['stock']} does not exist" in done.stderr
        assert topics["price"] + " does not exist" not in done.stderr
        assert "Norce: source erp: no token" in done.stderr
        assert "source pim" not in done.stderr  # its secret is right
        assert "wrong-secret-value" not in done.stderr + done.stdout

        await create_topics(kafka_servers, [topics["stock"]])
        done = await asyncio.to_thread(norce_sync, "config", "check", "--online", env=env)
        assert done.returncode == 0, done.stderr
        assert "valid (2 inputs, 2 sources, 0 export targets); topics and Norce" in done.stdout
