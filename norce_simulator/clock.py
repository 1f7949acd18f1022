"""Wall-clock timestamps in the ISO form Norce answers with."""

from __future__ import annotations

from datetime import UTC, datetime


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def run_time(seconds: float) -> str:
    """Norce's RunTime format, 'hh:mm:ss'."""
    s = max(0, round(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"
