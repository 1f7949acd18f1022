"""The job tracker on its own (no Faust worker): it folds job events into the ledger's
records, follows jobs in the simulator over HTTP until they end, and puts a failed
job's keys back in the projection's pending state."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from agents.config.runtime import NorceClients
from agents.imports.jobs import JobRecord
from agents.imports.tracker import JobTracker
from norce_simulator import SimulatorServer
from streams.messages import Intent, Posted
from streams.records import DeadLetter
from tests.support.import_flow import (
    MemoryLedger,
    Produced,
    delta_submitter,
    flow_settings,
    price_change,
    running_projector,
    seed_prices,
)
from tests.support.kafka import produce
from tests.support.stack import wait_until

KEYS = 20
FAST_POLLS = {"job_poll_min_s": 0.2, "job_poll_max_s": 0.5}


def event_value(event: Intent | Posted) -> object:
    return orjson.loads(event.to_bytes())  # as the agent's stream gives it (orjson codec)


async def test_job_events_fold_into_the_ledger_record(
    kafka_servers: str,
    unique: str,
    tmp_path: Path,
    sim: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings, config, _ = flow_settings(kafka_servers, unique, tmp_path, sim.url, monkeypatch)
    clients = NorceClients(settings, config)
    ledger = MemoryLedger()

    async def no_sends(*_: object) -> None:
        raise AssertionError("nothing to send")

    tracker = JobTracker(settings, config, clients, ledger, f"batches-{unique}", no_sends)
    intent = Intent(batch_id="b1", source="erp", kind="price", mode="delta", item_count=3)
    await tracker.on_event(b"b1", event_value(intent), offset=0)
    await tracker.on_event(b"b1", {"type": "no such event"}, offset=1)  # skipped, no harm
    await tracker.on_event(b"b1", event_value(Posted(batch_id="b1", job_id=7)), offset=2)
    record = JobRecord.model_validate(ledger.get(b"b1"))
    assert (record.status, record.job_id, record.item_count) == ("queued", 7, 3)
    assert not record.is_final
    await clients.aclose()


async def test_a_succeeded_job_ends_final_and_a_failed_jobs_keys_are_pending_again(
    kafka_servers: str,
    unique: str,
    tmp_path: Path,
    sim: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings, config, binding = flow_settings(
        kafka_servers, unique, tmp_path, sim.url, monkeypatch, **FAST_POLLS
    )
    batches = f"batches-{unique}"
    await seed_prices(kafka_servers, binding, KEYS, batches=batches)
    clients = NorceClients(settings, config)
    ledger = MemoryLedger()

    async def dead_letter(letter: DeadLetter) -> None:
        raise AssertionError(f"no row is rejected here: {letter}")

    try:
        async with (
            Produced(settings) as kafka,
            running_projector(settings, config, binding, KEYS) as projector,
        ):
            tracker = JobTracker(settings, config, clients, ledger, batches, kafka.send)
            ledger.fold = tracker.fold  # the agent's part: each event folded as written
            submitter = delta_submitter(
                settings, config, clients, projector, ledger, kafka.batches(batches), dead_letter
            )

            async def record_of(batch_id: str) -> JobRecord:
                [record] = [r for r in ledger.records() if r.batch_id == batch_id]
                return record

            async def watched_until_final(batch_id: str) -> JobRecord | None:
                await tracker.watch_jobs()  # the leader's timer tick
                record = await record_of(batch_id)
                return record if record.is_final and not record.needs_settling else None

            [first] = await submitter.submit_deltas(binding)
            done = await wait_until(lambda: watched_until_final(first), what="first job final")
            assert done.status == "succeeded" and done.job_id in sim.state.jobs
            await wait_until(lambda: projector.pending_count(binding) == 0, what="keys sent")

            # New values; Norce fails their job: the keys go back to pending, from state.
            await produce(
                kafka_servers, binding.topic, [price_change(n, 50.0 + n) for n in range(KEYS)]
            )
            await wait_until(lambda: projector.pending_count(binding) == KEYS, what="changes")
            sim.state.set_faults({"fail_next_jobs": 1})
            [second] = await submitter.submit_deltas(binding)
            await wait_until(lambda: projector.pending_count(binding) == 0, what="marked sent")
            failed = await wait_until(lambda: watched_until_final(second), what="job settled")
            assert failed.status == "failed" and failed.settled
            assert failed.errors, "Norce's log errors are recorded on the job"
            await wait_until(lambda: projector.pending_count(binding) == KEYS, what="re-queued")
    finally:
        await clients.aclose()
