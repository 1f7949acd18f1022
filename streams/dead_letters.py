"""What every dead letter gets besides being produced: a log line and a count."""

from __future__ import annotations

import logging

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
