"""What the import path makes of one change record, without Kafka or Norce: the decoded
change, its version, the Norce row, the ``X-StormConnect-Header`` a delta would send it
with, or the dead-letter reason. ``norce-sync map`` prints it (a mapping playground).

It runs the production decoder of the binding (``cdc.decoder_for``), so what it shows is
what the worker does, hook calls included.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from agents.config.sync_config import InputBinding
from agents.imports import positions, projection
from agents.imports.cdc import NotAChange, decoder_for
from norce.imports import IMPORT_KIND, connect_header
from streams.records import PipelineError, Stage


@dataclass(frozen=True)
class Sample:
    """One change record as a source would write it to the input topic."""

    value: bytes | None
    key: bytes | None = None


@dataclass(frozen=True)
class Outcome:
    """What the import path does with one record: exactly one of ``row``, ``skipped`` and
    ``dead_letter`` says it."""

    state_key: str | None = None
    deleted: bool = False
    version: dict[str, Any] | None = None
    row: dict[str, Any] | None = None
    skipped: str | None = None
    dead_letter: tuple[str, str] | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.dead_letter is not None:
            out["dead_letter"] = {"stage": self.dead_letter[0], "reason": self.dead_letter[1]}
        elif self.skipped is not None:
            out["skipped"] = self.skipped
        else:
            out.update(state_key=self.state_key, deleted=self.deleted, version=self.version,
                       row=self.row)  # fmt: skip
        return out


def samples_from_lines(lines: Iterable[bytes]) -> Iterator[Sample]:
    """Samples from JSON lines: each line is a record's value, or ``{"key": ..., "value":
    ...}`` for a record with a key (``"value": null`` is a tombstone). Blank lines and
    lines starting with ``#`` are skipped."""
    for line in lines:
        text = line.strip()
        if not text or text.startswith(b"#"):
            continue
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError:
            yield Sample(text)  # the decoder says what is wrong with it
            continue
        if isinstance(doc, dict) and set(doc) == {"key", "value"}:
            key, value = doc["key"], doc["value"]
            yield Sample(
                None if value is None else orjson.dumps(value),
                None if key is None else orjson.dumps(key),
            )
        else:
            yield Sample(text)


def _connector(value: bytes | None) -> str | None:
    try:
        doc = orjson.loads(value) if value else None
    except orjson.JSONDecodeError:
        return None
    if isinstance(doc, dict) and isinstance(doc.get("payload"), dict):
        doc = doc["payload"]
    source = doc.get("source") if isinstance(doc, dict) else None
    connector = source.get("connector") if isinstance(source, dict) else None
    return connector if isinstance(connector, str) else None


def dry_run(binding: InputBinding, sample: Sample) -> Outcome:
    """The outcome of one record, as the projection's fold decides it."""
    try:
        mapped = decoder_for(binding)(sample.value, sample.key)
    except NotAChange as signal:
        return Outcome(skipped=f"not a row change ({signal.kind})")
    except PipelineError as error:
        return Outcome(dead_letter=(error.stage, error.reason))
    except Exception as error:  # a hook's bug: the worker dead-letters it the same way
        return Outcome(dead_letter=(str(Stage.MAP), f"{type(error).__name__}: {error}"))
    if mapped is None:
        return Outcome(skipped="tombstone (the delete before it counted)")
    try:  # the fold's own step: the state value must encode (as the projection stores it)
        value = projection.fold_change(
            None, mapped.version, mapped.row, mapped.deleted, 0.0, mapped.version_key
        )
        if value is not None:
            projection.encode(value)
    except PipelineError as error:
        return Outcome(dead_letter=(error.stage, error.reason))
    except Exception as error:
        return Outcome(dead_letter=(str(Stage.MAP), f"{type(error).__name__}: {error}"))
    return Outcome(
        state_key=mapped.state_key,
        deleted=mapped.deleted,
        version=positions.named(list(mapped.version), _connector(sample.value)),
        row=mapped.row,
    )


def delta_header(binding: InputBinding, account_id: int) -> dict[str, Any]:
    """The Connect path and ``X-StormConnect-Header`` a delta of this binding is sent with."""
    header = connect_header(binding, account_id, full=False)
    return {
        "path": IMPORT_KIND[binding.kind].value,
        "X-StormConnect-Header": header.to_dict(),
    }
