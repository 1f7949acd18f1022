"""Liveness and readiness views (``/health``, ``/ready``) for any app of this project."""

from __future__ import annotations

import faust
from faust.web import Request, Response, View


def is_ready(app: faust.App) -> bool:
    """Partitions assigned and tables recovered: the worker serves current state."""
    recovery = app.tables.recovery
    return bool(recovery.completed.is_set() and not app.rebalancing)


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
