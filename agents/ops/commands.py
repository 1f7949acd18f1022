"""The project's commands on the ``norce-sync`` command line (Faust app commands):
``jobs``, ``dlq list`` and ``dlq replay``. (``full-import`` lives with the
full import.)

``jobs`` and ``dlq`` read Kafka directly with aiokafka, without a consumer group: the
jobs table's compacted changelog and the dead-letter topic. They need the broker, not a
running worker, and never disturb the workers' group.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any, ClassVar, NoReturn

import click
import orjson
from faust.cli.base import AppCommand, cli
from mode.worker import exiting

from agents.config.runtime import sync_config
from agents.config.secrets import config_secret_values
from agents.imports.legacy import jobs_table  # temporary (issue 18)
from agents.ops.access import acl_commands, required_access, topics_table
from agents.ops.kafka_reads import read_jobs
from agents.ops.queries import JobQuery, dead_letter_view, parse_since, query_jobs
from streams.kafka import bootstrap_servers
from streams.kafka_reads import StoredLetter, read_dead_letters, replay
from streams.logging import logging_config
from streams.main import settings


class OpsCommand(AppCommand):
    """A Faust app command that may live in a command group (``norce-sync dlq list``) and
    logs like the worker (scrubbed, to stderr; warnings and up unless debugging)."""

    abstract: ClassVar[bool] = True
    group: ClassVar[click.Group | None] = None
    command_name: ClassVar[str | None] = None

    @classmethod
    def as_click_command(cls) -> Callable[..., Any]:
        # Faust's version always registers on the root group; the same, with a parent.
        @click.pass_context
        @wraps(cls)
        def _inner(*args: Any, **kwargs: Any) -> NoReturn:
            cmd = cls(*args, **kwargs)
            with exiting(print_exception=True, file=sys.stderr):
                cmd()
            raise SystemExit(0)  # pragma: no cover  (cmd() always exits)

        parent = cls.group or cli
        command = parent.command(name=cls.command_name, help=cls.__doc__)(_inner)
        for option in cls.options or []:
            command = option(command)
        return command

    def worker_for_service(self, service: Any, loop: Any = None) -> Any:
        worker = super().worker_for_service(service, loop)
        worker.logging_config = logging_config(
            settings, secrets=config_secret_values(settings), min_level=logging.WARNING
        )
        return worker

    def emit(self, data: Any) -> None:
        """JSON with ``norce-sync --json``, else the given text."""
        self.say(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


@cli.group(name="dlq")
def dlq_group() -> None:
    """Dead letters: list them, or replay them to their original topics."""


def _fmt_time(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def _table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    cells = [[str(h) for h in headers], *[["-" if c is None else str(c) for c in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells)
    return "\n".join(line.rstrip() for line in lines)


_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON, not a table.")


class jobs(OpsCommand):
    """Import jobs, newest first, read from the jobs table's changelog (no worker needed).

    Example: norce-sync jobs --status failed --source erp
    """

    options = [
        click.option(
            "--status",
            multiple=True,
            help="Status: intent, queued, initialized, validating, succeeded, failed, "
            "validation_failed, submit_failed, lost; repeatable.",
        ),
        click.option("--source", multiple=True, help="Source system (e.g. erp); repeatable."),
        click.option("--kind", multiple=True, help="Entity kind (price, ...); repeatable."),
        click.option(
            "--mode", multiple=True, type=click.Choice(["delta", "full"]), help="Job mode."
        ),
        click.option("--limit", type=int, default=50, show_default=True, help="Show at most N."),
        click.option("--offset", type=int, default=0, show_default=True, help="Skip the first N."),
        _json_option,
    ]

    async def run(
        self,
        status: tuple[str, ...],
        source: tuple[str, ...],
        kind: tuple[str, ...],
        mode: tuple[str, ...],
        limit: int,
        offset: int,
        as_json: bool,
    ) -> None:
        query = JobQuery(
            status=list(status),
            source=list(source),
            kind=list(kind),
            mode=list(mode),
            limit=limit,
            offset=offset,
        )
        records = await read_jobs(settings, jobs_table.changelog_topic.get_topic_name())
        result = query_jobs(records, query, time.time())
        if as_json or self.json:
            self.emit(result)
            return
        rows = [
            [
                _fmt_time(j["submitted_at"]),
                j["source"],
                j["kind"],
                j["mode"],
                j["status"] + (" (overdue)" if j["overdue"] else ""),
                j["item_count"],
                f"{j['lead_time_s'] if j['lead_time_s'] is not None else j['age_s']:.1f}s",
                j["job_id"],
                j["batch_id"],
                j["errors"][0][:80] if j["errors"] else "",
            ]
            for j in result["jobs"]
        ]
        self.say(
            _table(
                rows,
                [
                    "submitted",
                    "source",
                    "kind",
                    "mode",
                    "status",
                    "items",
                    "lead time",
                    "job id",
                    "batch id",
                    "first error",
                ],
            )
        )
        self.say(f"{len(rows)} of {result['total']} matching job(s)")


_stage_option = click.option(
    "--stage", multiple=True, help="Only this stage (decode, validate, map, ...); repeatable."
)
_since_option = click.option(
    "--since", default=None, help="Only dead letters since: 30m, 2h, 1d, epoch seconds or ISO time."
)


def _since(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return parse_since(text)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--since") from None


class dlq_list(OpsCommand):
    """List dead letters, latest last, with their stage, reason and origin."""

    group = dlq_group
    command_name = "list"
    options = [
        _stage_option,
        _since_option,
        click.option("--limit", type=int, default=20, show_default=True, help="Show the latest N."),
        _json_option,
    ]

    async def run(
        self, stage: tuple[str, ...], since: str | None, limit: int, as_json: bool
    ) -> None:
        letters = await read_dead_letters(settings, stages=stage, since=_since(since))
        shown = letters[-limit:] if limit > 0 else letters
        if as_json or self.json:
            self.emit([dead_letter_view(s.letter, s.offset) for s in shown])
            return
        rows = [
            [
                s.offset,
                _fmt_time(s.letter.time),
                s.letter.stage,
                s.letter.reason[:100],
                _origin(s),
                s.letter.state_key or (s.letter.key or b"").decode(errors="replace")[:60],
            ]
            for s in shown
        ]
        self.say(_table(rows, ["dlq offset", "time", "stage", "reason", "origin", "key"]))
        self.say(f"{len(shown)} of {len(letters)} matching dead letter(s)")


def _origin(stored: StoredLetter) -> str:
    letter = stored.letter
    if letter.topic is None:
        return f"job {letter.job_id}" if letter.job_id else "-"
    return f"{letter.topic}[{letter.partition}]@{letter.offset}"


class dlq_replay(OpsCommand):
    """Re-send dead letters (after a fix) to their ORIGINAL topic with their ORIGINAL key
    and bytes, so they go through the pipeline again. Dead letters that did not come from a
    topic (rows Norce rejected in a job) cannot be replayed and are skipped; the state
    table's version check makes a replayed change that is no longer newest a no-op.

    Example: norce-sync dlq replay --stage map --since 2h --dry-run
    """

    group = dlq_group
    command_name = "replay"
    options = [
        _stage_option,
        _since_option,
        click.option(
            "--offset", "offsets", type=int, multiple=True, help="Only this dlq offset; repeatable."
        ),
        click.option("--dry-run", is_flag=True, help="Show what would be replayed; send nothing."),
    ]

    async def run(
        self, stage: tuple[str, ...], since: str | None, offsets: tuple[int, ...], dry_run: bool
    ) -> None:
        letters = await read_dead_letters(
            settings, stages=stage, since=_since(since), offsets=offsets
        )
        # A letter whose original bytes were cut (value_size/key_size set) cannot be
        # replayed from the letter: re-send it from its origin (topic, partition, offset).
        replayable = [
            s
            for s in letters
            if s.letter.topic
            and s.letter.value is not None
            and s.letter.value_size is None
            and s.letter.key_size is None
        ]
        skipped = len(letters) - len(replayable)
        for s in replayable:
            self.say(f"{'would replay' if dry_run else 'replaying'} dlq@{s.offset} -> {_origin(s)}")
        if dry_run:
            self.say(f"dry run: {len(replayable)} would be replayed, {skipped} not replayable")
            return
        sent = await replay(settings, replayable)
        self.say(
            f"replayed {sent} dead letter(s); {skipped} not replayable "
            "(no original topic, or original bytes cut)"
        )


class topics(OpsCommand):
    """The topics and ACLs this deployment needs, from its settings and sync config (for
    a cluster without topic auto-creation or with deny-by-default ACLs). No broker needed.

    Example: norce-sync topics --acl --principal User:norce-sync
    """

    options = [
        click.option("--acl", is_flag=True, help="Print kafka-acls.sh commands, not a table."),
        click.option(
            "--principal",
            default=None,
            help="ACL principal (default User:<NORCE_SYNC_KAFKA_SASL_USERNAME>).",
        ),
        _json_option,
    ]

    async def run(self, acl: bool, principal: str | None, as_json: bool) -> None:
        grants = required_access(settings, sync_config(settings))
        if as_json:
            self.emit([g.__dict__ for g in grants])
        elif acl:
            who = principal or f"User:{settings.kafka_sasl_username or 'norce-sync'}"
            self.say("\n".join(acl_commands(grants, who, bootstrap_servers(settings))))
        else:
            headers = ("resource", "pattern", "name", "operations", "why")
            self.say(_table(topics_table(grants), headers))
