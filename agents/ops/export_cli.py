"""What ``norce-sync item --export --kind sku <id>`` prints: the export trace of one
entity (``GET /items/export/{kind}/{id}``), one line per fact."""

from __future__ import annotations

import time
from typing import Any

import click
import orjson


def _line(label: str, text: str) -> None:
    click.echo(f"{label:<15}{text}")


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def print_export(trace: dict[str, Any]) -> None:
    events = trace["events_topic"]
    _line("entity", f"{trace['key']}  (partition {events['partition']} of {events['topic']}, "
                    f"read by {trace['worker']})")  # fmt: skip
    if "note" in events:
        _line("events", events["note"])
    for event in trace["events"]:
        if "error" in event:
            _line("event", f"{_when(event['time'])}  offset {event['offset']}: {event['error']}")
            continue
        body = orjson.dumps(event["body"]).decode()
        _line("event", f"{_when(event['time'])}  {event['event_type']}  {body}")
    for target in trace["targets"]:
        last = target["last_record"]
        if last is None:
            _line("target", f"{target['target']}: no record  ({target.get('note', 'none yet')})")
            continue
        what = "deletion (tombstone)" if last["deleted"] else f"digest {last['digest']}"
        now = {True: ", a lookup now: unchanged", False: ", a lookup now: different"}
        now_text = now.get(target.get("unchanged"), "")
        _line("target", f"{target['target']}: {_when(last['time'])}  offset {last['offset']} of "
                        f"{target['topic']}, {what}{now_text}")  # fmt: skip
    if "lookup_error" in trace:
        _line("lookup", trace["lookup_error"])
    _line("verdict", trace["verdict"])
