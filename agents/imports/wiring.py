"""The import flow on the app: :func:`install` builds every service of the flow with its
dependencies passed in, and declares the flow's topics, table, agents, timers, tasks and
pages on the app. Nothing of the flow is built at import (issue 18)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.config.runtime import NorceClients
from agents.config.sync_config import SyncConfig
from agents.imports import pipeline
from agents.imports.command_reader import CommandReader
from agents.imports.command_topic import CommandTopic
from agents.imports.delta import DeltaSubmitter, register_delta_view
from agents.imports.full_import import FullImports
from agents.imports.ledger import JobLedger
from agents.imports.projector import Projector
from agents.imports.reference_state import ReferenceChecks
from agents.imports.reference_watch import ReferenceWatch
from agents.imports.tracker import JobTracker
from streams.app import ServiceApp
from streams.kafka import send_acked, send_dead_letter, send_until_acked
from streams.messages import BatchIntent
from streams.readiness import is_ready
from streams.records import DeadLetter
from streams.settings import Settings


@dataclass(frozen=True)
class ImportFlow:
    """The import flow's public services (what reconcile and ops build on)."""

    config: SyncConfig
    clients: NorceClients  # passed in by the root (shared with reconcile/ops)
    projector: Projector
    jobs: JobLedger
    commands: CommandTopic
    command_reader: CommandReader
    references: ReferenceChecks
    delta: DeltaSubmitter
    full_imports: FullImports
    tracker: JobTracker
    reference_watch: ReferenceWatch
    topics: pipeline.ImportTopics


def install(
    app: ServiceApp, settings: Settings, config: SyncConfig, clients: NorceClients
) -> ImportFlow:
    topics = pipeline.declare(app, settings, config)

    async def write_changelog(topic: str, key: bytes, value: bytes | None) -> None:
        await send_until_acked(app, topic, key, value, partition=0)  # one partition

    jobs = JobLedger(topics.job_events, topics.jobs, write_changelog)
    commands = CommandTopic(topics.commands)
    references = ReferenceChecks(settings, clients)

    projector = Projector(settings, config)
    projector.stop_worker.crash = app.crash
    app.readiness.add(lambda: projector.ready, unprocessed=lambda: sorted(projector.unprocessed))

    async def send_batch(key: bytes, intent: BatchIntent) -> tuple[int, int]:
        stored = await (await topics.batches.send(key=key, value=intent))
        return stored.partition, stored.offset

    async def dead_letter(letter: DeadLetter) -> None:
        await send_dead_letter(app, letter)

    delta = DeltaSubmitter(
        settings, config, clients, projector, jobs, references, send_batch, dead_letter
    )

    async def send_command(topic: str, key: bytes, value: bytes, partition: int) -> Any:
        return await send_acked(app, topic, key, value, partition=partition)

    tracker = JobTracker(
        settings,
        config,
        clients,
        jobs,
        topics.batches.get_topic_name(),
        send_command,
        should_stop=lambda: bool(app.should_stop),
    )
    full_imports = FullImports(settings, config, clients, jobs, commands, references)
    command_reader = CommandReader(
        settings, topics.commands.get_topic_name(), full_imports.dispatch
    )
    watch = ReferenceWatch(config, jobs, references, delta)

    flow = ImportFlow(
        config=config,
        clients=clients,
        projector=projector,
        jobs=jobs,
        commands=commands,
        command_reader=command_reader,
        references=references,
        delta=delta,
        full_imports=full_imports,
        tracker=tracker,
        reference_watch=watch,
        topics=topics,
    )
    _register(app, settings, flow)
    register_delta_view(app, delta)
    return flow


def _register(app: ServiceApp, settings: Settings, flow: ImportFlow) -> None:
    """The flow's tasks, timers and agents, with the names they had as module functions."""

    @app.task
    async def start_projector() -> None:
        # Started and stopped with the app (what ``@app.service`` does for a class).
        await app.add_runtime_dependency(flow.projector)

    @app.task
    async def follow_job_ledger() -> None:
        await flow.jobs.mirror.follow(settings)

    @app.timer(settings.delta_tick_s, name="agents.imports.delta.delta_schedules")
    async def delta_schedules() -> None:
        if is_ready(app):
            flow.delta.tick()

    @app.timer(settings.delta_tick_s, name="agents.imports.reference_watch.release_on_created")
    async def release_on_created() -> None:
        if is_ready(app):
            await flow.reference_watch.release_on_created()

    @app.timer(settings.reference_recheck_s, name="agents.imports.reference_watch.recheck_waiting")
    async def recheck_waiting() -> None:
        if is_ready(app):
            await flow.reference_watch.recheck_waiting()

    @app.agent(flow.topics.job_events, name="agents.imports.tracker.track_jobs")
    async def track_jobs(stream):  # type: ignore[no-untyped-def]
        async for event in stream.events():
            await flow.tracker.on_event(event.key, event.value, event.message.offset)

    @app.timer(settings.job_poll_tick_s, on_leader=True, name="agents.imports.tracker.watch_jobs")
    async def watch_jobs() -> None:
        await flow.tracker.watch_jobs()

    @app.timer(
        settings.job_prune_interval_s, on_leader=True, name="agents.imports.tracker.prune_jobs"
    )
    async def prune_jobs() -> None:
        await flow.tracker.prune_jobs()

    @app.timer(10.0, on_leader=True, name="agents.imports.full_import.full_import_schedules")
    async def full_import_schedules() -> None:
        await flow.full_imports.schedules()

    @app.task
    async def start_command_reader() -> None:
        # The commands topic's own consumer (see agents.imports.command_reader).
        await app.add_runtime_dependency(flow.command_reader)
