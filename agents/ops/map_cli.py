"""``norce-sync map --input <topic> [FILE]``: a mapping dry-run. Reads change records
(JSON lines from FILE or stdin, or the last N records of the input topic with
``--from-topic N``) and prints for each what the import path makes of it: the decoded
change and its version, the Norce row, or the dead-letter reason; and once, the Connect
path and ``X-StormConnect-Header`` a delta of this input is sent with. Nothing is written
anywhere; the config is the worker's (``NORCE_SYNC_CONFIG_FILE``)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click
import orjson

from agents.imports.dry_run import Sample, delta_header, dry_run, samples_from_lines
from agents.ops.commands import OpsCommand
from streams.kafka import consumer, partitions_of
from streams.settings import Settings


async def last_records(settings: Settings, topic: str, count: int) -> list[Sample]:
    """The last ``count`` records of each partition of ``topic``, by partition and offset
    (records of different partitions have no order to cut at)."""
    reader = consumer(settings)
    await reader.start()
    try:
        samples: list[tuple[int, int, Sample]] = []
        tps = await partitions_of(reader, topic)
        if not tps:
            raise SystemExit(f"error: topic {topic!r} does not exist")
        reader.assign(tps)
        ends = await reader.end_offsets(tps)
        starts = await reader.beginning_offsets(tps)
        for tp in tps:
            first = max(starts[tp], ends[tp] - count)
            if first >= ends[tp]:
                continue
            reader.seek(tp, first)
        wanted = {tp: ends[tp] for tp in tps if ends[tp] > max(starts[tp], ends[tp] - count)}
        while wanted:
            batch = await reader.getmany(*wanted, timeout_ms=2000)
            for tp, records in batch.items():
                for record in records:
                    if record.offset < wanted.get(tp, -1):
                        samples.append(
                            (tp.partition, record.offset, Sample(record.value, record.key))
                        )
                if await reader.position(tp) >= ends[tp]:
                    wanted.pop(tp, None)
        samples.sort(key=lambda entry: entry[:2])
        return [sample for _, _, sample in samples]
    finally:
        await reader.stop()


def _file_samples(path: Path) -> list[Sample]:
    try:
        return list(samples_from_lines(path.read_bytes().splitlines()))
    except OSError as exc:
        raise SystemExit(f"error: {path}: {exc.strerror}") from None


def _print_outcome(number: int, outcome: dict[str, Any]) -> None:
    out = click.echo
    if "dead_letter" in outcome:
        letter = outcome["dead_letter"]
        out(f"#{number}  dead letter ({letter['stage']}): {letter['reason']}")
    elif "skipped" in outcome:
        out(f"#{number}  skipped: {outcome['skipped']}")
    else:
        version = ", ".join(f"{k}={v}" for k, v in outcome["version"].items())
        what = "delete -> IsActive false" if outcome["deleted"] else "upsert"
        out(f"#{number}  {outcome['state_key']}  {what}  version {version}")
        out(f"    row: {orjson.dumps(outcome['row']).decode()}")


class map_(OpsCommand):
    """Dry-run an input's mapping on sample change records (nothing is written).

    FILE holds JSON lines, each a record's value or {"key": ..., "value": ...}; without
    FILE (and without --from-topic) the lines are read from stdin.

    Example: norce-sync map --input erp.public.prices samples.jsonl
    """

    command_name = "map"
    options = [
        click.option("--input", "topic", required=True, help="The input topic whose binding maps."),
        click.option(
            "--from-topic", "from_topic", type=int, default=None,
            help="Read the last N records of each partition of the input topic instead.",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print JSON."),
        click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path)),
    ]  # fmt: skip

    async def run(
        self, topic: str, from_topic: int | None, as_json: bool, file: Path | None
    ) -> None:
        config = self.ops.config
        binding = next((b for b in config.inputs if b.topic == topic), None)
        if binding is None:
            known = ", ".join(b.topic for b in config.inputs) or "none"
            raise SystemExit(f"error: no input binds topic {topic!r} (inputs: {known})")
        samples: Iterable[Sample]
        if from_topic is not None:
            samples = await last_records(self.settings, topic, from_topic)
        elif file is not None:
            samples = _file_samples(file)
        else:
            samples = list(samples_from_lines(sys.stdin.buffer))
        header = delta_header(binding, config.sources[binding.source].account_id)
        outcomes = [dry_run(binding, sample).as_dict() for sample in samples]
        if as_json or self.json:
            self.emit({"input": topic, **header, "records": outcomes})
            return
        click.echo(f"input {topic}: {binding.source} {binding.kind} ({binding.format})")
        click.echo(f"POST {header['path']}")
        click.echo(
            f"X-StormConnect-Header: {orjson.dumps(header['X-StormConnect-Header']).decode()}"
        )
        for number, outcome in enumerate(outcomes, 1):
            _print_outcome(number, outcome)
        letters = sum("dead_letter" in o for o in outcomes)
        click.echo(f"{len(outcomes)} records: {len(outcomes) - letters} mapped or skipped, "
                   f"{letters} dead letters")  # fmt: skip
