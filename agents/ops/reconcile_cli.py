"""``norce-sync reconcile [--source erp --kind price] [--repair] [--last]``: ask the cluster
to compare Norce with the state, follow it with a progress bar (tqdm), print the report.

A running worker does the comparison (``agents.reconcile.service``: one owner, the same
as for schedules and ``POST /reconcile``); this command only asks and follows the
reconcile topic. ``--last`` prints the last stored result per pair, without a worker.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import orjson
from aiokafka import TopicPartition
from faust.cli import AppCommand, option
from tqdm import tqdm

from agents.imports.legacy import config  # temporary (issue 18)
from agents.reconcile.service import request_reconcile, results_topic
from streams.kafka import consumer
from streams.kafka_reads import read_to_end
from streams.main import app, settings
from streams.messages import ReconcileProgress, ReconcileResult, reconcile_message

BAR_FORMAT = "{desc} {percentage:3.0f}%|{bar:24}| {n:,}/{total:,} [{elapsed}, {rate_fmt}]"


@app.command(
    option("--source", default=None, help="Source system, e.g. erp (default: every pair)."),
    option("--kind", default=None, help="Entity kind, e.g. price (default: every pair)."),
    option("--repair", is_flag=True, help="Queue keys found different or missing for a delta."),
    option("--last", is_flag=True, help="Print the last result per pair; run nothing."),
    option("--json", "as_json", is_flag=True, help="Print JSON, not text."),
    option("--timeout", type=float, default=7200.0, help="Give up following after N seconds."),
)
async def reconcile(
    self: AppCommand,
    source: str | None,
    kind: str | None,
    repair: bool,
    last: bool,
    as_json: bool,
    timeout: float,
) -> None:
    """Compare what Norce holds with what the sources say (the projection's state).

    Per (source, kind): items matching, different (by field), missing in Norce, absent
    from the state, unwritable (null/0 prices Norce keeps ignoring) and pending. Exit
    status 0 when every pair was compared, 1 when one failed.
    """
    topic = results_topic.get_topic_name()
    if last:
        stored = await _stored_results(topic)
        _print(stored, as_json)
        return
    pairs = [p for p in config.pairs() if (source in (None, p[0])) and (kind in (None, p[1]))]
    if not pairs:
        raise SystemExit(f"error: no input binds {source}/{kind}; configured: {config.pairs()}")
    reader = consumer(settings)
    await reader.start()
    try:
        tp = TopicPartition(topic, 0)
        reader.assign([tp])
        await reader.seek_to_end(tp)
        await reader.position(tp)  # pin "the end" before the requests go out
        wanted = {}
        for s, k in pairs:
            wanted[await request_reconcile(s, k, by="cli", repair=repair)] = (s, k)
        await app.producer.flush()
        print(f"reconcile of {len(pairs)} pair(s) requested", file=sys.stderr)
        found = await _follow(reader, tp, wanted, time.monotonic() + timeout)
    finally:
        await reader.stop()
    _print(found, as_json)
    if any(r.status == "failed" for r in found):
        raise SystemExit(1)


async def _stored_results(topic: str) -> list[ReconcileResult]:
    latest: dict[bytes, ReconcileResult] = {}
    async for record in read_to_end(settings, topic):
        if record.value is None:
            continue
        try:
            message = reconcile_message(record.value)
        except ValueError:
            continue
        if isinstance(message, ReconcileResult):
            latest[record.key or b""] = message
    return sorted(latest.values(), key=lambda r: (r.source, r.kind))


async def _follow(
    reader: Any, tp: TopicPartition, wanted: dict[str, tuple[str, str]], deadline: float
) -> list[ReconcileResult]:
    found: dict[str, ReconcileResult] = {}
    bars: dict[tuple[str, str], tqdm[Any]] = {}
    try:
        while time.monotonic() < deadline and len(found) < len(wanted):
            batch = await reader.getmany(tp, timeout_ms=500)
            for record in batch.get(tp, []):
                if record.value is None:
                    continue  # a progress record's tombstone
                try:
                    message = reconcile_message(record.value)
                except ValueError:
                    continue
                if message.request_id not in wanted:
                    continue
                if isinstance(message, ReconcileProgress):
                    _advance(bars, message)
                else:
                    found[message.request_id] = message
                    for bar in bars.values():
                        bar.close()
                    bars.clear()
            await asyncio.sleep(0)
    finally:
        for bar in bars.values():
            bar.close()
    if len(found) < len(wanted):
        raise SystemExit("error: timed out following the reconcile (it may still be running)")
    return [found[r] for r in wanted]


def _advance(bars: dict[tuple[str, str], tqdm[Any]], p: ReconcileProgress) -> None:
    """One bar per phase: changelog records read, then Query rows compared."""
    what = "state records" if p.phase == "state" else "Norce items"
    key = (p.request_id, p.phase)
    bar = bars.get(key)
    if bar is None:
        for other in bars.values():
            other.close()
        bar = bars[key] = tqdm(
            total=p.total, desc=f"{p.source}/{p.kind} {what}", bar_format=BAR_FORMAT,
            file=sys.stderr,
        )  # fmt: skip
    bar.total = max(p.total, p.done)
    bar.update(p.done - bar.n)


def _print(found: list[ReconcileResult], as_json: bool) -> None:
    if as_json:
        body = [r.model_dump(mode="json") for r in found]
        print(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
        return
    if not found:
        print("no reconcile result stored yet")
    for r in found:
        print(report(r))


def report(r: ReconcileResult) -> str:
    """The text report of one pair: what each class means is in README, "Reconcile"."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.started_at))
    head = f"{r.source}/{r.kind} at {when}"
    if r.status != "ok":
        return f"{head}: {r.status}: {r.error}"
    lines = [
        f"{head} ({r.by}), {r.duration_s:.1f}s: {r.state_items:,} in state, "
        f"{r.norce_items:,} in Norce",
        f"  matching            {r.matching:,}",
        f"  different           {r.different:,}"
        + (f"  ({_fields(r.different_by_field)})" if r.different_by_field else ""),
        f"  missing in Norce    {r.missing:,}",
        f"  absent from state   {r.absent:,}  (a full import would deactivate "
        f"{r.would_deactivate:,}; {r.absent_inactive:,} more already inactive)",
        f"  unwritable          {r.unwritable:,}"
        + (f"  ({_fields(r.unwritable_by_field)})" if r.unwritable_by_field else ""),
        f"  pending delta       {r.pending:,}",
    ]
    if r.repair:
        lines.append(f"  repair: {r.repaired:,} key(s) queued for the next delta")
    for name, why in r.not_compared.items():
        lines.append(f"  not compared: {name} ({why})")
    for bucket, shown in sorted(r.examples.items()):
        for example in shown:
            lines.append(f"    e.g. {bucket}: {orjson.dumps(example).decode()}")
    return "\n".join(lines)


def _fields(counts: dict[str, int]) -> str:
    return ", ".join(f"{name}: {n:,}" for name, n in counts.items())
