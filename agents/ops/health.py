"""Liveness and readiness views (``/health``, ``/ready``) for any app of this project."""

from __future__ import annotations

from collections.abc import Callable

import faust
from faust.web import Request, Response, View

# Services outside Faust's own machinery (the import projection) add their readiness here.
READY_CHECKS: list[Callable[[], bool]] = []


def is_ready(app: faust.App) -> bool:
    """Partitions assigned, tables recovered and every service loaded: the worker serves
    current state."""
    recovery = app.tables.recovery
    if not recovery.completed.is_set() or app.rebalancing:
        return False
    return all(check() for check in READY_CHECKS)


def install_health_views(app: faust.App) -> None:
    @app.page("/health")
    async def health(self: View, request: Request) -> Response:
        return self.json({"status": "ok", "app": app.conf.id})

    @app.page("/ready")
    async def ready(self: View, request: Request) -> Response:
        ok = is_ready(app)
        return self.json(
            {"ready": ok, "rebalancing": bool(app.rebalancing)}, status=200 if ok else 503
        )
