"""Records that cross boundaries on the import path (and the dead-letter record of both paths).

- ``Version``: where a change sits in its source's history; decides which change is newer.
- ``ChangeEvent``: one decoded source change, the context a mapping hook receives.
- ``Mapped``: that change as a Norce row, keyed by the Norce match key, as a plain tuple
  for the batch hot path (``agents.imports.cdc.decode_mapped``), with a precomputed
  ``VersionKey``.
- ``version_key`` / ``version_key_newer``: the one place that defines which version is
  newer; ``Version``'s comparisons use them too.
- ``DeadLetter``: a message that failed a stage, with its original bytes.

``PipelineError`` is the base of the typed errors each stage raises; its ``stage`` and
``reason`` go straight into a ``DeadLetter``.
"""

from __future__ import annotations

import base64
import hashlib
import time
from enum import StrEnum
from typing import Any, Literal, NamedTuple, Self

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)

Kind = Literal["product", "price", "stock", "customer", "pricelist", "company"]
Op = Literal["c", "u", "d", "r"]

KINDS: tuple[str, ...] = ("product", "price", "stock", "customer", "pricelist", "company")
OPS: frozenset[str] = frozenset(("c", "u", "d", "r"))


class Stage(StrEnum):
    """Known pipeline stages; ``DeadLetter.stage`` is a plain string so agents may add more."""

    DECODE = "decode"
    VALIDATE = "validate"
    MAP = "map"
    SUBMIT = "submit"
    NORCE_VALIDATION = "norce-validation"
    ENRICH = "enrich"


class PipelineError(Exception):
    """A message failed a stage. ``reason`` is one human-readable line."""

    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(f"{stage}: {reason}")
        self.stage = str(stage)
        self.reason = reason


_new = object.__new__
_set = object.__setattr__


class Record(BaseModel):
    # extra="ignore": records stored in Kafka by a newer release must stay readable.
    model_config = ConfigDict(frozen=True, extra="ignore")

    @classmethod
    def trusted(cls, **values: Any) -> Self:
        """Build from values a decoder has already checked, skipping validation (hot path).

        Give every field. This is what ``model_construct`` does, without its per-field
        default handling, which costs more than validating.
        """
        obj = _new(cls)
        _set(obj, "__dict__", values)
        _set(obj, "__pydantic_fields_set__", set(values))
        _set(obj, "__pydantic_extra__", None)
        _set(obj, "__pydantic_private__", None)
        return obj

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_bytes(cls, data: bytes | str) -> Self:
        return cls.model_validate(orjson.loads(data))


VersionKey = tuple[int, tuple[int, ...], int]


def version_key(ts_ms: int, *position: int) -> VersionKey:
    """Sort key of a version (the stored list ``[ts_ms, *position]``), by the rule
    documented on ``Version``.

    ``(len(position), position, ts_ms)`` when the log position is known (any component
    non-zero), else ``(0, (), ts_ms)``. Two keys with the same first element (one position
    shape: every version of a key in practice) order exactly as the rule with plain tuple
    comparison; ``version_key_newer`` is exact for every pair, including one side without
    a position or with a position of another shape.
    """
    if any(position):
        return (len(position), position, ts_ms)
    return (0, (), ts_ms)


def version_key_newer(new: VersionKey, held: VersionKey) -> bool:
    """Whether ``new`` is strictly newer than ``held`` (equal versions are not)."""
    if new[0] == held[0]:
        return new > held
    # Positions of different shapes (or one missing): time decides, then position.
    return (new[2], new[1]) > (held[2], held[1])


class Version(Record):
    """A comparable position in a source's change history.

    ``position`` is the first component of the connector's log position and ``rest`` the
    others (``agents.imports.cdc`` documents each connector's: Postgres ``[lsn]``, MySQL
    ``[binlog file number, pos, row]``, SQL Server ``[commit_lsn, change_lsn,
    event_serial_no]`` with each LSN as two ints, Oracle ``[commit_scn, scn, order]``,
    MongoDB ``[seconds, ord]``) or the plain format's ``version``; 0 when unknown. The
    stored form is the flat list ``[ts_ms, position, *rest]``; values stored before
    ``rest`` existed are ``[ts_ms, position]`` and read the same.

    Ordering rule: when both positions are known and have the same shape, compare
    ``(position, ts_ms)`` lexicographically: the log position is the source's own commit
    order, while commit timestamps can tie or step back between concurrent transactions.
    Otherwise compare ``(ts_ms, position)``: versions are only compared within one state
    key (``source|kind|key``), so both sides come from one source and share a position
    shape; a shape changes only when a connector stops reporting positions or when an
    upgrade meets a value stored in an older shape, and then time decides. Equality is
    field equality, consistent with the rule. The rule is implemented once, by
    ``version_key`` and ``version_key_newer``.
    """

    ts_ms: int = 0
    position: int = 0
    rest: tuple[int, ...] = ()

    def as_tuple(self) -> tuple[int, ...]:
        return (self.ts_ms, self.position, *self.rest)

    def as_list(self) -> list[int]:
        """The stored form."""
        return [self.ts_ms, self.position, *self.rest]

    @classmethod
    def of(cls, stored: list[int] | tuple[int, ...]) -> Version:
        """From the stored form ``[ts_ms, position, *rest]``."""
        return cls.trusted(
            ts_ms=stored[0], position=stored[1] if len(stored) > 1 else 0, rest=tuple(stored[2:])
        )

    @property
    def sort_key(self) -> VersionKey:
        return version_key(self.ts_ms, self.position, *self.rest)

    # Each pair is ordered by one lexicographic order, so a <= b is "not a > b".
    def __lt__(self, other: Version) -> bool:  # type: ignore[override]
        return version_key_newer(other.sort_key, self.sort_key)

    def __le__(self, other: Version) -> bool:  # type: ignore[override]
        return not version_key_newer(self.sort_key, other.sort_key)

    def __gt__(self, other: Version) -> bool:  # type: ignore[override]
        return version_key_newer(self.sort_key, other.sort_key)

    def __ge__(self, other: Version) -> bool:  # type: ignore[override]
        return not version_key_newer(other.sort_key, self.sort_key)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.as_tuple() == other.as_tuple()

    def __hash__(self) -> int:
        return hash(self.as_tuple())


class ChangeEvent(Record):
    """One source change, decoded. ``row`` is the after-image; for deletes the before-image."""

    source: str
    kind: Kind
    source_key: str
    op: Op
    version: Version
    row: dict[str, Any]
    deleted: bool = False


class Mapped(NamedTuple):
    """A mapped change on the batch hot path: plain values, no validation, no copies.

    ``version`` is ``[ts_ms, *position]`` as stored; ``version_key`` its sort key.
    """

    state_key: str
    version_key: VersionKey
    version: list[int]
    row: dict[str, Any]
    deleted: bool
    # The log the position belongs to (MySQL: server and GTID source), or None.
    history: str | None = None
    # A snapshot read (op ``r``): below the held version it starts a new history.
    snapshot: bool = False


def _b64(value: bytes | None) -> str | None:
    return None if value is None else base64.b64encode(value).decode("ascii")


# What a dead letter carries of the original key and value, and of its reason: a letter
# stays a few hundred KiB at most (base64 adds a third), far below the 1 MiB default
# max.message.bytes of a dead-letter topic someone else created.
DEAD_LETTER_MAX_BYTES = 256 * 1024
DEAD_LETTER_MAX_REASON = 2000


class DeadLetter(Record):
    """A message that failed a stage. In JSON the original bytes are base64 strings.

    ``topic``/``partition``/``offset`` locate the original message; they are None for
    records that did not come from one (e.g. a row Norce rejected in a job).
    """

    key: bytes | None = None
    value: bytes | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    stage: str = Field(min_length=1)
    reason: str
    time: float = Field(default_factory=time.time)
    job_id: str | None = None
    state_key: str | None = None
    # Set when the original bytes were cut to DEAD_LETTER_MAX_BYTES: their full size and
    # sha256 (hex), so the letter stays far below any topic's max.message.bytes and the
    # original can still be identified at its origin (topic, partition, offset).
    key_size: int | None = None
    key_sha256: str | None = None
    value_size: int | None = None
    value_sha256: str | None = None

    @classmethod
    def of(cls, record: Any, stage: str, reason: str) -> DeadLetter:
        """The letter of a consumed record (anything with Kafka's key, value, topic,
        partition and offset); the reason is capped like every letter's."""
        return cls(
            key=record.key,
            value=record.value,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            stage=stage,
            reason=reason,
        )

    @model_validator(mode="before")
    @classmethod
    def _capped(cls, data: Any) -> Any:
        # Only raw bytes are cut (a letter read back from JSON holds base64 text).
        if not isinstance(data, dict):
            return data
        capped = None
        for name in ("key", "value"):
            raw = data.get(name)
            if type(raw) is bytes and len(raw) > DEAD_LETTER_MAX_BYTES:
                capped = capped or dict(data)
                capped[name] = raw[:DEAD_LETTER_MAX_BYTES]
                capped[f"{name}_size"] = len(raw)
                capped[f"{name}_sha256"] = hashlib.sha256(raw).hexdigest()
        reason = data.get("reason")
        if isinstance(reason, str) and len(reason) > DEAD_LETTER_MAX_REASON:
            capped = capped or dict(data)
            # The result stays within the cap: reading a letter back cuts nothing again.
            suffix = f"... ({len(reason)} characters)"
            capped["reason"] = reason[: DEAD_LETTER_MAX_REASON - len(suffix)] + suffix
        return capped or data

    @field_validator("key", "value", mode="before")
    @classmethod
    def _from_base64(cls, value: Any) -> Any:
        # Strings only ever come from our JSON form; raw bytes are kept as given.
        if isinstance(value, str):
            try:
                return base64.b64decode(value, validate=True)
            except ValueError as exc:
                raise ValueError(f"not base64: {exc}") from None
        return value

    @field_validator("job_id", mode="before")
    @classmethod
    def _job_id_text(cls, value: Any) -> Any:
        # Norce answers JobId as "12345" on import and 12345 in Job/Get.
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @property
    def kafka_key(self) -> bytes | None:
        """The key on the dead-letter topic: the state key when known, else the original
        message's key (the dead-letter topic is not compacted: keys only help reading)."""
        return self.state_key.encode() if self.state_key else self.key

    @field_serializer("key", "value", when_used="json")
    def _to_base64(self, value: bytes | None) -> str | None:
        return _b64(value)

    @classmethod
    def from_error(
        cls,
        error: PipelineError,
        *,
        key: bytes | None,
        value: bytes | None,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
        **extra: Any,
    ) -> DeadLetter:
        return cls(
            key=key,
            value=value,
            topic=topic,
            partition=partition,
            offset=offset,
            stage=error.stage,
            reason=error.reason,
            **extra,
        )
