"""The delta submitter on its own (no Faust worker): the projection's pending keys go to
the simulator in one import job over HTTP, the ledger holds the intent and then the
JobId, and keys sent are not sent again."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.config.runtime import NorceClients
from agents.imports.delta import DeltaSubmitter
from agents.imports.reference_state import ReferenceChecks
from norce_simulator import SimulatorServer
from streams.messages import Intent, Posted
from streams.records import DeadLetter
from tests.support.import_flow import (
    MemoryLedger,
    Produced,
    flow_settings,
    price_change,
    running_projector,
)
from tests.support.kafka import create_topics, produce
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
    await create_topics(kafka_servers, [binding.topic], 4)
    await create_topics(kafka_servers, [batches], 1)
    await produce(kafka_servers, binding.topic, [price_change(n, 10.0 + n) for n in range(KEYS)])
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
            submitter = DeltaSubmitter(
                settings,
                config,
                clients,
                projector,
                ledger,
                ReferenceChecks(settings, clients),
                kafka.batches(batches),
                dead_letter,
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
