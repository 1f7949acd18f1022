"""Ingest: the projector service on the service app (input topics -> state, checkpointed).

The projector is a Faust service with its own consumer-group membership; see
``agents.imports.projector`` for why it is not a per-event agent with Tables.
"""

from __future__ import annotations

from agents.imports.projector import Projector
from agents.ops.health import READY_CHECKS
from streams.main import app, settings
from streams.pipeline import config

projector = Projector(settings, config)
READY_CHECKS.append(lambda: projector.ready)


@app.task
async def start_projector() -> None:
    # Started and stopped with the app (what ``@app.service`` does for a class).
    await app.add_runtime_dependency(projector)
