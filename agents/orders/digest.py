"""What makes two order calls "the same order": their JSON content, not their bytes
(key order and white space may differ between a call and Norce's retry of it)."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

DIGEST_HEADER = "order-digest"


def order_digest(document: Any) -> str:
    canonical = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()[:32]


def header(headers: Any, name: str = DIGEST_HEADER) -> str | None:
    for key, value in headers or ():
        if key == name:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None
