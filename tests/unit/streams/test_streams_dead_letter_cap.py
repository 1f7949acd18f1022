"""Issue 23 item 4: what a dead letter carries is capped; refused letters are stripped."""

from __future__ import annotations

import hashlib

from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from streams.dead_letters import refused_for_good, stripped
from streams.records import DEAD_LETTER_MAX_BYTES, DEAD_LETTER_MAX_REASON, DeadLetter


def test_a_large_original_is_cut_with_its_size_and_digest_kept() -> None:
    value = bytes(range(256)) * 8192  # 2 MiB
    letter = DeadLetter(key=b"k", value=value, stage="decode", reason="x" * 100_000)
    assert letter.value == value[:DEAD_LETTER_MAX_BYTES]
    assert letter.value_size == len(value)
    assert letter.value_sha256 == hashlib.sha256(value).hexdigest()
    assert letter.key == b"k" and letter.key_size is None
    assert len(letter.reason) <= DEAD_LETTER_MAX_REASON and "100000 characters" in letter.reason
    encoded = letter.to_bytes()
    assert len(encoded) < 400 * 1024
    again = DeadLetter.from_bytes(encoded)  # read back: nothing cut twice
    assert again == letter


def test_small_letters_are_unchanged() -> None:
    letter = DeadLetter(key=b"k", value=b"v", stage="map", reason="r")
    assert (letter.value, letter.value_size, letter.value_sha256) == (b"v", None, None)


def test_a_refused_letter_is_stripped_of_the_original_bytes() -> None:
    letter = DeadLetter(key=b"k", value=b"v" * 10, stage="map", reason="bad", offset=7)
    assert refused_for_good(MessageSizeTooLargeError())
    assert not refused_for_good(KafkaTimeoutError())
    summary = stripped(letter, MessageSizeTooLargeError())
    assert summary is not None and summary.key is None and summary.value is None
    assert summary.value_size == 10
    assert summary.value_sha256 == hashlib.sha256(b"v" * 10).hexdigest()
    assert summary.offset == 7 and "MessageSizeTooLargeError" in summary.reason
    assert stripped(summary, MessageSizeTooLargeError()) is None
