"""What every dead letter gets besides being produced: a log line and a count."""

from __future__ import annotations

import hashlib
import logging

from aiokafka.errors import MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError

from streams import metrics
from streams.records import DeadLetter

log = logging.getLogger("norce_sync.dead_letters")


def note_dead_letter(letter: DeadLetter) -> None:
    metrics.dead_letters.inc(stage=str(letter.stage))
    log.warning(
        "dead letter: stage=%s topic=%s partition=%s offset=%s reason=%s",
        letter.stage,
        letter.topic,
        letter.partition,
        letter.offset,
        letter.reason,
    )


def refused_for_good(error: BaseException) -> bool:
    """A produce error that retrying cannot cure: the record itself is too large (for the
    topic's max.message.bytes or the producer's max_request_size)."""
    return isinstance(
        error,
        MessageSizeTooLargeError | RecordTooLargeError | RecordListTooLargeError,
    )


def stripped(letter: DeadLetter, error: BaseException) -> DeadLetter | None:
    """The letter without the original bytes (their size and digest kept), to send
    instead of one the broker refused for good; None when it carried none already."""
    if letter.key is None and letter.value is None:
        return None
    extra = {}
    for name in ("key", "value"):
        raw = getattr(letter, name)
        if raw is not None and getattr(letter, f"{name}_size") is None:
            extra[f"{name}_size"] = len(raw)
            extra[f"{name}_sha256"] = hashlib.sha256(raw).hexdigest()
    reason = f"{letter.reason} [original bytes left out: {type(error).__name__}]"
    return letter.model_copy(update={"key": None, "value": None, "reason": reason, **extra})
