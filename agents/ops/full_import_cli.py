"""``norce-sync full-import --source erp --kind price``: ask the cluster for a full import
and follow it, with a progress bar (tqdm), until Norce finishes the job."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from aiokafka import TopicPartition
from faust.cli import AppCommand, option
from tqdm import tqdm

from agents.imports.jobs import JobRecord, apply_job_event
from agents.imports.legacy import config, job_events, request_full_import  # issue 18
from streams.kafka import consumer
from streams.main import app, settings
from streams.messages import (
    Intent,
    JobCompleted,
    Posted,
    Progress,
    Status,
    SubmitFailed,
    job_events_message,
)

# "1,234/5,678 rows": what people and scripts read from the bar.
BAR_FORMAT = "{percentage:3.0f}%|{bar:24}| {n:,}/{total:,} rows [{elapsed}, {rate_fmt}]"


@app.command(
    option("--source", required=True, help="Source system, e.g. erp."),
    option("--kind", required=True, help="Entity kind, e.g. price, stock, product, customer."),
    option("--wait/--no-wait", default=True, help="Follow the job until it ends (default)."),
    option("--timeout", type=float, default=3600.0, help="Give up following after N seconds."),
    option(
        "--force",
        is_flag=True,
        default=False,
        help="Send even if the file would deactivate more than NORCE_SYNC_FULL_IMPORT_"
        "MAX_DROP_SHARE of what the last full import sent.",
    ),
)
async def full_import(
    self: AppCommand, source: str, kind: str, wait: bool, timeout: float, force: bool
) -> None:
    """Run a full import (FullFile: true) of one source and kind now.

    A running worker performs it (one at a time in the cluster); this command prints its
    progress and the job's end. Exit status 0 when the job succeeded.
    """
    try:
        config.binding_for(source, kind)
    except KeyError as error:
        raise SystemExit(f"error: {error.args[0]}; configured: {config.pairs()}") from None
    reader = consumer(settings)
    await reader.start()
    try:
        tp = TopicPartition(job_events.get_topic_name(), 0)
        reader.assign([tp])
        await reader.seek_to_end(tp)
        await reader.position(tp)  # pin "the end" before the request goes out
        request_id = await request_full_import(source, kind, requested_by="cli", force=force)
        await app.producer.flush()
        print(f"full import of {source}/{kind} requested ({request_id})", file=sys.stderr)
        if not wait:
            return
        record = await _follow(reader, tp, request_id, time.monotonic() + timeout)
    finally:
        await reader.stop()
    print(
        f"job {record.job_id}: {record.status}, {record.item_count:,} items, "
        f"lead time {record.lead_time_s}s",
        file=sys.stderr,
    )
    if record.status != "succeeded":
        for error in record.errors:
            print(f"  {error}", file=sys.stderr)
        raise SystemExit(1)


async def _follow(reader: Any, tp: TopicPartition, request_id: str, deadline: float) -> JobRecord:
    record: JobRecord | None = None
    batch_id: str | None = None
    bar: tqdm[Any] | None = None  # made at the first progress event, with its total
    try:
        while time.monotonic() < deadline:
            batch = await reader.getmany(tp, timeout_ms=500)
            for message in batch.get(tp, []):
                try:
                    event = job_events_message(message.value)
                except ValueError:
                    continue  # not ours to read (a newer release's event)
                if isinstance(event, JobCompleted):
                    continue
                if isinstance(event, Intent) and event.request_id == request_id:
                    batch_id = event.batch_id
                if batch_id is None or event.batch_id != batch_id:
                    continue
                record = apply_job_event(record, event)
                if record is None:
                    continue
                if isinstance(event, Progress) and record.item_count > 0:
                    # Shown once the row count is known (a heartbeat while the import waits
                    # for open jobs carries none); "1,234/5,678 rows" as scripts read it.
                    if bar is None:
                        bar = tqdm(
                            total=record.item_count,
                            bar_format=BAR_FORMAT,
                            unit=" rows",
                            file=sys.stderr,
                        )
                    if bar.total != record.item_count:
                        bar.total = record.item_count
                    bar.update(record.rows_streamed - bar.n)
                elif isinstance(event, Posted | Status | SubmitFailed):
                    message_line = f"{record.status} (job {record.job_id})"
                    if isinstance(event, Posted) and event.held_back:
                        message_line += (
                            f"; {event.held_back} row(s) held back: a reference not in Norce"
                        )
                    if bar is not None:
                        bar.write(message_line, file=sys.stderr)
                    else:
                        print(message_line, file=sys.stderr)
                if record.is_final:
                    return record
            await asyncio.sleep(0)
    finally:
        if bar is not None:
            bar.close()
    raise SystemExit("error: timed out following the full import (it may still be running)")
