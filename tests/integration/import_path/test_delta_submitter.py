"""The delta submitter on its own (no Faust worker): the projection's pending keys go to
the simulator in one import job over HTTP, the ledger holds the intent and then the
JobId, and keys sent are not sent again."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.config.runtime import NorceClients
from norce_simulator import SimulatorServer
from streams.messages import Intent, Posted
from streams.records import DeadLetter
from tests.support.import_flow import (
    MemoryLedger,
    Produced,
    delta_submitter,
    flow_settings,
    running_projector,
    seed_prices,
)
from tests.support.stack import wait_until

KEYS = 30


async def test_pending_keys_go_out_in_one_job_recorded_on_the_ledger_and_only_once(
    kafka_servers: str,
    unique: str,
    tmp_path: Path,
    sim: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings, config, binding = flow_settings(kafka_servers, unique, tmp_path, sim.url, monkeypatch)
    batches = f"batches-{unique}"
    await seed_prices(kafka_servers, binding, KEYS, batches=batches)
    clients = NorceClients(settings, config)
    ledger = MemoryLedger()
    letters: list[DeadLetter] = []

    async def dead_letter(letter: DeadLetter) -> None:
        letters.append(letter)

    try:
        async with (
            Produced(settings) as kafka,
            running_projector(settings, config, binding, KEYS) as projector,
        ):
            submitter = delta_submitter(
                settings, config, clients, projector, ledger, kafka.batches(batches), dead_letter
            )
            [batch_id] = await submitter.submit_deltas(binding)

            # One POST with every pending key; its intent before the JobId, on the ledger.
            [job] = sim.state.jobs.values()
            assert job.totals == KEYS and not job.header.FullFile
            kinds = [type(e) for e in ledger.events if e.batch_id == batch_id]
            assert kinds == [Intent, Posted]
            [record] = ledger.records()
            assert record.job_id == job.id and record.item_count == KEYS
            assert record.batch_ref is not None  # where its keys are, for a re-queue
            assert not letters

            # Marked sent at the projection's next checkpoint: nothing pending, no new POST.
            await wait_until(lambda: projector.pending_count(binding) == 0, what="keys sent")
            assert await submitter.submit_deltas(binding) == []
            assert len(sim.state.jobs) == 1
            await wait_until(lambda: job.is_finished, what="the job ran")
            for n in range(KEYS):
                [write] = sim.state.history("price", f"SKU-{n:05d}|STD|1")
                assert write["job_id"] == job.id
    finally:
        await clients.aclose()
