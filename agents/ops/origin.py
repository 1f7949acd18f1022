"""Cross-site requests to the ops views: a page on another site can make a visitor's
browser POST to a worker on their machine (``http://127.0.0.1:6066/delta/...``) without
ever reading the answer. Without an ops token nothing else stops that, so a state-changing
request must come from the worker's own origin or from no browser at all (curl, the CLI,
Norce's webhooks send no ``Origin``)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def cross_site(method: str, headers: Mapping[str, str], host: str | None) -> bool:
    """True for a state-changing request a browser sent from another origin."""
    if method.upper() in SAFE_METHODS:
        return False
    if headers.get("Sec-Fetch-Site", "").lower() in ("cross-site", "same-site"):
        return True
    origin = headers.get("Origin")
    if origin is None:
        return False  # not sent by a browser on another page
    if origin == "null" or not host:
        return True  # opaque origin (sandboxed frame, file:) or no Host to compare
    return urlsplit(origin).netloc.lower() != host.lower()
