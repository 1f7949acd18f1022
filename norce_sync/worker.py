"""The composition root: :func:`build` makes the worker.

It creates the Faust app from the settings, loads the sync config once, and installs
each flow in dependency order (every flow's ``wiring.install`` constructs the flow's
services with what they need passed in, and declares its agents, timers, pages, commands
and topics on the app). The flows import downward only (``.importlinter``): imports,
export and orders know nothing of each other; reconcile builds on imports; ops reads
them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust

from agents.config.runtime import NorceClients, sync_config
from agents.imports import legacy, wiring
from agents.imports.wiring import ImportFlow
from streams.settings import Settings


@dataclass(frozen=True)
class Worker:
    """One process's app and the services the flows built for it."""

    app: faust.App
    settings: Settings
    imports: ImportFlow


def build(settings: Settings | None = None) -> Worker:
    # Transitional: flows not yet converted to ``install`` still register themselves on
    # ``streams.main.app`` when Faust's autodiscovery imports them.
    from streams.main import app
    from streams.main import settings as main_settings

    settings = settings or main_settings
    config = sync_config(settings)
    clients = NorceClients(settings, config)

    @app.on_before_shutdown.connect
    async def _close_clients(app_: Any, **_: Any) -> None:
        await clients.aclose()

    imports = wiring.install(app, settings, config, clients)
    legacy.fill(imports)  # temporary: reconcile and ops still read the old names
    return Worker(app=app, settings=settings, imports=imports)
