"""Delta submission: on each (source, kind)'s schedule, every worker drains the pending
keys of its own partitions into as few jobs as ``max_items_per_job`` allows.

Crash-safe order per batch: the batch's keys and versions are written to the batches
topic and an ``intent`` to the jobs ledger -> POST -> ``posted`` with the JobId -> the
keys are marked sent in the projection (applied at its next checkpoint, ahead of any
input backlog), which removes a key from pending only if its version is still the one
sent. A crash anywhere leaves the keys pending, so they go out again with their current
state; nothing is lost and nothing older is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from faust.web import Request, Response, View

from agents.config.runtime import NorceClients
from agents.config.schedules import DueTimes
from agents.config.sync_config import InputBinding, SyncConfig
from agents.imports.ledger import JobLedger
from agents.imports.owned_partition import PendingItem
from agents.imports.post_once import Adopted, find_job, newest_job_id, post_once
from agents.imports.price_values import UnwritablePrices
from agents.imports.projector import Projector
from agents.imports.reference_state import ReferenceChecks
from norce.errors import NorceError, is_outage
from norce.imports import IMPORT_KIND, connect_header
from norce.jobs import JobResponse
from norce.retry import NO_RETRY
from streams import fault_points, metrics
from streams.messages import BatchIntent, Intent, Posted, SubmitFailed
from streams.metrics import applied_changes
from streams.outage import NORCE
from streams.records import DeadLetter, Stage
from streams.settings import Settings

log = logging.getLogger(__name__)

# Writes the batch record; returns where it is stored (partition, offset).
SendBatch = Callable[[bytes, BatchIntent], Awaitable[tuple[int, int]]]
SendDeadLetter = Callable[[DeadLetter], Awaitable[None]]


class DeltaSubmitter:
    """The delta submission of one worker: the schedules' tick, an off-schedule run
    (``run_now``) and the submission itself."""

    def __init__(
        self,
        settings: Settings,
        config: SyncConfig,
        clients: NorceClients,
        projector: Projector,
        jobs: JobLedger,
        references: ReferenceChecks,
        send_batch: SendBatch,
        dead_letter: SendDeadLetter,
    ) -> None:
        self.settings = settings
        self.config = config
        self.clients = clients
        self.projector = projector
        self.jobs = jobs
        self.references = references
        self._send_batch = send_batch
        self._dead_letter = dead_letter
        self._due = DueTimes()
        self.unwritable = UnwritablePrices()
        self.running: set[tuple[str, str]] = set()
        # While Norce is out, scheduled deltas back off (0.5 s doubling to the outage
        # maximum) instead of writing an intent and a failed submission to the ledger on
        # every tick.
        self._backoff = {"next_at": 0.0, "delay": 0.5}

    def tick(self) -> None:
        """Start the deltas that are due (the ``delta_tick_s`` timer's body)."""
        now = time.time()
        for binding in self.config.inputs:
            pair = binding.pair
            if not self._due.take(pair, binding.delta_schedule, now, busy=pair in self.running):
                continue
            self._start(binding)

    def _start(self, binding: InputBinding, *, fresh_references: bool = False) -> None:
        pair = binding.pair
        self.running.add(pair)
        task = asyncio.ensure_future(self.submit_deltas(binding, fresh_references=fresh_references))
        task.add_done_callback(lambda t, pair=pair: self._finished(pair, t))

    def _finished(self, pair: tuple[str, str], task: asyncio.Future[Any]) -> None:
        self.running.discard(pair)
        if not task.cancelled() and task.exception() is not None:
            log.error("delta submission for %s failed", pair, exc_info=task.exception())

    def run_now(self, binding: InputBinding, fresh_references: bool = False) -> bool:
        """Start the pair's delta off-schedule (a reference its rows wait for may exist
        now); False when one runs already."""
        if binding.pair in self.running:
            return False
        self._start(binding, fresh_references=fresh_references)
        return True

    async def flush(self, binding: InputBinding) -> tuple[int, dict[str, Any]]:
        """The view's POST: (HTTP status, answer)."""
        if not self.jobs.caught_up():
            return 503, {"started": False, "reason": "jobs ledger loading"}
        if binding.pair in self.running:
            return 409, {"started": False, "reason": "already running"}
        blocking = self.jobs.open_jobs(binding.source, binding.kind)
        if blocking:
            reason = f"{len(blocking)} open job(s) of {binding.source}/{binding.kind}"
            return 409, {"started": False, "reason": reason}
        self.running.add(binding.pair)
        try:
            submitted = await self.submit_deltas(binding)
        finally:
            self.running.discard(binding.pair)
        return 200, {"started": True, "batches": submitted}

    def backlog(self, binding: InputBinding) -> dict[str, Any]:
        """The view's GET."""
        source, kind = binding.pair
        return {
            "pending": self.projector.pending_count(binding),
            "waiting_for_references": self.references.waiting.count(binding.pair),
            "applied": applied_changes.get(source=source, kind=kind),
            "open_jobs": [r.batch_id for r in self.jobs.open_jobs(source, kind)],
            "ledger_loaded": self.jobs.caught_up(),
        }

    async def submit_deltas(
        self, binding: InputBinding, *, fresh_references: bool = False
    ) -> list[str]:
        """Submit this worker's pending keys of the pair; the batch ids posted. Rows whose
        references are missing in Norce stay pending (``agents.imports.references``)."""
        if NORCE.is_down and time.monotonic() < self._backoff["next_at"]:
            return []  # the keys stay pending; the outage was logged once
        if not self.jobs.caught_up():
            log.info("delta %s|%s waits: the jobs ledger is still loading", *binding.pair)
            return []
        blocking = self.jobs.open_jobs(binding.source, binding.kind)
        if blocking:
            log.info(
                "delta %s|%s waits: %d open job(s), e.g. %s",
                binding.source,
                binding.kind,
                len(blocking),
                blocking[0].batch_id,
            )
            return []
        size = binding.max_items_per_job
        posted: list[str] = []
        session = self.references.lookups(binding.source, fresh=fresh_references)
        report = self.references.waiting.begin()
        # As few jobs as possible, holding at most about three jobs' rows in memory (one
        # chunk is read and checked ahead).
        ready: list[PendingItem] = []
        chunks = self.projector.pending_chunks(binding, size)
        try:
            # The next chunk's references are looked up while a batch is POSTed.
            async with contextlib.aclosing(
                self.references.checked_chunks(binding, chunks, session, report)
            ) as checked:
                async for part in checked:
                    ready.extend(part)
                    while len(ready) >= size:
                        batch, ready = ready[:size], ready[size:]
                        posted += await self._submit(binding, batch)
        except NorceError as error:
            # Query unreachable: nothing is sent unchecked; the keys stay pending for the
            # next tick (the client already retried with backoff).
            metrics.norce_calls.inc(api="query", outcome="error")
            if is_outage(error):
                self._norce_out(error)
            else:
                log.warning("delta %s|%s waits: reference lookup failed: %s", *binding.pair, error)
            return posted
        if session.query_calls:
            self._norce_answered()  # Query answered the reference checks
        if ready:
            posted += await self._submit(binding, ready)
        self.references.waiting.finish(binding.pair, report)
        return posted

    def _norce_out(self, error: NorceError) -> None:
        """Norce refuses or does not answer (Query or Connect): one warning per outage, and
        the next deltas wait with backoff; the keys stay pending."""
        NORCE.failed(f"{type(error).__name__}: {error}")
        self._backoff["next_at"] = time.monotonic() + self._backoff["delay"]
        self._backoff["delay"] = min(
            self._backoff["delay"] * 2, self.settings.norce_outage_retry_max_s
        )

    def _norce_answered(self) -> None:
        NORCE.answered()
        self._backoff["delay"] = 0.5

    async def _submit(self, binding: InputBinding, items: list[PendingItem]) -> list[str]:
        batch_id = await self.submit_batch(binding, items)
        return [] if batch_id is None else [batch_id]

    async def submit_batch(self, binding: InputBinding, items: list[PendingItem]) -> str | None:
        batch_id = uuid.uuid4().hex
        intent = BatchIntent.trusted(  # values from the projection: checked there
            batch_id=batch_id,
            topic=binding.topic,
            keys=[item.key.decode() for item in items],
            versions=[item.version for item in items],
            partitions=[item.partition for item in items],
        )
        partition, offset = await self._send_batch(batch_id.encode(), intent)
        await self.jobs.record(
            Intent(
                batch_id=batch_id,
                source=binding.source,
                kind=binding.kind,
                mode="delta",
                item_count=len(items),
                batch_ref=[partition, offset],
            )
        )
        source = self.config.sources[binding.source]
        header = connect_header(binding, source.account_id, full=False)
        rows = [item.row for item in items]
        self.unwritable.note(binding, rows)
        connect = self.clients.for_source(binding.source).connect
        since = time.time()
        above = await newest_job_id(connect)  # a job this POST makes is newer

        async def post() -> JobResponse:
            return await connect.import_items(
                IMPORT_KIND[binding.kind], header, rows, retry=NO_RETRY
            )

        async def find() -> int | None:
            known = {r.job_id for r in self.jobs.records() if r.job_id is not None}
            return await find_job(
                connect, above=above, since=since, known=known, item_count=len(rows)
            )

        try:
            answer = await post_once(post, find)
        except NorceError as error:
            metrics.norce_calls.inc(api="connect", outcome="error")
            if is_outage(error):
                self._norce_out(error)
            else:
                log.warning("delta %s: POST failed, keys stay pending: %s", batch_id, error)
            await self.jobs.record(SubmitFailed(batch_id=batch_id, reason=str(error)))
            return None
        self._norce_answered()
        metrics.norce_calls.inc(api="connect", outcome="ok")
        fault_points.reached("import.after_post")
        if isinstance(answer, Adopted):
            # Its answer was lost: no validation summary. Rows Norce refused show in the
            # job's log (recorded on the job when it fails).
            await self.jobs.record(
                Posted(batch_id=batch_id, job_id=answer.job_id, item_count=len(items))
            )
            metrics.jobs_submitted.inc(source=binding.source, kind=binding.kind, mode="delta")
            log.info(
                "delta %s: job %s (adopted) with %d items", batch_id, answer.job_id, len(items)
            )
            self.projector.mark_sent(items)
            return batch_id
        response = answer
        summary = response.validation_summary
        rejected = summary.rejected_rows() if summary else {}
        await self.jobs.record(
            Posted(
                batch_id=batch_id,
                job_id=response.job_id_int,
                item_count=len(items),
                validation_failures=summary.nr_of_validation_failures if summary else 0,
                rejected_rows=sorted(rejected),
            )
        )
        metrics.jobs_submitted.inc(source=binding.source, kind=binding.kind, mode="delta")
        log.info("delta %s: job %s with %d items", batch_id, response.job_id, len(items))
        for index, reason in rejected.items():
            item = items[index]
            await self._dead_letter(
                DeadLetter(
                    key=item.key,
                    value=orjson.dumps(item.row),
                    stage=Stage.NORCE_VALIDATION,
                    reason=reason,
                    job_id=response.job_id,
                    state_key=item.key.decode(),
                ),
            )
        # A row Norce refused leaves pending too: it is in the dead-letter topic, and sending
        # it again unchanged would only fail again. Its next change goes out as usual.
        self.projector.mark_sent(items)
        return batch_id


def register_delta_view(app: Any, submitter: DeltaSubmitter) -> None:
    @app.page("/delta/{source}/{kind}")
    class DeltaView(View):  # type: ignore[misc]
        """This worker's backlog of a (source, kind); POST runs its delta now, off-schedule
        (an operator's "flush", and how tests cut a batch at a moment they choose)."""

        async def get(self, request: Request, source: str, kind: str) -> Response:
            binding = submitter.config.binding_for(source, kind)
            return self.json(submitter.backlog(binding))

        async def post(self, request: Request, source: str, kind: str) -> Response:
            """200 with the batches posted (none when nothing is pending); 409 while a
            delta of the pair runs here or a job of the pair is open; 503 while the jobs
            ledger is still loading. Retry on 409 and 503."""
            binding = submitter.config.binding_for(source, kind)
            status, answer = await submitter.flush(binding)
            return self.json(answer, status=status)
