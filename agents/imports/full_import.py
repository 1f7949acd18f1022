"""Full import: every current row of a (source, kind) in one ``FullFile: true`` job.

The rows come from the projection's state changelog of the binding's input topic
(``<app>-state.<topic>``), read across all partitions up to a snapshot of its end
offsets, one partition at a time: a first pass notes each key's last
offset, a second streams exactly those records into the POST. Memory holds one
partition's keys, never the rows. Full imports run one at a time in the cluster: the
leader's schedule and the ``norce-sync full-import`` command both put a request on the
single-partition commands topic, and its one owner runs them in order.

One request, one job: a request is redelivered when its worker died before the commands
topic's offset was committed. If the ledger shows a job posted for it, it is only
tracked; if it shows an intent without a JobId (the worker died around the POST), a job
that Norce's ``Job/List`` has and the ledger does not know is adopted as that request's
job instead of posting a second full file.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from pydantic import ValidationError

from agents.config.runtime import NorceClients
from agents.config.schedules import DueTimes
from agents.config.sync_config import InputBinding, SyncConfig
from agents.imports import full_guard
from agents.imports.command_topic import CommandTopic
from agents.imports.full_file import READER_OPTIONS, StateSnapshot
from agents.imports.ledger import JobLedger
from agents.imports.post_once import Adopted, find_job, newest_job_id, post_once
from agents.imports.price_values import UnwritablePrices
from agents.imports.reference_state import ReferenceChecks
from norce.errors import NorceError, is_outage
from norce.imports import IMPORT_KIND, connect_header
from norce.jobs import JobResponse
from norce.jsonstream import ItemBatches
from norce.retry import NO_RETRY
from streams import fault_points, metrics, topics
from streams.kafka import consumer
from streams.messages import (
    FullImportRequest,
    Intent,
    Lost,
    Posted,
    Progress,
    SubmitFailed,
    parse_command,
)
from streams.outage import NORCE
from streams.settings import Settings

log = logging.getLogger(__name__)
PROGRESS_EVERY = 10_000
# Rows whose references are looked up together (in groups of the Query's own size).
REFERENCE_CHUNK = 1000


class FullImports:
    """Full imports of one worker: the leader's schedule, requests on the commands topic,
    the command reader's dispatch and the runner."""

    def __init__(
        self,
        settings: Settings,
        config: SyncConfig,
        clients: NorceClients,
        jobs: JobLedger,
        commands: CommandTopic,
        references: ReferenceChecks,
    ) -> None:
        self.settings = settings
        self.config = config
        self.clients = clients
        self.jobs = jobs
        self.commands = commands
        self.references = references
        self._due = DueTimes()
        self.unwritable = UnwritablePrices()

    async def schedules(self) -> None:
        now = time.time()
        for binding in self.config.inputs:
            if self._due.take(binding.pair, binding.full_schedule, now):
                await self.request(binding.source, binding.kind, requested_by="schedule")

    async def request(
        self, source: str, kind: str, *, requested_by: str, force: bool = False
    ) -> str:
        request_id = uuid.uuid4().hex
        request = FullImportRequest(
            source=source, kind=kind, request_id=request_id, by=requested_by, force=force
        )
        await self.commands.send(b"full-import", request)
        return request_id

    async def dispatch(self, value: Any) -> None:
        """One record of the commands topic (what the command reader hands over)."""
        try:
            command = parse_command(value)
        except ValidationError as error:
            log.error("command ignored, not a full import or reconcile request: %s", error)
            return
        if not isinstance(command, FullImportRequest):
            handler = self.commands.handler(command.type)
            if handler is None:
                log.error("command ignored: no handler of %r in this worker", command.type)
            else:
                await handler(command)  # a reconcile (registered by agents.reconcile.service)
            return
        try:
            binding = self.config.binding_for(command.source, command.kind)
        except KeyError as error:
            log.error("full import request ignored: %s", error)
            return
        try:
            await self.run(binding, command.request_id, force=command.force)
        except Exception:
            log.exception("full import of %s failed", binding.pair)

    async def _wait_for_open_jobs(self, binding: InputBinding, batch_id: str) -> None:
        """Deltas already posted carry older values than the full file: let them finish first.
        The full import's own intent is on the ledger meanwhile, so no new delta of the kind
        starts and failed deltas wait to see whether this import supersedes them."""
        deadline = time.monotonic() + self.settings.full_import_wait_s
        beat = time.monotonic()
        while time.monotonic() < deadline:
            others = [
                r
                for r in self.jobs.open_jobs(binding.source, binding.kind)
                if r.batch_id != batch_id
            ]
            if not others:
                return
            if time.monotonic() - beat > 10:  # a sign of life, so it is not taken for an orphan
                await self.jobs.record(Progress(batch_id=batch_id, rows=0))
                beat = time.monotonic()
            await asyncio.sleep(0.5)
        log.warning("full import %s: open jobs still running; going ahead", batch_id)

    async def _earlier_attempt(self, binding: InputBinding, request_id: str | None) -> bool:
        """True when this request already has a job (now tracked by the ledger)."""
        if request_id is None:
            return False
        log.info("full import request %s of %s: checking for an earlier attempt", request_id,
                 binding.pair)  # fmt: skip
        waited = time.monotonic()
        while not self.jobs.caught_up():
            if time.monotonic() - waited > 30:  # said once: the ledger mirror is behind
                log.warning("full import request %s waits for the jobs ledger", request_id)
                waited = float("inf")
            await asyncio.sleep(0.2)
        records = self.jobs.records()
        mine = [r for r in records if r.request_id == request_id and r.mode == "full"]
        if any(r.job_id is not None for r in mine):
            log.info("full import request %s already has a job; tracking it", request_id)
            return True
        orphans = [r for r in mine if r.status in ("intent", "lost")]
        if not orphans:
            return False
        known = {r.job_id for r in records if r.job_id is not None}
        connect = self.clients.for_source(binding.source).connect
        listed = await connect.list_jobs(top=50)
        since = min(r.submitted_at for r in orphans) - 60
        unknown = [
            j
            for j in listed
            if j.job_id not in known and (j.start is None or j.start.timestamp() >= since)
        ]
        orphan = orphans[0]
        if unknown:
            job = min(unknown, key=lambda j: j.job_id)  # the first one posted after the intent
            log.warning(
                "full import request %s: adopting Norce job %s posted before a crash",
                request_id,
                job.job_id,
            )
            await self.jobs.record(Posted(batch_id=orphan.batch_id, job_id=job.job_id))
            return True
        for r in orphans:
            if r.status == "intent":
                await self.jobs.record(Lost(batch_id=r.batch_id))
        return False

    async def run(
        self, binding: InputBinding, request_id: str | None, *, force: bool = False
    ) -> None:
        if await self._earlier_attempt(binding, request_id):
            return
        batch_id = uuid.uuid4().hex
        await self.jobs.record(
            Intent(
                batch_id=batch_id,
                source=binding.source,
                kind=binding.kind,
                mode="full",
                request_id=request_id,
            )
        )
        await self._wait_for_open_jobs(binding, batch_id)
        topic = topics.state_topic(self.settings, binding.topic)
        prefix = f"{binding.source}|{binding.kind}|".encode()
        reader = consumer(self.settings, **READER_OPTIONS)
        await reader.start()
        try:
            snapshot = StateSnapshot(reader, topic, prefix)
            total = await snapshot.open()
            if total == 0:
                # FullFile deactivates everything the file lacks: an empty one would deactivate
                # every item of the kind. Nothing in state means nothing to send.
                reason = "no rows in state for this source and kind; empty full file not sent"
                log.warning("full import %s: %s", batch_id, reason)
                await self.jobs.record(SubmitFailed(batch_id=batch_id, reason=reason))
                return
            held = full_guard.last_full_count(self.jobs.records(), binding.source, binding.kind)
            refused = full_guard.refusal(total, held, self.settings.full_import_max_drop_share)
            if refused is not None and not force:
                log.error("full import %s of %s: %s", batch_id, binding.pair, refused)
                metrics.full_imports_refused.inc(source=binding.source, kind=binding.kind)
                await self.jobs.record(SubmitFailed(batch_id=batch_id, reason=refused))
                return
            await self.jobs.record(Progress(batch_id=batch_id, rows=0, total=total))

            async def progress(rows: int) -> None:
                await self.jobs.record(Progress(batch_id=batch_id, rows=rows, total=total))

            held_back = [0]  # rows of the last streaming whose references are not in Norce
            session = self.references.lookups(binding.source)

            async def checked(
                source: AsyncIterator[list[dict[str, Any]]],
            ) -> AsyncIterator[list[dict[str, Any]]]:
                held_back[0] = 0
                async for fetched in source:
                    # Looked up in groups of REFERENCE_CHUNK rows while streaming.
                    for at in range(0, len(fetched), REFERENCE_CHUNK):
                        chunk = fetched[at : at + REFERENCE_CHUNK]
                        reasons = await session.missing(binding.kind, chunk)
                        ready = [
                            row for row, why in zip(chunk, reasons, strict=True) if why is None
                        ]
                        held_back[0] += len(chunk) - len(ready)  # Norce would ignore them
                        self.unwritable.note(binding, ready)
                        yield ready

            def rows() -> ItemBatches:
                # A factory, so a retried POST streams the same snapshot again.
                return ItemBatches(checked(snapshot.chunks(progress, PROGRESS_EVERY)))

            header = connect_header(
                binding, self.config.sources[binding.source].account_id, full=True
            )
            connect = self.clients.for_source(binding.source).connect
            since = time.time()
            above = await newest_job_id(connect)  # a job this POST makes is newer

            async def post() -> JobResponse:
                kind = IMPORT_KIND[binding.kind]
                return await connect.import_items(kind, header, rows, retry=NO_RETRY)

            async def find() -> int | None:
                known = {r.job_id for r in self.jobs.records() if r.job_id is not None}
                # The file held the snapshot's rows but those held back for a reference.
                sent = total - held_back[0]
                return await find_job(
                    connect, above=above, since=since, known=known, item_count=sent
                )

            try:
                # A POST whose outcome is unknown is looked for in Job/List before it is sent
                # again: a second full file would be a job the ledger never sees.
                answer = await post_once(post, find)
            except NorceError as error:
                if is_outage(error):
                    NORCE.failed(f"{type(error).__name__}: {error}")  # /ready names Norce
                log.error("full import %s: POST failed: %s", batch_id, error)
                await self.jobs.record(SubmitFailed(batch_id=batch_id, reason=str(error)))
                return
        finally:
            await reader.stop()
        fault_points.reached("import.after_post")
        # The file holds exactly the snapshot's rows (the keys counted, at the same offsets)
        # but those held back for a missing reference.
        sent = total - held_back[0]
        await self.jobs.record(Progress(batch_id=batch_id, rows=total, total=total))
        job_id = answer.job_id if isinstance(answer, Adopted) else answer.job_id_int
        await self.jobs.record(
            Posted(batch_id=batch_id, job_id=job_id, item_count=sent, held_back=held_back[0])
        )
        metrics.jobs_submitted.inc(source=binding.source, kind=binding.kind, mode="full")
        log.info(
            "full import %s: job %s with %d rows (%d held back: reference not in Norce)",
            batch_id,
            job_id,
            sent,
            held_back[0],
        )
