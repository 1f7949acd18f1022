"""The service app's projection: one :class:`~agents.imports.projector.Projector` per
worker, started and stopped with the app. (The class itself needs no app: tests run it
as it is, against the broker.)"""

from __future__ import annotations

from agents.imports.pipeline import config
from agents.imports.projector import Projector
from streams.main import app, settings

projector = Projector(settings, config)
projector.fatal = app.crash
app.readiness.add(lambda: projector.ready, unprocessed=lambda: sorted(projector.unprocessed))


@app.task
async def start_projector() -> None:
    # Started and stopped with the app (what ``@app.service`` does for a class).
    await app.add_runtime_dependency(projector)
