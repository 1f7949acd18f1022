"""The full import on its own (no Faust worker): a request taken from the commands topic
streams every key of the projection's state into one ``FullFile`` job in the simulator
over HTTP, with progress on the ledger; the same request delivered again posts nothing."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from agents.config.runtime import NorceClients
from agents.imports.command_topic import CommandTopic
from agents.imports.full_import import FullImports
from agents.imports.reference_state import ReferenceChecks
from norce_simulator import SimulatorServer
from streams.messages import FullImportRequest, Intent, Posted, Progress
from tests.support.import_flow import MemoryLedger, flow_settings, running_projector, seed_prices
from tests.support.stack import wait_until

KEYS = 40


async def test_a_full_import_posts_every_key_of_state_in_one_file_once(
    kafka_servers: str,
    unique: str,
    tmp_path: Path,
    sim: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings, config, binding = flow_settings(kafka_servers, unique, tmp_path, sim.url, monkeypatch)
    await seed_prices(kafka_servers, binding, KEYS)
    async with running_projector(settings, config, binding, KEYS):
        pass  # stopped: its last checkpoint wrote every key to the state changelog
    clients = NorceClients(settings, config)
    ledger = MemoryLedger()
    full = FullImports(
        settings,
        config,
        clients,
        ledger,
        CommandTopic(topic=None),  # requests are handed to dispatch here
        ReferenceChecks(settings, clients),
    )
    request = FullImportRequest(source="erp", kind="price", request_id="r1", by="test")
    try:
        await full.dispatch(orjson.loads(request.to_bytes()))

        [job] = sim.state.jobs.values()
        assert job.header.FullFile and job.totals == KEYS
        [record] = ledger.records()
        assert (record.mode, record.job_id, record.item_count) == ("full", job.id, KEYS)
        assert record.request_id == "r1"
        kinds = [type(e) for e in ledger.events]
        assert kinds[0] is Intent and kinds[-1] is Posted
        progress = [(e.rows, e.total) for e in ledger.events if isinstance(e, Progress)]
        assert progress[0] == (0, KEYS) and progress[-1] == (KEYS, KEYS)

        # Redelivered (its worker died before the offset was committed): tracked, not sent.
        await full.dispatch(orjson.loads(request.to_bytes()))
        assert len(sim.state.jobs) == 1 and len(ledger.records()) == 1
    finally:
        await clients.aclose()
    await wait_until(lambda: job.is_finished, what="the job ran")
    rows = {f"SKU-{n:05d}|STD|1" for n in range(KEYS)}
    assert {k for k in rows if sim.state.history("price", k)} == rows
