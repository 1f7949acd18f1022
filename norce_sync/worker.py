"""The composition root: :func:`build` makes the worker.

It creates the Faust app from the settings, loads the sync config once, builds what
several flows share (the Norce clients, the webhook routes), and installs each flow in
dependency order. Every flow's ``wiring.install`` constructs the flow's services with
what they need passed in and declares its agents, timers, tasks, pages, commands and
topics on the app. The flows import downward only (``.importlinter``): imports, export
and orders know nothing of each other; reconcile builds on imports; ops reads them all;
only this module knows them all.

Nothing is constructed at import (``tests/unit/composition``): the command line calls
:func:`build` once per process, tests call it with their own settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.config.runtime import NorceClients, sync_config
from agents.config.secrets import config_secret_values, source_secret_problems
from agents.config.sync_config import SyncConfig
from agents.export import wiring as export_wiring
from agents.imports import wiring as import_wiring
from agents.ops import wiring as ops_wiring
from agents.orders import wiring as orders_wiring
from agents.reconcile import wiring as reconcile_wiring
from norce_sync.intake_supervisor import IntakeSupervisor
from streams.app import ServiceApp, create_app
from streams.event_routes import EventRoutes
from streams.health import install_health_views
from streams.logging import logging_config
from streams.settings import Settings


@dataclass(frozen=True)
class Worker:
    """One process's app and the flows built for it."""

    app: ServiceApp
    settings: Settings
    config: SyncConfig
    imports: import_wiring.ImportFlow
    export: export_wiring.ExportFlow
    orders: orders_wiring.OrdersFlow
    reconcile: reconcile_wiring.ReconcileFlow
    ops: ops_wiring.OpsFlow
    intake_supervisor: IntakeSupervisor | None = None


def build(settings: Settings | None = None) -> Worker:
    settings = settings or Settings()
    config = sync_config(settings)  # a config error stops here, before anything is made
    app = create_app(settings)
    # The worker and every command log through this; the sync config's secrets are
    # scrubbed too, and checked for demo values before the worker starts.
    app.conf.logging_config = logging_config(settings, secrets=config_secret_values(settings))
    app.more_secret_problems = source_secret_problems
    install_health_views(app)

    clients = NorceClients(settings, config)
    _close_on_shutdown(app, clients)
    routes = EventRoutes()  # webhook types the intake hands to another flow (orders)

    imports = import_wiring.install(app, settings, config, clients)
    export = export_wiring.install(app, settings, config, routes)
    orders = orders_wiring.install(app, settings, config, clients, routes)
    reconcile = reconcile_wiring.install(app, settings, config, imports)
    ops = ops_wiring.install(app, settings, config, imports, export, orders, reconcile)
    intake = (
        _install_intake_supervisor(app, settings, export) if settings.intake_processes else None
    )
    return Worker(app, settings, config, imports, export, orders, reconcile, ops, intake)


def _install_intake_supervisor(
    app: ServiceApp, settings: Settings, export: export_wiring.ExportFlow
) -> IntakeSupervisor:
    """Webhook intake processes beside this worker (``intake_processes``), started once
    the topics they write exist (every topic the flows registered is confirmed at the
    app's start; the export topics are waited for as the export reader waits)."""
    supervisor = IntakeSupervisor(settings)
    app.readiness.add(lambda: supervisor.listening > 0)

    async def start_intake_processes() -> None:
        await export.ensure_topics()
        if not app.should_stop:  # a stop during the wait: nothing to start, or to stop
            await app.add_runtime_dependency(supervisor)

    app.task(start_intake_processes)
    return supervisor


def _close_on_shutdown(app: ServiceApp, clients: NorceClients) -> None:
    @app.on_before_shutdown.connect
    async def close_clients(app_: Any, **_: Any) -> None:
        await clients.aclose()
