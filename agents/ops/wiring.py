"""The ops surface on the app: the guard and the views (``agents.ops.views``), the item
trace (``agents.ops.item_view``) and the commands of the ``norce-sync`` command line.

The class-based commands (:class:`agents.ops.commands.OpsCommand`) are Faust's idiom: a
command class adds itself to the command line when its module is imported, constructs
nothing, and reads what the root built from its app when it runs
(:func:`agents.ops.context.of`). Importing them here makes the command line complete
whoever builds the worker."""

from __future__ import annotations

from dataclasses import dataclass

from agents.config.sync_config import SyncConfig
from agents.export.wiring import ExportFlow
from agents.imports.wiring import ImportFlow
from agents.ops import (  # noqa: F401  (each defines commands of the command line)
    commands,
    config_cli,
    full_import_cli,
    item_cli,
    map_cli,
    orders_cli,
    reconcile_cli,
    waiting_cli,
)
from agents.ops.context import OpsContext, attach
from agents.ops.item_view import ItemTracer, register_item_view
from agents.ops.views import OpsState, register_views
from agents.orders.wiring import OrdersFlow
from agents.reconcile.wiring import ReconcileFlow
from streams.app import ServiceApp
from streams.settings import Settings


@dataclass(frozen=True)
class OpsFlow:
    context: OpsContext
    state: OpsState
    items: ItemTracer


def install(
    app: ServiceApp,
    settings: Settings,
    config: SyncConfig,
    imports: ImportFlow,
    export: ExportFlow,
    orders: OrdersFlow,
    reconcile: ReconcileFlow,
) -> OpsFlow:
    context = OpsContext(settings, config, imports, export, orders, reconcile)
    attach(app, context)
    state = OpsState(app, context)
    register_views(app, state)
    items = ItemTracer(state)
    register_item_view(app, items)
    full_import_cli.register(app)
    reconcile_cli.register(app)
    return OpsFlow(context=context, state=state, items=items)
