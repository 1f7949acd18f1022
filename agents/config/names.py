"""Names the sync config checks in more than one place."""

from __future__ import annotations

import re

TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


def kafka_topic_name(value: str) -> str:
    """A field validator: ``value`` as a Kafka topic name, or a clear error."""
    if not TOPIC_NAME.match(value):
        raise ValueError(f"{value!r} is not a valid Kafka topic name")
    return value
