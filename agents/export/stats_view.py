"""``GET /export/stats``: the enricher's counters, the reader's, and the monitor history."""

from __future__ import annotations

import time

import faust
from faust.web import Request, Response, View

from agents.export.enricher import Enricher


def register_stats_view(app: faust.App, enricher: Enricher) -> None:
    @app.page("/export/stats")
    class ExportStats(View):
        # Guarded by the ops token like every view (agents.ops.views.ops_auth, deny by default).
        async def get(self, request: Request) -> Response:
            return self.json(
                {**enricher.stats(), "history": enricher.history.view(), "time": time.time()}
            )
