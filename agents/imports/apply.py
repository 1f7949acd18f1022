"""The projection: folds the changes topic into the state and pending tables.

Every table write happens here, inside stream iteration (Faust writes a table's
changelog to the partition of the event being processed). Besides changes, the topic
carries two commands from the submitters: ``submitted`` (a key went out in a job) and
``requeue`` (send the key again with its current state).
"""

from __future__ import annotations

import time

from agents.imports.projection import apply_change, pending_after_change, still_pending_after_submit
from streams import metrics
from streams.main import app
from streams.pipeline import changes, pending, state
from streams.records import Version


@app.agent(changes)
async def apply(stream):  # type: ignore[no-untyped-def]
    async for event in stream.events():
        key: bytes = event.key
        command = event.value
        kind = command["type"]
        if kind == "change":
            source, entity, _ = key.decode().split("|", 2)
            metrics.applied_changes.inc(source=source, kind=entity)
            ts_ms, position = command["v"]
            new = apply_change(
                state.get(key),
                Version.trusted(ts_ms=ts_ms, position=position),
                command["row"],
                command["d"],
            )
            if new is None:
                metrics.stale_dropped.inc(source=source, kind=entity)
                continue
            state[key] = new
            pending[key] = pending_after_change(
                new, event.message.partition, time.time(), pending.get(key)
            )
        elif kind == "submitted":
            held = pending.get(key)
            if held is not None and not still_pending_after_submit(held, command["v"]):
                del pending[key]
        elif kind == "requeue":
            current = state.get(key)
            if current is not None:
                pending[key] = pending_after_change(
                    current, event.message.partition, time.time(), pending.get(key)
                )
